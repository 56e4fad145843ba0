"""Join processors, as Kafka Streams defines the joins, on the batch path.

- ``StreamTableJoin``: each stream batch reads its table with one ``get_batch`` of the
  batch's distinct lookup keys (the consumed key bytes are reused when the keys come from the
  source unchanged), then calls the joiner per record. The table is read as of processing
  time: whatever the table side wrote to its store before this batch.
- ``TableTableJoin``: an update of either side recomputes the joined value of its key from
  both sides' current values and compares it with the join's own store (the last joined
  value), so the update carries the old joined value it replaces (a retraction for a
  downstream aggregation) whatever the order and caching of the two sides.
- ``TableUpsert``: keeps the latest value per key of its input in a store (a null value
  deletes), forwarding the updates: the table side of a Processor API join.

A table is read through a *value getter*: its root store plus the stateless table operators
(filter, map_values) applied after it, as Kafka Streams' KTableValueGetter does, so a join
sees a filtered or mapped table as current as its store without materializing it again.
"""

from __future__ import annotations

from cstreams._impl import dispatch as _dispatch
from cstreams.dsl.change import Change
from cstreams.dsl.operators import _Emitter
from cstreams.processor import BatchProcessor

INNER, LEFT, OUTER = "inner", "left", "outer"


class TableGetter:
    """Reads a table: ``store_name`` and the ``transforms`` (``fn(key, value) -> value or
    None``) of the stateless operators between that store and the table joined."""

    __slots__ = ("store_name", "transforms", "store")

    def __init__(self, store_name, transforms=()):
        self.store_name = store_name
        self.transforms = tuple(transforms)
        self.store = None

    def bind(self, ctx):
        self.store = ctx.get_store(self.store_name)
        return self

    def get_by_bytes(self, kbs, keys):
        """{key bytes: value} for the distinct ``kbs`` (``keys``: the key objects, in the
        same order, for the transforms)."""
        distinct = list(dict.fromkeys(kbs))
        found = dict(zip(distinct, self.store.get_batch_by_bytes(distinct)))
        if self.transforms:
            key_of = dict(zip(kbs, keys))
            for kb, v in found.items():
                if v is None:
                    continue
                k = key_of[kb]
                for t in self.transforms:
                    v = t(k, v)
                    if v is None:
                        break
                found[kb] = v
        return found

    def with_transform(self, fn):
        return TableGetter(self.store_name, self.transforms + (fn,))


def _getter(table):
    return table if isinstance(table, TableGetter) else TableGetter(table)


class StreamTableJoin(BatchProcessor):
    """stream.join(table) / left_join: ``joiner(stream value, table value)`` per stream
    record whose lookup key (its key, or ``key_selector(key, value)``) is in the table; a
    left join also joins the others, with None. Records with a null value are dropped, and
    in an inner join those with a null lookup key too (Kafka Streams' rules). The output keeps
    the stream record's key, timestamp and headers."""

    def __init__(self, table, joiner, key_selector=None, left=False):
        self.getter = _getter(table)
        self.joiner = joiner
        self.key_selector = key_selector
        self.left = left

    def init(self, ctx):
        self.ctx = ctx
        self.table = TableGetter(self.getter.store_name, self.getter.transforms).bind(ctx)
        self.key_serde = self.table.store.key_serde

    def process_batch(self, batch):
        keys, values = batch.keys, batch.values
        sel = self.key_selector
        lookup = keys if sel is None else [sel(k, v) for k, v in zip(keys, values)]
        whole = None not in lookup and None not in values
        if not whole:
            left = self.left
            keep = [i for i, (lk, v) in enumerate(zip(lookup, values))
                    if v is not None and (left or lk is not None)]
            if not keep:
                return
            batch = batch.select(keep)
            keys, values = batch.keys, batch.values
            lookup = [lookup[i] for i in keep]
        table_values = self._lookup(lookup, sel is None and whole)
        joiner = self.joiner
        if self.left:
            out = [joiner(v, t) for v, t in zip(values, table_values)]
            if whole:
                self.ctx.forward_batch(keys, out)
            else:
                self.ctx.forward_batch(keys, out, batch.timestamps, batch.headers)
            return
        hit = [i for i, t in enumerate(table_values) if t is not None]
        if len(hit) == len(keys):
            out = [joiner(v, t) for v, t in zip(values, table_values)]
            if whole:
                self.ctx.forward_batch(keys, out)
            else:
                self.ctx.forward_batch(keys, out, batch.timestamps, batch.headers)
        elif hit:
            sub = batch.select(hit)
            out = [joiner(values[i], table_values[i]) for i in hit]
            self.ctx.forward_batch(sub.keys, out, sub.timestamps, sub.headers)

    def _lookup(self, lookup, from_source):
        """The table's value per lookup key (None for a null key or a missing one)."""
        kbs = None
        if from_source:
            kbs = _dispatch.reused_key_bytes(self.ctx._task, lookup, self.key_serde)
        if None in lookup:
            present = [k for k in lookup if k is not None]
            if not present:
                return [None] * len(lookup)
            kbs = self.table.store.keys_bytes(present)
            found = self.table.get_by_bytes(kbs, present)
            it = iter(kbs)
            return [None if k is None else found[next(it)] for k in lookup]
        if kbs is None:
            kbs = self.table.store.keys_bytes(lookup)
        found = self.table.get_by_bytes(kbs, lookup)
        return [found[kb] for kb in kbs]


class TableUpsert(BatchProcessor):
    """The latest value per key in ``store_name`` (a null value deletes; null keys are
    dropped); forwards the records it applied. The table side of a join built with the
    Processor API: ``topo.add_processor("customers-table", cs.processors.table(
    "customers"), parents=["customers-source"], stores=["customers"])``."""

    def __init__(self, store_name):
        self.store_name = store_name

    def init(self, ctx):
        self.ctx = ctx
        self.store = ctx.get_store(self.store_name)

    def process_batch(self, batch):
        keys = batch.keys
        if None in keys:
            batch = batch.select([i for i, k in enumerate(keys) if k is not None])
            keys = batch.keys
            if not keys:
                return
            self.store.put_batch(keys, batch.values)
            self.ctx.forward_batch(keys, batch.values, batch.timestamps, batch.headers)
            return
        self.store.put_batch(keys, batch.values)
        self.ctx.forward_batch(keys, batch.values)


class TableTableJoin(_Emitter):
    """table.join(table) / left_join / outer_join. Its input is the updates of both sides
    (only their keys are read); per distinct key updated in a batch, the joined value is
    ``joiner(left value, right value)`` from both sides' current values (inner: both
    present; left: the left one; outer: either, the missing one None), else None (absent).
    It is compared with the join's own store: an unchanged absence is dropped, anything else
    is stored and forwarded (as Change(new, old) where a downstream operator needs the old
    value), with the timestamp of the key's last update in the batch."""

    def __init__(self, left, right, store_name, joiner, how, flags, cache):
        super().__init__(flags, cache)
        self.left_getter = _getter(left)
        self.right_getter = _getter(right)
        self.store_name = store_name
        self.joiner = joiner
        self.how = how

    def init(self, ctx):
        super().init(ctx)
        self.left = TableGetter(self.left_getter.store_name,
                                self.left_getter.transforms).bind(ctx)
        self.right = TableGetter(self.right_getter.store_name,
                                 self.right_getter.transforms).bind(ctx)
        self.store = ctx.get_store(self.store_name)

    def process_batch(self, batch):
        last = {}
        for k, t in zip(batch.keys, batch.timestamps):
            if k is not None:
                last.pop(k, None)     # keys in order of their last update in the batch
                last[k] = t
        if not last:
            return
        keys = list(last)
        timestamps = list(last.values())
        store = self.store
        kbs = store.keys_bytes(keys)
        lvals = self._values(self.left, keys)
        rvals = self._values(self.right, keys)
        olds = store.get_batch_by_bytes(kbs)
        joiner, how = self.joiner, self.how
        out_k, out_kb, out_new, out_old, out_ts = [], [], [], [], []
        for k, kb, a, b, old, t in zip(keys, kbs, lvals, rvals, olds, timestamps):
            if a is not None and b is not None:
                new = joiner(a, b)
            elif (a is not None and how != INNER) or (b is not None and how == OUTER):
                new = joiner(a, b)
            else:
                new = None
            if new is None and old is None:
                continue
            out_k.append(k)
            out_kb.append(kb)
            out_new.append(new)
            out_old.append(old)
            out_ts.append(t)
        if not out_k:
            return
        store.put_batch_by_bytes(out_kb, out_new)
        if self.cache:
            self._emit(out_k, out_new, out_old, out_ts)
            return
        if self.send_old:
            out_new = [Change(n, o) for n, o in zip(out_new, out_old)]
        # One record per key updated: the input batch's headers do not line up with them.
        self.ctx.forward_batch(out_k, out_new, out_ts, [None] * len(out_k))

    @staticmethod
    def _values(getter, keys):
        kbs = getter.store.keys_bytes(keys)
        found = getter.get_by_bytes(kbs, keys)
        return [found[kb] for kb in kbs]


__all__ = ["Change", "INNER", "LEFT", "OUTER", "StreamTableJoin", "TableGetter",
           "TableTableJoin", "TableUpsert"]
