"""Built-in processors, each with a batch implementation.

Factories return something to pass to ``Topology.add_processor``: a callable that builds a new
processor per task.
"""

from __future__ import annotations

from cstreams._impl import dispatch as _dispatch
from cstreams._impl import store as _store
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
            counts = _store.count_batch(self.store, keys)
            self.ctx.forward_batch(keys, counts, batch.timestamps)
            return
        kbs = None
        if self.key_serde is not None:
            # The consumed bytes when the keys come unchanged from a source with the same
            # exact round-trip serde; else None and the store serializes them.
            kbs = _dispatch.reused_key_bytes(self.ctx._task, keys, self.key_serde)
        self.ctx.forward_batch(keys, _store.count_batch(self.store, keys, kbs))


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
        self.ctx.forward_batch([p[0] for p in pairs], [p[1] for p in pairs])


class MapValuesProcessor(_FunctionProcessor):
    """fn(value) -> new_value; keys unchanged."""

    def process_batch(self, batch):
        fn = self.fn
        self.ctx.forward_batch(batch.keys, [fn(v) for v in batch.values])


class FilterProcessor(_FunctionProcessor):
    """Keeps the records for which fn(key, value) (the predicate) is true."""

    def process_batch(self, batch):
        pred = self.fn
        keep = [i for i, (k, v) in enumerate(zip(batch.keys, batch.values)) if pred(k, v)]
        if len(keep) == len(batch):
            self.ctx.forward_batch(batch.keys, batch.values)
        elif keep:
            sub = batch.select(keep)
            self.ctx.forward_batch(sub.keys, sub.values, sub.timestamps, sub.headers)


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


def table(store_name):
    """The latest value per key of the input in ``store_name`` (a null value deletes),
    forwarding the updates: the table side of a join (cstreams.joins.TableUpsert)."""
    from cstreams.joins import TableUpsert

    return lambda: TableUpsert(store_name)


def stream_table_join(table_store, joiner, *, key_selector=None, left=False):
    """Join each stream record with the table in ``table_store`` (fed in the same task, e.g.
    by ``table()``): ``joiner(value, table value)`` when the lookup key (the record's key, or
    ``key_selector(key, value)``) is in the table; ``left=True`` joins the others with None.
    Connect the store to the processor: ``add_processor(..., stores=[table_store])``. One
    get_batch of the batch's distinct lookup keys per stream batch."""
    from cstreams.joins import StreamTableJoin

    return lambda: StreamTableJoin(table_store, joiner, key_selector, left)


def table_table_join(left_store, right_store, result_store, joiner, *, how="inner",
                     send_old=False):
    """Join two tables kept in ``left_store`` and ``right_store`` (each fed by ``table()``
    in the same task); the processor has both tables' nodes as parents and all three stores
    connected. ``how``: "inner", "left" or "outer"; ``result_store`` keeps the joined values.
    Forwards each changed joined value (None: the key left the join), or ``Change(new, old)``
    with ``send_old=True``."""
    from cstreams.dsl.operators import TableFlags
    from cstreams.joins import INNER, LEFT, OUTER, TableTableJoin

    if how not in (INNER, LEFT, OUTER):
        raise ValueError(f"table_table_join: how must be 'inner', 'left' or 'outer', got {how!r}")
    flags = TableFlags()
    flags.send_old = bool(send_old)
    return lambda: TableTableJoin(left_store, right_store, result_store, joiner, how, flags,
                                  False)
