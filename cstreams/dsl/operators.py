"""The DSL's processors: batch processors that call the user's function per record in a loop,
or once per batch (the ``batch=True`` forms). Built-ins of cstreams.processors are reused
where they do the job (map, map_values, filter, flat_map, count)."""

from __future__ import annotations

from cstreams import processors as _builtin
from cstreams._impl import counting as _counting
from cstreams.dsl.change import Change
from cstreams.errors import ProcessingError
from cstreams.processor import BatchProcessor

# Beyond this many keys a table cache forwards its updates before the commit (Kafka Streams
# evicts from its record cache when it is full).
DEFAULT_CACHE_MAX_KEYS = 10_000


def _forward_selected(ctx, batch, keep, to=None):
    if len(keep) == len(batch.keys):
        ctx.forward_batch(batch.keys, batch.values, to=to, like=batch)
    elif keep:
        sub = batch.select(keep)
        ctx.forward_batch(sub.keys, sub.values, to=to, like=sub)


def _check_length(name, what, got, want):
    if len(got) != want:
        raise ProcessingError(f"the batch function of {name} returned {len(got)} {what} for "
                              f"a batch of {want} records", node=name)


class PassThrough(BatchProcessor):
    """Forwards every batch unchanged (merge, branch children)."""

    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        self.ctx.forward_batch(batch.keys, batch.values, like=batch)


class SelectKey(_builtin._FunctionProcessor):
    """fn(key, value) -> new key."""

    def process_batch(self, batch):
        fn = self.fn
        self.ctx.forward_batch([fn(k, v) for k, v in zip(batch.keys, batch.values)],
                               batch.values, like=batch)


class Peek(_builtin._FunctionProcessor):
    """Calls fn(key, value) per record and forwards the batch unchanged."""

    def process_batch(self, batch):
        fn = self.fn
        for k, v in zip(batch.keys, batch.values):
            fn(k, v)
        self.ctx.forward_batch(batch.keys, batch.values, like=batch)


# --- batch forms: the user function gets the batch's columns --------------------------------
class BatchFilter(_builtin._FunctionProcessor):
    """fn(keys, values) -> one truth value per record."""

    def process_batch(self, batch):
        flags = self.fn(batch.keys, batch.values)
        _check_length(self.ctx.node_name, "flags", flags, len(batch.keys))
        _forward_selected(self.ctx, batch, [i for i, f in enumerate(flags) if f])


class BatchMapValues(_builtin._FunctionProcessor):
    """fn(values) -> new values."""

    def process_batch(self, batch):
        values = self.fn(batch.values)
        _check_length(self.ctx.node_name, "values", values, len(batch.keys))
        self.ctx.forward_batch(batch.keys, list(values), like=batch)


class BatchMap(_builtin._FunctionProcessor):
    """fn(keys, values) -> (new keys, new values)."""

    def process_batch(self, batch):
        keys, values = self.fn(batch.keys, batch.values)
        _check_length(self.ctx.node_name, "keys", keys, len(batch.keys))
        self.ctx.forward_batch(list(keys), list(values), like=batch)


class BatchSelectKey(_builtin._FunctionProcessor):
    """fn(keys, values) -> new keys."""

    def process_batch(self, batch):
        keys = self.fn(batch.keys, batch.values)
        _check_length(self.ctx.node_name, "keys", keys, len(batch.keys))
        self.ctx.forward_batch(list(keys), batch.values, like=batch)


class BatchFlatMap(_builtin._FunctionProcessor):
    """fn(keys, values) -> one iterable of (key, value) per record; outputs keep their
    record's timestamp and headers. ``values_only``: fn(values) -> one iterable of values per
    record, keys kept (flat_map_values)."""

    def __init__(self, fn, values_only):
        super().__init__(fn)
        self.values_only = values_only

    def process_batch(self, batch):
        keys = batch.keys
        groups = self.fn(batch.values) if self.values_only else self.fn(keys, batch.values)
        _check_length(self.ctx.node_name, "results", groups, len(keys))
        in_h = batch.headers
        out_k, out_v, out_t, out_h = [], [], [], []
        for i, (k, t, group) in enumerate(zip(keys, batch.timestamps, groups)):
            h = None if in_h is None else in_h[i]
            for item in group:
                if self.values_only:
                    out_k.append(k)
                    out_v.append(item)
                else:
                    out_k.append(item[0])
                    out_v.append(item[1])
                out_t.append(t)
                out_h.append(h)
        if out_k:
            self.ctx.forward_batch(out_k, out_v, out_t, None if in_h is None else out_h)


class BatchPeek(_builtin._FunctionProcessor):
    """fn(keys, values) once per batch; the batch goes on unchanged."""

    def process_batch(self, batch):
        self.fn(batch.keys, batch.values)
        self.ctx.forward_batch(batch.keys, batch.values, like=batch)


# --- routing ----------------------------------------------------------------------------------
class Branch(BatchProcessor):
    """Each record goes to the child of the first predicate it satisfies (or the default
    child, if any); one sub-batch per child."""

    def __init__(self, predicates, children, default_child, batch):
        self.predicates = predicates
        self.children = children
        self.default_child = default_child
        self.batch = batch

    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        keys, values = batch.keys, batch.values
        n = len(keys)
        chosen = [-1] * n
        if self.batch:
            for j, pred in enumerate(self.predicates):
                open_idx = [i for i in range(n) if chosen[i] < 0]
                if not open_idx:
                    break
                flags = pred([keys[i] for i in open_idx], [values[i] for i in open_idx])
                _check_length(self.ctx.node_name, "flags", flags, len(open_idx))
                for i, f in zip(open_idx, flags):
                    if f:
                        chosen[i] = j
        else:
            preds = list(enumerate(self.predicates))
            for i in range(n):
                k, v = keys[i], values[i]
                for j, pred in preds:
                    if pred(k, v):
                        chosen[i] = j
                        break
        groups = [[] for _ in self.children]
        rest = []
        for i, j in enumerate(chosen):
            (groups[j] if j >= 0 else rest).append(i)
        for child, idx in zip(self.children, groups):
            _forward_selected(self.ctx, batch, idx, to=child)
        if self.default_child is not None:
            _forward_selected(self.ctx, batch, rest, to=self.default_child)


class TopicRouter(BatchProcessor):
    """to(topic_chooser): fn(key, value) -> topic, one of the declared topics; each topic has
    its own sink child."""

    def __init__(self, fn, sink_for_topic):
        self.fn = fn
        self.sink_for_topic = sink_for_topic

    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        fn, sinks = self.fn, self.sink_for_topic
        groups = {}
        for i, (k, v) in enumerate(zip(batch.keys, batch.values)):
            topic = fn(k, v)
            sink = sinks.get(topic)
            if sink is None:
                raise ProcessingError(
                    f"the topic chooser of {self.ctx.node_name} returned {topic!r}, which is "
                    f"not one of the topics declared with to(..., topics=): {sorted(sinks)}",
                    topic=batch.topic, partition=batch.partition, offset=batch.offsets[i],
                    node=self.ctx.node_name)
            groups.setdefault(sink, []).append(i)
        for sink, idx in groups.items():
            _forward_selected(self.ctx, batch, idx, to=sink)


# --- tables -----------------------------------------------------------------------------------
class TableFlags:
    """Decided while the DSL graph grows, read when a task builds its processors: whether a
    table node forwards Change(new, old) instead of plain new values."""

    __slots__ = ("send_old",)

    def __init__(self):
        self.send_old = False


class _Emitter(BatchProcessor):
    """Forwards table updates, as plain values or as Changes, either at once or through a
    cache that keeps the latest update per key until the task commits (or the cache fills),
    as Kafka Streams' record cache does. A coalesced Change keeps the oldest old value.

    The cache is three dicts updated a batch at a time (the last update of a key in a batch
    wins, in C, by dict construction), so caching costs no Python step per record."""

    def __init__(self, flags, cache):
        self.flags = flags
        self.cache = cache
        self.cache_max_keys = DEFAULT_CACHE_MAX_KEYS

    def init(self, ctx):
        self.ctx = ctx
        self.send_old = self.flags.send_old
        self._new, self._ts, self._old = {}, {}, {}
        if self.cache:
            ctx.on_flush(self._flush)

    def _emit(self, keys, news, olds, timestamps, like=None):
        """``olds`` is a list, or a callable returning it (called only when old values are
        sent). ``like``: the batch the outputs line up with, if they do (forward_batch)."""
        if self.send_old and callable(olds):
            olds = olds()
        if not self.cache:
            if self.send_old:
                news = [Change(n, o) for n, o in zip(news, olds)]
            self.ctx.forward_batch(keys, news, timestamps, like=like)
            return
        self._new.update(zip(keys, news))
        self._ts.update(zip(keys, timestamps))
        if self.send_old:
            # First old value per key of this batch; those already pending win.
            first = dict(zip(reversed(keys), reversed(olds)))
            first.update(self._old)
            self._old = first
        if len(self._new) > self.cache_max_keys:
            self._flush(None)

    def _flush(self, _timestamp):
        new = self._new
        if not new:
            return
        keys = list(new)
        values = list(new.values())
        timestamps = list(self._ts.values())
        if self.send_old:
            old = self._old
            values = [Change(n, old[k]) for k, n in zip(keys, values)]
        self._new, self._ts, self._old = {}, {}, {}
        # Coalesced updates line up with no input batch: no headers, no input offsets.
        self.ctx.forward_batch(keys, values, timestamps)


def _non_null_keys(batch):
    keys = batch.keys
    if None in keys:
        batch = batch.select([i for i, k in enumerate(keys) if k is not None])
    return batch


class StreamCount(_Emitter):
    """count() of a grouped stream: the compiled count_batch (one get_batch of the distinct
    keys, one put_batch) or, uncached and without old values, the built-in count processor
    itself."""

    def __init__(self, store_name, flags, cache):
        super().__init__(flags, cache)
        self.store_name = store_name

    def init(self, ctx):
        super().init(ctx)
        self.store = ctx.get_store(self.store_name)
        if not self.cache and not self.send_old:
            self.plain = _builtin.BatchCountAggregator(self.store_name)
            self.plain.init(ctx)
        else:
            self.plain = None

    def process_batch(self, batch):
        if self.plain is not None:
            self.plain.process_batch(batch)
            return
        batch = _non_null_keys(batch)
        keys = batch.keys
        if not keys:
            return
        kbs = self.ctx.reused_key_bytes(keys, self.store.key_serde)
        counts = _counting.count_batch(self.store, keys, kbs)
        self._emit(keys, counts, lambda: [c - 1 or None for c in counts], batch.timestamps,
                   like=batch)


class StreamAggregate(_Emitter):
    """aggregate()/reduce() of a grouped stream: one get_batch of the distinct keys, the
    user's aggregator per record, one put_batch of the new aggregates. Records with a null
    key or value are skipped, as in Kafka Streams."""

    def __init__(self, store_name, initializer, aggregator, flags, cache):
        super().__init__(flags, cache)
        self.store_name = store_name
        self.initializer = initializer
        self.aggregator = aggregator   # (key, value, aggregate or _NONE) -> aggregate

    def init(self, ctx):
        super().init(ctx)
        self.store = ctx.get_store(self.store_name)

    def process_batch(self, batch):
        keys, values = batch.keys, batch.values
        if None in keys or None in values:
            batch = batch.select([i for i, (k, v) in enumerate(zip(keys, values))
                                  if k is not None and v is not None])
            keys, values = batch.keys, batch.values
            if not keys:
                return
        distinct = list(dict.fromkeys(keys))
        current = dict(zip(distinct, self.store.get_batch(distinct)))
        init, agg = self.initializer, self.aggregator
        news, olds = [], []
        for k, v in zip(keys, values):
            old = current[k]
            new = agg(k, v, init() if old is None else old)
            current[k] = new
            news.append(new)
            olds.append(old)
        self.store.put_batch(distinct, [current[k] for k in distinct])
        self._emit(keys, news, olds, batch.timestamps, like=batch)


class TableSource(_Emitter):
    """table(topic): the latest value per key in the table's store (None deletes it)."""

    def __init__(self, store_name, flags, cache):
        super().__init__(flags, cache)
        self.store_name = store_name

    def init(self, ctx):
        super().init(ctx)
        self.store = ctx.get_store(self.store_name)

    def process_batch(self, batch):
        batch = _non_null_keys(batch)
        keys, values = batch.keys, batch.values
        if not keys:
            return
        distinct = list(dict.fromkeys(keys))
        current = dict(zip(distinct, self.store.get_batch(distinct)))
        olds = []
        for k, v in zip(keys, values):
            olds.append(current[k])
            current[k] = v
        self.store.put_batch(distinct, [current[k] for k in distinct])
        self._emit(keys, values, olds, batch.timestamps, like=batch)


class TableAggregate(_Emitter):
    """aggregate()/reduce()/count() of a grouped table: a retraction (Change(None, v))
    applies the subtractor, an addition (Change(v, None)) the adder."""

    def __init__(self, store_name, initializer, adder, subtractor, flags, cache):
        super().__init__(flags, cache)
        self.store_name = store_name
        self.initializer = initializer
        self.adder = adder
        self.subtractor = subtractor

    def init(self, ctx):
        super().init(ctx)
        self.store = ctx.get_store(self.store_name)

    def process_batch(self, batch):
        batch = _non_null_keys(batch)
        keys, changes = batch.keys, batch.values
        if not keys:
            return
        distinct = list(dict.fromkeys(keys))
        current = dict(zip(distinct, self.store.get_batch(distinct)))
        init, add, sub = self.initializer, self.adder, self.subtractor
        news, olds = [], []
        for k, c in zip(keys, changes):
            old = current[k]
            agg = init() if old is None else old
            if c.old is not None:
                agg = sub(k, c.old, agg)
            if c.new is not None:
                agg = add(k, c.new, agg)
            current[k] = agg
            news.append(agg)
            olds.append(old)
        self.store.put_batch(distinct, [current[k] for k in distinct])
        self._emit(keys, news, olds, batch.timestamps, like=batch)


class _TableOp(BatchProcessor):
    """A stateless table operator; its input is Changes when its parent sends old values."""

    def __init__(self, fn, in_flags, out_flags):
        self.fn = fn
        self.in_flags = in_flags
        self.out_flags = out_flags

    def init(self, ctx):
        self.ctx = ctx
        self.changes_in = self.in_flags.send_old
        self.changes_out = self.out_flags.send_old

    def process_batch(self, batch):
        keys, values = batch.keys, batch.values
        apply = self.apply
        if self.changes_in:
            out_k, out_v, keep = [], [], []
            for i, (k, c) in enumerate(zip(keys, values)):
                n = None if c.new is None else apply(k, c.new)
                o = None if c.old is None else apply(k, c.old)
                if n is None and o is None:
                    continue
                out_k.append(k)
                out_v.append(Change(n, o) if self.changes_out else n)
                keep.append(i)
            if len(keep) == len(keys):
                self.ctx.forward_batch(out_k, out_v, like=batch)
            elif keep:
                self.ctx.forward_batch(out_k, out_v, like=batch.select(keep))
            return
        self.ctx.forward_batch(keys, [None if v is None else apply(k, v)
                                      for k, v in zip(keys, values)], like=batch)


class TableFilter(_TableOp):
    """A record failing the predicate becomes a tombstone (the key leaves the table)."""

    def __init__(self, predicate, negate, in_flags, out_flags):
        super().__init__(predicate, in_flags, out_flags)
        self.negate = negate

    def apply(self, k, v):
        return v if bool(self.fn(k, v)) != self.negate else None


class TableMapValues(_TableOp):
    def apply(self, k, v):
        return self.fn(v)


class TableToStream(BatchProcessor):
    """to_stream(): the new values (tombstones included) as a stream."""

    def __init__(self, in_flags):
        self.in_flags = in_flags

    def init(self, ctx):
        self.ctx = ctx
        self.changes_in = self.in_flags.send_old

    def process_batch(self, batch):
        values = batch.values
        if self.changes_in:
            values = [c.new for c in values]
        self.ctx.forward_batch(batch.keys, values, like=batch)


class TableGroupBy(BatchProcessor):
    """group_by(fn) of a table: fn(key, value) -> (group key, value), applied to the old value
    (a retraction from its old group) and to the new one (an addition to its new group)."""

    def __init__(self, fn):
        self.fn = fn

    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        fn = self.fn
        in_headers = batch.headers
        keys, values, out_ts, out_h = [], [], [], []
        for i, (k, c, t) in enumerate(zip(batch.keys, batch.values, batch.timestamps)):
            h = None if in_headers is None else in_headers[i]
            if c.old is not None:
                gk, gv = fn(k, c.old)
                keys.append(gk)
                values.append(Change(None, gv))
                out_ts.append(t)
                out_h.append(h)
            if c.new is not None:
                gk, gv = fn(k, c.new)
                keys.append(gk)
                values.append(Change(gv, None))
                out_ts.append(t)
                out_h.append(h)
        if keys:
            self.ctx.forward_batch(keys, values, out_ts,
                                   None if in_headers is None else out_h)
