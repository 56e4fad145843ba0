"""Built-in processors, each with a batch implementation.

Factories return something to pass to ``Topology.add_processor``: a callable that builds a new
processor per task.
"""

from __future__ import annotations

from cstreams._impl import counting as _counting
from cstreams.processor import BatchProcessor


class BatchCountAggregator(BatchProcessor):
    """Counts records per key into an int store and forwards (key, new count) per record.
    Records with a null key are dropped, as Kafka Streams' count() does."""

    def __init__(self, store_name):
        self.store_name = store_name

    def init(self, ctx):
        self.ctx = ctx
        self.store = ctx.get_store(self.store_name)
        self.key_serde = getattr(self.store, "key_serde", None)

    def process_batch(self, batch):
        keys = batch.keys
        if None in keys:
            batch = batch.select([i for i, k in enumerate(keys) if k is not None])
            keys = batch.keys
            if not keys:
                return
            counts = _counting.count_batch(self.store, keys)
            self.ctx.forward_batch(keys, counts, like=batch)
            return
        kbs = None
        if self.key_serde is not None:
            # The consumed bytes when the keys come unchanged from a source with the same
            # exact round-trip serde; else None and the store serializes them.
            kbs = self.ctx.reused_key_bytes(keys, self.key_serde)
        self.ctx.forward_batch(keys, _counting.count_batch(self.store, keys, kbs), like=batch)


class _FunctionProcessor(BatchProcessor):
    """A batch processor around one user function."""

    def __init__(self, fn):
        self.fn = fn

    def init(self, ctx):
        self.ctx = ctx


class MapProcessor(_FunctionProcessor):
    """fn(key, value) -> (new_key, new_value) for every record."""

    def process_batch(self, batch):
        fn = self.fn
        pairs = [fn(k, v) for k, v in zip(batch.keys, batch.values)]
        self.ctx.forward_batch([p[0] for p in pairs], [p[1] for p in pairs], like=batch)


class MapValuesProcessor(_FunctionProcessor):
    """fn(value) -> new_value; keys unchanged."""

    def process_batch(self, batch):
        fn = self.fn
        self.ctx.forward_batch(batch.keys, [fn(v) for v in batch.values], like=batch)


class FilterProcessor(_FunctionProcessor):
    """Keeps the records for which fn(key, value) (the predicate) is true."""

    def process_batch(self, batch):
        pred = self.fn
        keep = [i for i, (k, v) in enumerate(zip(batch.keys, batch.values)) if pred(k, v)]
        if len(keep) == len(batch):
            self.ctx.forward_batch(batch.keys, batch.values, like=batch)
        elif keep:
            sub = batch.select(keep)
            self.ctx.forward_batch(sub.keys, sub.values, like=sub)


class FlatMapProcessor(_FunctionProcessor):
    """fn(key, value) -> iterable of (key, value); outputs keep the input's timestamp and
    headers."""

    def process_batch(self, batch):
        fn = self.fn
        in_headers = batch.headers
        keys, values, timestamps, headers = [], [], [], []
        for i, (k, v, ts) in enumerate(zip(batch.keys, batch.values, batch.timestamps)):
            h = None if in_headers is None else in_headers[i]
            for nk, nv in fn(k, v):
                keys.append(nk)
                values.append(nv)
                timestamps.append(ts)
                headers.append(h)
        if keys:
            self.ctx.forward_batch(keys, values, timestamps,
                                   None if in_headers is None else headers)


def count(store_name):
    return lambda: BatchCountAggregator(store_name)


def map(fn):  # noqa: A001 - the operation's name
    return lambda: MapProcessor(fn)


def map_values(fn):
    return lambda: MapValuesProcessor(fn)


def filter(predicate):  # noqa: A001
    return lambda: FilterProcessor(predicate)


def flat_map(fn):
    return lambda: FlatMapProcessor(fn)
