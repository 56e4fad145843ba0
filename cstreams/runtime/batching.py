"""Adaptive batching: the poll size (max records per consume()) of the stream thread.

Batch latency is the time from consume() returning to the end of processing the batches of
that poll. Bigger polls amortize the per-poll and per-batch work (grouping, dispatch, one
produce loop per sink) over more records, but hold every record of the poll until the last
one is processed. The controller keeps the latency under ``max_latency_ms`` while the poll
size stays as large as that allows:

- grow multiplicatively (x2, up to ``max_records``) after a poll that came back full and took
  less than half the bound: a poll twice the size would still fit;
- shrink when a poll passed the bound: at least halve, more when it was far over
  (proportionally to bound / latency), never below ``min_records``;
- otherwise keep the size. A poll that comes back short says the input, not the poll size,
  limits the batch: no reason to grow.
"""

from __future__ import annotations

import collections

GROW = 2.0
HEADROOM = 0.5          # grow only below this fraction of the bound
SHRINK_MAX = 0.5        # a poll over the bound at least halves the size
SHRINK_TARGET = 0.8     # ...aiming at this fraction of the bound
WINDOW = 1024           # recent latencies kept for the percentiles


class PollSizeController:
    def __init__(self, max_latency_ms, max_records, *, initial=None, min_records=1,
                 window=WINDOW):
        if max_latency_ms <= 0:
            raise ValueError(f"max_latency_ms must be > 0, got {max_latency_ms}")
        if max_records < 1 or min_records < 1 or min_records > max_records:
            raise ValueError(f"need 1 <= min_records <= max_records, got {min_records}, "
                             f"{max_records}")
        self.max_latency_ms = float(max_latency_ms)
        self.max_records = int(max_records)
        self.min_records = int(min_records)
        start = min(self.max_records, 1000) if initial is None else int(initial)
        self.size = max(self.min_records, min(self.max_records, start))
        self.recent = collections.deque(maxlen=window)
        self.grown = 0
        self.shrunk = 0

    def observe(self, returned, latency_s):
        """One poll: ``returned`` records (> 0), processed in ``latency_s`` seconds. Returns
        the poll size for the next consume()."""
        ms = latency_s * 1000.0
        self.recent.append(ms)
        bound = self.max_latency_ms
        size = self.size
        if ms > bound:
            factor = min(SHRINK_MAX, SHRINK_TARGET * bound / ms)
            new = max(self.min_records, int(size * factor))
            if new < size:
                self.size = new
                self.shrunk += 1
        elif returned >= size and ms < bound * HEADROOM and size < self.max_records:
            self.size = min(self.max_records, int(size * GROW))
            self.grown += 1
        return self.size

    def latency_ms(self):
        """(p50, p99, max) of the recent batch latencies in ms; zeros before any poll."""
        xs = sorted(self.recent)
        if not xs:
            return 0.0, 0.0, 0.0
        n = len(xs)
        return xs[(n - 1) // 2], xs[min(n - 1, (99 * n) // 100)], xs[-1]
