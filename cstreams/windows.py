"""Window definitions with Kafka Streams' semantics.

- ``TimeWindows.of(size)``: tumbling windows; ``.advance_by(ms)`` makes them hopping. Windows
  are aligned to the epoch and half-open, [start, start + size).
- ``SlidingWindows.with_time_difference(ms)``: Kafka Streams' SlidingWindows, windows of
  ``time_difference`` ms defined by the records, inclusive at both ends.
- ``SessionWindows.with_inactivity_gap(ms)``: per-key sessions [first, last] (inclusive) that
  merge when a record falls within ``gap`` of them.

Every kind has a grace period (default 0, as Kafka Streams' ``ofSizeWithNoGrace``): a window
accepts records until stream time passes its end plus the grace; then it is closed (final
results are emitted) and records for it are late.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any, NamedTuple, Optional

from cstreams.errors import TopologyError


class Windowed(NamedTuple):
    """A windowed output key: the record key and its window [start, end)."""

    key: Any
    start: int
    end: int


_new_tuple = tuple.__new__


def windowed_keys(keys, starts, ends):
    """[Windowed(k, s, e)] for parallel lists, built without a Python call per key."""
    return list(map(_new_tuple, repeat(Windowed), zip(keys, starts, ends)))


def _ms(value, what):
    if isinstance(value, bool) or not isinstance(value, int):
        # A timedelta is accepted too.
        total = getattr(value, "total_seconds", None)
        if total is None:
            raise TopologyError(f"{what} must be milliseconds (int) or a timedelta, "
                                f"got {value!r}")
        value = int(round(total() * 1000))
    return value


def _positive(value, what):
    value = _ms(value, what)
    if value <= 0:
        raise TopologyError(f"{what} must be > 0 ms, got {value}")
    return value


def _grace(value):
    grace = _ms(value, "grace period")
    if grace < 0:
        raise TopologyError(f"grace period must be >= 0 ms, got {grace}")
    return grace


class TimeWindows:
    """Tumbling (advance == size) or hopping (advance < size) windows aligned to the epoch."""

    kind = "time"

    def __init__(self, size_ms, advance_ms=None, grace_ms=0):
        size = _positive(size_ms, "window size")
        advance = size if advance_ms is None else _ms(advance_ms, "window advance")
        if advance <= 0 or advance > size:
            raise TopologyError(
                f"window advance must be > 0 and <= the size ({size} ms), got {advance}")
        self.size_ms = size
        self.advance_ms = advance
        self.grace_ms = _grace(grace_ms)

    @classmethod
    def of(cls, size_ms, grace_ms=0):
        return cls(size_ms, None, grace_ms)

    def advance_by(self, advance_ms):
        return TimeWindows(self.size_ms, advance_ms, self.grace_ms)

    def grace(self, grace_ms):
        return TimeWindows(self.size_ms, self.advance_ms, grace_ms)

    @property
    def tumbling(self):
        return self.advance_ms == self.size_ms

    def window_starts(self, timestamp):
        """Starts of the windows that contain ``timestamp``, oldest first (Kafka Streams'
        TimeWindows.windowsFor)."""
        size, adv = self.size_ms, self.advance_ms
        start = (max(0, timestamp - size + adv) // adv) * adv
        return list(range(start, timestamp + 1, adv))

    def retention_ms(self):
        """Default store retention: window size + grace (Kafka Streams' minimum)."""
        return self.size_ms + self.grace_ms

    def __eq__(self, other):
        return (isinstance(other, TimeWindows) and other.size_ms == self.size_ms
                and other.advance_ms == self.advance_ms and other.grace_ms == self.grace_ms)

    def __hash__(self):
        return hash((self.size_ms, self.advance_ms, self.grace_ms))

    def __repr__(self):
        return (f"TimeWindows(size_ms={self.size_ms}, advance_ms={self.advance_ms}, "
                f"grace_ms={self.grace_ms})")


class SlidingWindows:
    """Kafka Streams' SlidingWindows: a window [t - d, t] ends at every record's timestamp t
    and one [t + 1, t + 1 + d] starts just after it when a record falls into it; a window's
    aggregate holds exactly the records whose timestamps it contains."""

    kind = "sliding"

    def __init__(self, time_difference_ms, grace_ms=0):
        self.time_difference_ms = _positive(time_difference_ms, "time difference")
        self.grace_ms = _grace(grace_ms)

    @classmethod
    def with_time_difference(cls, time_difference_ms, grace_ms=0):
        return cls(time_difference_ms, grace_ms)

    def grace(self, grace_ms):
        return SlidingWindows(self.time_difference_ms, grace_ms)

    @property
    def size_ms(self):
        # Windows [start, start + d] hold d + 1 milliseconds.
        return self.time_difference_ms + 1

    def retention_ms(self):
        return self.size_ms + self.grace_ms

    def __repr__(self):
        return f"SlidingWindows(time_difference_ms={self.time_difference_ms}, " \
               f"grace_ms={self.grace_ms})"


class SessionWindows:
    """Sessions per key: records within ``gap`` ms of each other belong to one session; a
    record that bridges two sessions merges them."""

    kind = "session"

    def __init__(self, gap_ms, grace_ms=0):
        self.gap_ms = _positive(gap_ms, "inactivity gap")
        self.grace_ms = _grace(grace_ms)

    @classmethod
    def with_inactivity_gap(cls, gap_ms, grace_ms=0):
        return cls(gap_ms, grace_ms)

    def grace(self, grace_ms):
        return SessionWindows(self.gap_ms, grace_ms)

    def retention_ms(self):
        """Default store retention: gap + grace (Kafka Streams' SessionWindows)."""
        return self.gap_ms + self.grace_ms

    def __repr__(self):
        return f"SessionWindows(gap_ms={self.gap_ms}, grace_ms={self.grace_ms})"


def check_windows(windows: Optional[object]):
    if not isinstance(windows, (TimeWindows, SlidingWindows, SessionWindows)):
        raise TopologyError(
            f"windows must be TimeWindows, SlidingWindows or SessionWindows, got {windows!r}")
    return windows


__all__ = ["SessionWindows", "SlidingWindows", "TimeWindows", "Windowed"]
