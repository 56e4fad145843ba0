"""Windowed aggregations on the batch path: tumbling, hopping and session windows.

One pass over a partition's batch assigns every record to its window(s) by the running
stream time (the largest timestamp seen so far, record by record, as Kafka Streams judges
lateness), then the (key, window) entries the batch touches are read from the window store
with one batch read, updated in offset order, and written back with one batch write.

Emission, per aggregation:
- ``"update"``: one output per (key, window) the batch changed, in offset order of the last
  record that changed it, timestamped with that record's timestamp (Kafka Streams' emit
  every update behind a record cache flushed per batch). A session that a merge removed and
  that existed before the batch is forwarded once with a None value (a tombstone).
- ``"final"``: each window once, when stream time passes its end plus the grace period,
  timestamped with its last millisecond. The mark of what was emitted is kept in the window
  store (flushed, logged and restored with it), so a restart, a rebalance or an aborted
  transaction never emits a window twice.

Closed windows take no more records. A record for which every window is closed is late:
dropped, counted in the task metric ``late_records_dropped`` and, when the error handler is
skip or dead-letter, reported through it. A negative timestamp goes to the error handler.
Records with a None key or value are dropped, as Kafka Streams' aggregations do.

Sessions: a record joins (and merges) the sessions within ``gap`` of it; it is late when the
merged session ends before stream time - grace. A session is closed (and emitted as final)
once stream time passes its end + gap + grace: no record can extend it any more, and it is
never merged again, so a final session result is final.

Processor API::

    topo.add_store(cs.windowed.store("clicks-store", TimeWindows.of(60_000), cs.windowed.COUNT,
                                     key_serde=cs.serde.STRING))
    topo.add_processor("clicks", cs.windowed.aggregate("clicks-store", TimeWindows.of(60_000),
                       cs.windowed.COUNT, emit="final"), parents=["in"], stores=["clicks-store"])
    topo.add_sink("out", "clicks-per-minute", parents=["clicks"],
                  key_serde=cs.windowed.time_windowed_serde(cs.serde.STRING, 60_000),
                  value_serde=cs.serde.INT64)
"""

from __future__ import annotations

import operator
import struct
from typing import Any, Callable, Optional

from cstreams import handlers as _handlers
from cstreams import serde as _serde
from cstreams._impl import windowing as _kernel
from cstreams.errors import ProcessingError, TopologyError
from cstreams.processor import STREAM_TIME, BatchProcessor
from cstreams.stores import window as _wstores
from cstreams.windows import (
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Windowed,
    check_windows,
    windowed_keys,
)

_T = struct.Struct(">q")
_TT = struct.Struct(">qq")
_I = struct.Struct(">i")
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)

EMIT_UPDATE = "update"
EMIT_FINAL = "final"


class LateRecordError(ProcessingError):
    """A record arrived after every window it belongs to had closed (end + grace passed)."""


# --- aggregations ---------------------------------------------------------------------------
class Aggregation:
    """What to compute per window: ``initializer() -> agg``, ``adder(key, value, agg) -> agg``
    (Kafka Streams' Aggregator), for sessions ``merger(key, agg1, agg2) -> agg``, and
    ``result(agg) -> output value`` (identity unless given). ``value_serde`` is the store's
    serde for the aggregates. Built-in kinds (count, sum, min, max, mean) run as inline
    operations in the batch loop; user functions are called per record."""

    def __init__(self, name, initializer, adder, merger=None, result=None,
                 value_serde=_serde.JSON, kind=None, output_serde=None):
        self.name = name
        self.initializer = initializer
        self.adder = adder
        self.merger = merger
        self.result = result
        self.value_serde = _serde.resolve(value_serde, f"aggregation {name!r} value serde")
        self.output_serde = output_serde
        self.kind = kind
        self.batch_adder = None

    def __repr__(self):
        return f"<Aggregation {self.name}>"


def _none():
    return None


def count() -> Aggregation:
    return Aggregation("count", lambda: 0, lambda k, v, a: a + 1, lambda k, a, b: a + b,
                       value_serde=_serde.INT64, kind="count", output_serde=_serde.INT64)


def sum_() -> Aggregation:
    return Aggregation("sum", lambda: 0, lambda k, v, a: a + v, lambda k, a, b: a + b,
                       kind="sum")


def _min(a, b):
    return b if a is None or b < a else a


def _max(a, b):
    return b if a is None or b > a else a


def min_() -> Aggregation:
    return Aggregation("min", _none, lambda k, v, a: _min(a, v),
                       lambda k, a, b: b if a is None else _min(a, b), kind="min")


def max_() -> Aggregation:
    return Aggregation("max", _none, lambda k, v, a: _max(a, v),
                       lambda k, a, b: b if a is None else _max(a, b), kind="max")


def _mean_result(agg):
    return None if not agg[1] else agg[0] / agg[1]


def mean() -> Aggregation:
    """The mean of the values; the store keeps [sum, count]."""
    return Aggregation("mean", lambda: [0, 0], lambda k, v, a: [a[0] + v, a[1] + 1],
                       lambda k, a, b: [a[0] + b[0], a[1] + b[1]], result=_mean_result,
                       kind="mean", output_serde=_serde.FLOAT64)


def reduce(fn: Callable, value_serde=_serde.JSON) -> Aggregation:
    """``fn(aggregate, value) -> aggregate``; the first value of a window is its aggregate.
    Sessions merge with ``fn`` too."""
    return Aggregation(
        "reduce", _none, lambda k, v, a: v if a is None else fn(a, v),
        lambda k, a, b: b if a is None else (a if b is None else fn(a, b)),
        value_serde=value_serde, output_serde=value_serde)


def aggregate(initializer: Callable, adder: Optional[Callable] = None,
              merger: Optional[Callable] = None, value_serde=_serde.JSON,
              result: Optional[Callable] = None, *,
              batch_adder: Optional[Callable] = None) -> Aggregation:
    """Kafka Streams' aggregate: ``initializer()``, ``adder(key, value, agg)``; session
    windows also need ``merger(key, agg1, agg2)``. ``batch_adder(key, values, agg)`` instead
    of ``adder``: called once per (key, window) a batch touches, with its values of the batch
    in offset order (tumbling and hopping windows; sessions and sliding windows call it with
    the values one window at a time as well)."""
    if (adder is None) == (batch_adder is None):
        raise TopologyError("aggregate() needs adder= or batch_adder= (one of them)")
    if adder is None:
        def adder(k, v, a):
            return batch_adder(k, [v], a)
    agg = Aggregation("aggregate", initializer, adder, merger, result, value_serde)
    agg.batch_adder = batch_adder
    return agg


COUNT = count()
SUM = sum_()
MIN = min_()
MAX = max_()
MEAN = mean()


# --- windowed key serdes --------------------------------------------------------------------
class TimeWindowedSerde(_serde.Serde):
    """Kafka Streams' TimeWindowedSerde format: key bytes + window start (8 bytes,
    big-endian). The end is start + the window size, which the format does not carry."""

    def __init__(self, inner, window_size_ms):
        self.inner = _serde.resolve(inner, "windowed key serde")
        self.window_size_ms = int(window_size_ms)
        self.name = f"time-windowed({self.inner.name})"

    def serialize(self, obj):
        if obj is None:
            return None
        return self.inner.serialize(obj[0]) + _T.pack(obj[1])

    def deserialize(self, data):
        if data is None:
            return None
        start = _T.unpack_from(data, len(data) - 8)[0]
        return Windowed(self.inner.deserialize(data[:-8]), start, start + self.window_size_ms)

    def serialize_batch(self, objs):
        kbs = self.inner.serialize_batch(list(map(_first, objs)))
        return list(map(bytes.__add__, kbs, map(_T.pack, map(_second, objs))))


class SessionWindowedSerde(_serde.Serde):
    """Kafka Streams' SessionWindowedSerde format: key bytes + end + start (8 bytes each,
    big-endian)."""

    def __init__(self, inner):
        self.inner = _serde.resolve(inner, "windowed key serde")
        self.name = f"session-windowed({self.inner.name})"

    def serialize(self, obj):
        if obj is None:
            return None
        return self.inner.serialize(obj[0]) + _TT.pack(obj[2], obj[1])

    def deserialize(self, data):
        if data is None:
            return None
        end, start = _TT.unpack_from(data, len(data) - 16)
        return Windowed(self.inner.deserialize(data[:-16]), start, end)

    def serialize_batch(self, objs):
        kbs = self.inner.serialize_batch([o[0] for o in objs])
        pack = _TT.pack
        return [kb + pack(o[2], o[1]) for kb, o in zip(kbs, objs)]


class ReadableWindowedSerde(_serde.Serde):
    """JSON ``{"key": ..., "start": ..., "end": ...}``: windowed keys for people and JSON
    consumers."""

    name = "windowed-json"

    def serialize(self, obj):
        if obj is None:
            return None
        return _serde.JSON.serialize({"key": obj[0], "start": obj[1], "end": obj[2]})

    def deserialize(self, data):
        if data is None:
            return None
        d = _serde.JSON.deserialize(data)
        return Windowed(d["key"], d["start"], d["end"])


def time_windowed_serde(inner, window_size_ms) -> TimeWindowedSerde:
    return TimeWindowedSerde(inner, window_size_ms)


def session_windowed_serde(inner) -> SessionWindowedSerde:
    return SessionWindowedSerde(inner)


READABLE = ReadableWindowedSerde()


# --- stores ---------------------------------------------------------------------------------
def store(name, windows, aggregation: Aggregation = COUNT, *, key_serde=None, persistent=True,
          retention_ms=None, logging=True, cache_max_entries=100_000, changelog_config=None,
          options=None):
    """The window store (time windows) or session store (session windows) an aggregation
    over ``windows`` needs; retention defaults to window size (or gap) + grace."""
    check_windows(windows)
    minimum = windows.retention_ms()
    if retention_ms is None:
        retention_ms = minimum
    elif retention_ms < minimum:
        raise TopologyError(
            f"store {name!r}: retention {retention_ms} ms is shorter than the window size (or "
            f"gap) plus grace, {minimum} ms")
    common = dict(logging=logging, cache_max_entries=cache_max_entries,
                  changelog_config=changelog_config)
    if isinstance(windows, SessionWindows):
        if persistent:
            return _wstores.rocksdb_session(name, key_serde, aggregation.value_serde,
                                            retention_ms=retention_ms, options=options,
                                            **common)
        return _wstores.in_memory_session(name, key_serde, aggregation.value_serde,
                                          retention_ms=retention_ms, **common)
    # Sliding windows [start, start + d] are named by start; the key serde's end is start + d.
    size = windows.time_difference_ms if isinstance(windows, SlidingWindows) else windows.size_ms
    if persistent:
        return _wstores.rocksdb_window(name, key_serde, aggregation.value_serde,
                                       retention_ms=retention_ms, window_size_ms=size,
                                       options=options, **common)
    return _wstores.in_memory_window(name, key_serde, aggregation.value_serde,
                                     retention_ms=retention_ms, window_size_ms=size, **common)


def records_store_name(name):
    """The store in which a sliding-window aggregation ``name`` keeps its recent records."""
    return f"{name}-records"


def stores(name, windows, aggregation: Aggregation = COUNT, *, key_serde=None,
           value_serde=None, persistent=True, retention_ms=None, **kw) -> list:
    """Every store an aggregation over ``windows`` needs: ``store(...)``, and for sliding
    windows also the store of recent records (``<name>-records``, a session store over the
    records' timestamps, values in ``value_serde``: the input's)."""
    out = [store(name, windows, aggregation, key_serde=key_serde, persistent=persistent,
                 retention_ms=retention_ms, **kw)]
    if isinstance(windows, SlidingWindows):
        if value_serde is None:
            raise TopologyError(f"sliding windows {name!r}: pass value_serde= (the input "
                                f"values' serde): the aggregation keeps recent records")
        rs = ValueListSerde(_serde.resolve(value_serde, "sliding windows value serde"))
        d = windows.time_difference_ms
        make = _wstores.rocksdb_session if persistent else _wstores.in_memory_session
        out.append(make(records_store_name(name), key_serde, rs,
                        retention_ms=2 * d + windows.grace_ms + 2,
                        **{k: v for k, v in kw.items() if k in ("logging", "changelog_config")}))
    return out


def add_aggregation(topology, name, parents, windows, aggregation: Aggregation = COUNT, *,
                    emit=EMIT_UPDATE, key_serde=None, value_serde=None, persistent=True,
                    retention_ms=None):
    """Add a windowed aggregation ``name`` (processor and stores, the window store named
    ``name``) to ``topology``; returns the topology."""
    specs = stores(name, windows, aggregation, key_serde=key_serde, value_serde=value_serde,
                   persistent=persistent, retention_ms=retention_ms)
    topology.add_processor(name, aggregate_windows(name, windows, aggregation, emit),
                           parents=parents, stores=[])
    for spec in specs:
        topology.add_store(spec, processors=[name])
    return topology


class ValueListSerde(_serde.Serde):
    """A list of values of one serde: each as a 4-byte length and its bytes."""

    def __init__(self, inner):
        self.inner = inner
        self.name = f"list({inner.name})"

    def serialize(self, obj):
        if obj is None:
            return None
        pack = _I.pack
        return b"".join(pack(len(b)) + b for b in self.inner.serialize_batch(list(obj)))

    def deserialize(self, data):
        if data is None:
            return None
        out, i, n = [], 0, len(data)
        unpack = _I.unpack_from
        while i < n:
            m = unpack(data, i)[0]
            out.append(data[i + 4:i + 4 + m])
            i += 4 + m
        return self.inner.deserialize_batch(out)


# --- processors -----------------------------------------------------------------------------
class _WindowedAggregateBase(BatchProcessor):
    def __init__(self, store_name, windows, aggregation, emit):
        if emit not in (EMIT_UPDATE, EMIT_FINAL):
            raise TopologyError(f"emit must be {EMIT_UPDATE!r} or {EMIT_FINAL!r}, got {emit!r}")
        self.store_name = store_name
        self.windows = windows
        self.aggregation = aggregation
        self.emit = emit
        self.grace = windows.grace_ms

    def init(self, ctx):
        self.ctx = ctx
        self.task = ctx._task
        self.store = ctx.get_store(self.store_name)
        if self.store.retention_ms < self.windows.retention_ms():
            raise TopologyError(
                f"store {self.store_name!r}: retention {self.store.retention_ms} ms is shorter "
                f"than the windows' size (or gap) plus grace, {self.windows.retention_ms()} ms")
        self.key_serde = self.store.key_serde
        self.observed = self.store.meta("stream_time", -1)
        # A restored task resumes its stream time (task-level punctuations see it too).
        if self.observed > self.task.stream_time:
            self.task.stream_time = self.observed
        if self.observed >= 0:
            self.store.expire(self.observed)
        # Stream time can move without input here (other sources of the task, the test
        # driver's advance_stream_time): close windows then too.
        ctx.schedule(1, STREAM_TIME, self._on_stream_time)

    def _on_stream_time(self, now):
        if now <= self.observed:
            return
        self.observed = now
        self._close_windows()

    def _close_windows(self):
        """After input or a stream-time advance: persist stream time, emit the windows it
        closed (final emission) and drop what retention let go."""
        self._save_time()
        if self.emit == EMIT_FINAL:
            self._emit_final()
        self.store.expire(self.observed)

    def _emit_closed(self, below, window_of):
        """Final emission: forward, once, every window of the store whose composite key sorts
        below ``pack(below)`` and was not emitted yet. ``window_of(ck)`` gives a window's
        (key bytes offset, start, end, output timestamp)."""
        if below <= self.emitted_below:
            return
        store = self.store
        result = self.aggregation.result
        kde = store.key_serde.deserialize
        out_k, out_v, out_t = [], [], []
        for ck, v in store._scan(_T.pack(max(self.emitted_below, 0)), _T.pack(below)):
            at, start, end, ts = window_of(ck)
            out_k.append(Windowed(kde(ck[at:]), start, end))
            out_v.append(v if result is None else result(v))
            out_t.append(ts)
        self.emitted_below = below
        store.set_meta("emitted_below", below)
        if out_k:
            self.ctx.forward_batch(out_k, out_v, out_t)

    # --- input checks -----------------------------------------------------------------------
    def _records(self, batch):
        """The records of ``batch`` to aggregate (see ``_usable``), None when none is left."""
        if not len(batch):
            return None
        keep = self._usable(batch)
        if keep is None:
            return batch
        return batch.select(keep) if keep else None

    def _usable(self, batch):
        """Indices of the records to aggregate: None keys and values dropped, negative
        timestamps to the error handler."""
        keys, values, tss = batch.keys, batch.values, batch.timestamps
        if None not in keys and None not in values and min(tss) >= 0:
            return None
        keep = []
        for i in range(len(keys)):
            if keys[i] is None or values[i] is None:
                self.task.metrics["windowed_null_dropped"] += 1
                continue
            if tss[i] < 0:
                self.task.handle_error(self._record_error(
                    ProcessingError, batch, i, "unusable",
                    "negative timestamp, windows need event time >= 0"), None)
                continue
            keep.append(i)
        return keep

    def _late(self, batch, late):
        task = self.task
        task.metrics["late_records_dropped"] += len(late)
        if isinstance(task.error_handler, _handlers.FailHandler):
            return
        for i in late:
            task.handle_error(self._record_error(
                LateRecordError, batch, i, "late",
                f"all its windows closed (grace {self.grace} ms)"), None)

    def _record_error(self, cls, batch, i, what, why):
        off = batch.offsets[i]
        return cls(
            f"windowed aggregation {self.ctx.node_name!r}: {what} record at topic "
            f"{batch.topic!r} partition {batch.partition} offset {off} (timestamp "
            f"{batch.timestamps[i]}): {why}",
            topic=batch.topic, partition=batch.partition, offset=off, node=self.ctx.node_name)

    def _save_time(self):
        self.store.set_meta("stream_time", self.observed)


class TimeWindowedAggregate(_WindowedAggregateBase):
    """Tumbling and hopping windows (TimeWindows)."""

    def init(self, ctx):
        super().init(ctx)
        w = self.windows
        self.size, self.advance = w.size_ms, w.advance_ms
        # Final emission: every window starting before this mark was emitted.
        self.emitted_below = self.store.meta("emitted_below", 0)

    def process_batch(self, batch):
        batch = self._records(batch)
        if batch is None:
            return
        keys = batch.keys
        kbs = self.ctx.serialized_keys(keys, self.key_serde)
        cks, idx, late, self.observed = _kernel.assign_time_windows(
            kbs, batch.timestamps, self.observed, self.size, self.advance, self.grace)
        if late:
            self._late(batch, late)
        if cks:
            distinct, cur = _kernel.update_windows(self.store.kv, self.aggregation, cks, idx,
                                                   keys, batch.values)
            if self.emit == EMIT_UPDATE:
                self._emit_updates(cks, idx, distinct, cur, keys, batch.timestamps)
        self._close_windows()

    def _emit_updates(self, cks, idx, distinct, cur, keys, timestamps):
        # One output per entry, in order of the last record that changed it: the reversed
        # first occurrences of the reversed list (C-level dict and map work throughout).
        last = dict(zip(cks, idx))
        order = list(dict.fromkeys(reversed(cks)))
        order.reverse()
        ii = list(map(last.__getitem__, order))
        unpack = _T.unpack_from
        starts = [unpack(ck)[0] for ck in order]
        size = self.size
        out_k = windowed_keys(list(map(keys.__getitem__, ii)), starts,
                              [s + size for s in starts])
        out_v = list(map(cur.__getitem__, order))
        result = self.aggregation.result
        if result is not None:
            out_v = list(map(result, out_v))
        self.ctx.forward_batch(out_k, out_v, list(map(timestamps.__getitem__, ii)))

    def _emit_final(self):
        # Windows [s, s + size) with s + size + grace <= stream time are closed.
        size = self.size
        unpack = _T.unpack_from

        def window_of(ck):
            s = unpack(ck)[0]
            return 8, s, s + size, s + size - 1

        self._emit_closed(self.observed - self.grace - size + 1, window_of)


class SessionWindowedAggregate(_WindowedAggregateBase):
    """Session windows: per key, records within the inactivity gap form one session."""

    def init(self, ctx):
        super().init(ctx)
        if self.aggregation.merger is None:
            raise TopologyError(f"session aggregation {ctx.node_name!r} needs a merger")
        self.gap = self.windows.gap_ms
        # Final emission: every session ending before this mark was emitted.
        self.emitted_below = self.store.meta("emitted_below", 0)

    def process_batch(self, batch):
        batch = self._records(batch)
        if batch is None:
            return
        keys, values, tss = batch.keys, batch.values, batch.timestamps
        kbs = self.ctx.serialized_keys(keys, self.key_serde)
        store = self.store
        agg = self.aggregation
        init, add, merge = agg.initializer, agg.adder, agg.merger
        gap, grace = self.gap, self.grace
        observed = self.observed
        changed = {}        # (kb, start, end) -> (record index, aggregate or None)
        created = set()     # sessions this batch created: never forwarded when merged away
        late = []
        for i in range(len(kbs)):
            ts = tss[i]
            if ts > observed:
                observed = ts
            close = observed - grace
            kb = kbs[i]
            # Sessions ending before close - gap are final (emitted): never merged again.
            sessions = store.sessions_of(kb, max(ts - gap, close - gap), ts + gap)
            start = end = ts
            for s, e in sessions:
                if s < start:
                    start = s
                if e > end:
                    end = e
            if end < close:
                late.append(i)
                continue
            a = init()
            if sessions:
                key = keys[i]
                vals = store.get_bytes([(kb, s, e) for s, e in sessions])
                for v in vals:
                    a = merge(key, a, v)
                for s, e in sessions:
                    if (s, e) != (start, end):
                        store.put_bytes(kb, s, e, None)
                        w = (kb, s, e)
                        changed.pop(w, None)
                        if w in created:
                            created.discard(w)
                        else:
                            changed[w] = (i, None)
            w = (kb, start, end)
            if (start, end) not in sessions:
                created.add(w)
            a = add(keys[i], values[i], a)
            store.put_bytes(kb, start, end, a)
            changed.pop(w, None)
            changed[w] = (i, a)
        self.observed = observed
        if late:
            self._late(batch, late)
        if changed and self.emit == EMIT_UPDATE:
            self._emit_updates(changed, keys, tss)
        self._close_windows()

    def _emit_updates(self, changed, keys, tss):
        result = self.aggregation.result
        items = sorted(changed.items(), key=lambda kv: kv[1][0])
        out_k, out_v, out_t = [], [], []
        for (_kb, s, e), (i, a) in items:
            out_k.append(Windowed(keys[i], s, e))
            out_v.append(None if a is None else (a if result is None else result(a)))
            out_t.append(tss[i])
        if out_k:
            self.ctx.forward_batch(out_k, out_v, out_t)

    def _emit_final(self):
        # A session ending before it can take no record any more (end + gap + grace passed).
        unpack = _TT.unpack_from

        def window_of(ck):
            end, start = unpack(ck)
            return 16, start, end, end

        self._emit_closed(self.observed - self.grace - self.gap, window_of)


class SlidingWindowedAggregate(_WindowedAggregateBase):
    """Kafka Streams' SlidingWindows: per key, a window [t - d, t] ends at every record's
    timestamp t (for t < d: [0, d]) and a window [t + 1, t + 1 + d] starts after it when a
    record falls into it; a window's aggregate folds exactly the records it contains (in
    timestamp order, then arrival order). Recent records are kept in the session store
    ``<store>-records`` so that a new window's aggregate is computed from them. A record is
    late when even its right window [t + 1, t + 1 + d] has closed (its end + grace passed).
    Windows hold d + 1 ms; the output key's end is start + d (inclusive)."""

    def init(self, ctx):
        super().init(ctx)
        self.d = self.windows.time_difference_ms
        self.records = ctx.get_store(records_store_name(self.store_name))
        if self.observed >= 0:
            self.records.expire(self.observed)
        self.emitted_below = self.store.meta("emitted_below", 0)

    def _close_windows(self):
        super()._close_windows()
        self.records.expire(self.observed)

    def process_batch(self, batch):
        batch = self._records(batch)
        if batch is None:
            return
        keys, values, tss = batch.keys, batch.values, batch.timestamps
        kbs = self.ctx.serialized_keys(keys, self.key_serde)
        kv, records = self.store.kv, self.records
        d, grace = self.d, self.grace
        agg = self.aggregation
        init, add = agg.initializer, agg.adder
        pack = _T.pack
        observed = self.observed
        changed = {}
        late = []
        for i in range(len(kbs)):
            t = tss[i]
            if t > observed:
                observed = t
            close = observed - grace
            if t + 1 + d <= close:
                late.append(i)
                continue
            kb, key = kbs[i], keys[i]
            held = records.get_bytes([(kb, t, t)])[0]
            records.put_bytes(kb, t, t, (held or []) + [values[i]])
            times = [s for s, _ in records.sessions_of(kb, t - d - 1, t + d + 1)]
            starts = set()
            for q in times:
                ls = q - d if q > d else 0
                if t - d <= ls <= t:
                    starts.add(ls)
                if t - d <= q + 1 <= t or q == t:
                    # q's right window exists when a record falls in (q, q + d].
                    for x in times:
                        if q < x <= q + d:
                            starts.add(q + 1)
                            break
            starts = sorted(s for s in starts if s + d >= close)
            if not starts:
                continue
            cks = [pack(s) + kb for s in starts]
            olds = kv.get_batch_by_bytes(cks)
            held_values = records.get_bytes([(kb, q, q) for q in times])
            news = []
            for s in starts:
                a = init()
                for q, vs in zip(times, held_values):
                    if s <= q <= s + d:
                        for v in vs:
                            a = add(key, v, a)
                news.append(a)
            put_k, put_v = [], []
            for ck, old, new in zip(cks, olds, news):
                if old != new:
                    put_k.append(ck)
                    put_v.append(new)
                    changed.pop(ck, None)
                    changed[ck] = i
            if put_k:
                kv.put_batch_by_bytes(put_k, put_v)
        self.observed = observed
        if late:
            self._late(batch, late)
        if changed and self.emit == EMIT_UPDATE:
            result = agg.result
            cks = list(changed)
            vals = kv.get_batch_by_bytes(cks)
            out_k, out_v, out_t = [], [], []
            for ck, v in zip(cks, vals):
                i = changed[ck]
                s = _T.unpack_from(ck)[0]
                out_k.append(Windowed(keys[i], s, s + d))
                out_v.append(v if result is None else result(v))
                out_t.append(tss[i])
            self.ctx.forward_batch(out_k, out_v, out_t)
        self._close_windows()

    def _emit_final(self):
        # Windows [s, s + d] with s + d + grace < stream time are closed.
        d = self.d
        unpack = _T.unpack_from

        def window_of(ck):
            s = unpack(ck)[0]
            return 8, s, s + d, s + d

        self._emit_closed(self.observed - self.grace - d, window_of)


def aggregate_windows(store_name: str, windows, aggregation: Aggregation = COUNT,
                      emit: str = EMIT_UPDATE) -> Callable[[], Any]:
    """A processor factory for ``Topology.add_processor``: aggregates its input per key and
    window into the window (or session) store ``store_name`` (see ``store``)."""
    check_windows(windows)
    if isinstance(windows, TimeWindows):
        return lambda: TimeWindowedAggregate(store_name, windows, aggregation, emit)
    if isinstance(windows, SessionWindows):
        if aggregation.merger is None:
            raise TopologyError("session windows need an aggregation with a merger")
        return lambda: SessionWindowedAggregate(store_name, windows, aggregation, emit)
    return lambda: SlidingWindowedAggregate(store_name, windows, aggregation, emit)


__all__ = [
    "COUNT", "EMIT_FINAL", "EMIT_UPDATE", "MAX", "MEAN", "MIN", "READABLE", "SUM",
    "Aggregation", "LateRecordError", "ReadableWindowedSerde", "SessionWindowedSerde",
    "TimeWindowedSerde", "ValueListSerde", "add_aggregation", "aggregate", "aggregate_windows",
    "records_store_name", "stores", "count", "max_", "mean", "min_",
    "reduce", "store", "session_windowed_serde", "sum_", "time_windowed_serde",
]
