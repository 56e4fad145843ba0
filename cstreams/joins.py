"""Join processors, as Kafka Streams defines the joins, on the batch path.

- ``StreamTableJoin``: each stream batch reads its table with one ``get_batch_by_bytes`` of
  its lookup keys (the store reads each key missing from its cache once; the consumed key
  bytes are reused when the keys come from the source unchanged), then calls the joiner per
  record. The table is read as of processing
  time: whatever the table side wrote to its store before this batch.
- ``TableTableJoin``: an update of either side recomputes the joined value of its key from
  both sides' current values and compares it with the join's own store (the last joined
  value), so the update carries the old joined value it replaces (a retraction for a
  downstream aggregation) whatever the order and caching of the two sides.
- ``TableUpsert``: keeps the latest value per key of its input in a store (a null value
  deletes), forwarding the updates: the table side of a Processor API join.
- ``StreamStreamJoin`` (one node per side, ``JoinWindows``): each side's records in a window
  store, a batch joined with the other side's records in its windows (found through an
  in-memory key index of that store, values read with one fetch_batch), unmatched records of
  a left/outer join emitted once their window closes (the outer store).

A table is read through a *value getter*: its root store plus the stateless table operators
(filter, map_values) applied after it, as Kafka Streams' KTableValueGetter does, so a join
sees a filtered or mapped table as current as its store without materializing it again.
"""

from __future__ import annotations

import struct
import weakref

from cstreams.dsl.change import Change
from cstreams.dsl.operators import _Emitter
from cstreams.errors import ProcessingError, TopologyError
from cstreams.processor import BatchProcessor
from cstreams.windows import _ms

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

    def values_by_bytes(self, kbs, keys):
        """The value per key, in order: one get_batch_by_bytes (the store reads each missing
        key once); the transforms, if any, once per distinct key."""
        if not self.transforms:
            return self.store.get_batch_by_bytes(kbs)
        found = self.get_by_bytes(kbs, keys)
        return list(map(found.__getitem__, kbs))

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
            self.ctx.forward_batch(keys, out, like=batch)
            return
        if None not in table_values:
            out = [joiner(v, t) for v, t in zip(values, table_values)]
            self.ctx.forward_batch(keys, out, like=batch)
            return
        hit = [i for i, t in enumerate(table_values) if t is not None]
        if hit:
            sub = batch.select(hit)
            out = [joiner(values[i], table_values[i]) for i in hit]
            self.ctx.forward_batch(sub.keys, out, like=sub)

    def _lookup(self, lookup, from_source):
        """The table's value per lookup key (None for a null key or a missing one)."""
        kbs = None
        if from_source:
            kbs = self.ctx.reused_key_bytes(lookup, self.key_serde)
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
        return self.table.values_by_bytes(kbs, lookup)


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
            self.ctx.forward_batch(keys, batch.values, like=batch)
            return
        self.store.put_batch(keys, batch.values)
        self.ctx.forward_batch(keys, batch.values, like=batch)


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
        # One record per key updated: they do not line up with the input batch (no like=).
        self.ctx.forward_batch(out_k, out_new, out_ts)

    @staticmethod
    def _values(getter, keys):
        return getter.values_by_bytes(getter.store.keys_bytes(keys), keys)



# --- windowed stream-stream joins -------------------------------------------------------------

LEFT_SIDE, RIGHT_SIDE = b"L", b"R"
_T = struct.Struct(">q")
_pack_t = _T.pack

# Per side store of a stream-stream join: {key bytes: [(timestamp, store key)]} of the records
# it keeps, so that a batch finds its keys' records without a scan (values stay in the
# store). Built from the store by that side's processor at init (after a restoration, or
# when the task recreates its processors after an aborted transaction), kept in step with
# its writes, pruned past retention. Both sides' processors reach both through their stores.
_INDEXES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _build_index(store):
    index = {}
    for w, _ in store.all():
        ck = w.key
        found = index.get(ck[:-8])
        if found is None:
            index[ck[:-8]] = [(w.start, ck)]
        else:
            found.append((w.start, ck))
    return index


class JoinWindows:
    """Kafka Streams' JoinWindows: a left record stamped ``t`` joins the right records
    stamped in ``[t - before_ms, t + after_ms]`` (so a right record at ``t`` joins the left
    ones in ``[t - after_ms, t + before_ms]``), both ends inclusive.

    ``grace_ms``: how far out of order a record may arrive. The join's stream time is the
    largest timestamp it has seen on either side; a record stamped more than ``grace_ms``
    before it is late (dropped, counted in ``late_records_dropped``, reported to the error
    handler). A record's window closes when stream time passes its window end plus the grace
    (``t + after + grace`` for a left record, ``t + before + grace`` for a right one): a
    left/outer join emits an unmatched record with None then, and only then."""

    __slots__ = ("before_ms", "after_ms", "grace_ms")

    def __init__(self, before_ms, after_ms, grace_ms=0):
        self.before_ms = _ms(before_ms, "join window before")
        self.after_ms = _ms(after_ms, "join window after")
        self.grace_ms = _ms(grace_ms, "join window grace")
        for what, v in (("before", self.before_ms), ("after", self.after_ms),
                        ("grace", self.grace_ms)):
            if v < 0:
                raise TopologyError(f"JoinWindows: {what} must be >= 0 ms, got {v}")

    @classmethod
    def of_time_difference_and_grace(cls, time_difference_ms, grace_ms):
        """Records join when their timestamps differ by at most ``time_difference_ms``."""
        d = _ms(time_difference_ms, "join window time difference")
        return cls(d, d, grace_ms)

    @classmethod
    def of_time_difference_without_grace(cls, time_difference_ms):
        return cls.of_time_difference_and_grace(time_difference_ms, 0)

    def before(self, before_ms):
        """These windows with another ``before`` (the right side may be older by it)."""
        return JoinWindows(before_ms, self.after_ms, self.grace_ms)

    def after(self, after_ms):
        """These windows with another ``after`` (the right side may be newer by it)."""
        return JoinWindows(self.before_ms, after_ms, self.grace_ms)

    def retention_ms(self):
        """How long each side's store keeps a record: as long as a record that is not late
        can still join it."""
        return max(1, self.before_ms + self.after_ms + self.grace_ms)

    def __eq__(self, other):
        return isinstance(other, JoinWindows) and (
            (self.before_ms, self.after_ms, self.grace_ms)
            == (other.before_ms, other.after_ms, other.grace_ms))

    def __hash__(self):
        return hash((self.before_ms, self.after_ms, self.grace_ms))

    def __repr__(self):
        return (f"JoinWindows(before_ms={self.before_ms}, after_ms={self.after_ms}, "
                f"grace_ms={self.grace_ms})")


def stream_stream_join_stores(name, windows, how, left_value_serde, right_value_serde, *,
                              persistent=True, logging=True):
    """The stores of a windowed stream-stream join named ``name``: ``<name>-left-store`` and
    ``<name>-right-store`` (each side's records by time, key and sequence number: window
    stores, changelogged) and, for a left or outer join, ``<name>-outer-store`` (the records
    not joined yet, by the time their window closes: Kafka Streams' "outer join shared
    store"). Returns the specs, in that order."""
    from cstreams._impl import serde as _serde
    from cstreams.stores import window as _wstores

    if how not in (INNER, LEFT, OUTER):
        raise TopologyError(f"stream-stream join {name!r}: how must be 'inner', 'left' or "
                            f"'outer', got {how!r}")
    if not isinstance(windows, JoinWindows):
        raise TopologyError(f"stream-stream join {name!r}: windows must be JoinWindows, got "
                            f"{windows!r}")
    make = _wstores.rocksdb_window if persistent else _wstores.in_memory_window
    retention = windows.retention_ms()
    size = max(1, min(windows.before_ms + windows.after_ms, retention))
    specs = [make(f"{name}-left-store", _serde.BYTES, left_value_serde,
                  retention_ms=retention, window_size_ms=size, logging=logging),
             make(f"{name}-right-store", _serde.BYTES, right_value_serde,
                  retention_ms=retention, window_size_ms=size, logging=logging)]
    if how != INNER:
        specs.append(make(f"{name}-outer-store", _serde.BYTES, _serde.BYTES,
                          retention_ms=retention, window_size_ms=size, logging=logging))
    return specs


class StreamStreamJoin(BatchProcessor):
    """One side of a windowed stream-stream join (``side``: LEFT_SIDE or RIGHT_SIDE); the two
    sides' nodes share the join's stores (``stores``: left, right and, for left/outer joins,
    the outer store, as stream_stream_join_stores names them) and feed one merge node.

    Per batch of its side: records with a null key or value are dropped (Kafka Streams'
    rule), late ones too (see JoinWindows); an index of the other side's store (key ->
    timestamps, kept in memory beside it as the session store's index) gives the records
    within the batch's windows, and one fetch_batch reads the values of those that join;
    each record forwards ``joiner(left value, right value)`` per other-side record in its
    window, stamped with the later of the two timestamps; the batch goes into this side's
    store. A left (outer) join keeps the left (and right) records that joined nothing in the
    outer store, drops them from it when a later record joins them, and emits
    ``joiner(value, None)`` (``joiner(None, value)``), stamped with the record's time, once
    their window closes; never earlier."""

    def __init__(self, side, windows, joiner, how, stores, key_serde):
        if side not in (LEFT_SIDE, RIGHT_SIDE):
            raise TopologyError(f"StreamStreamJoin: side must be LEFT_SIDE or RIGHT_SIDE, "
                                f"got {side!r}")
        self.side = side
        self.windows = windows
        self.joiner = joiner
        self.how = how
        self.store_names = tuple(stores)
        self.key_serde = key_serde

    def init(self, ctx):
        from cstreams._impl import joining

        self.ctx = ctx
        self.task = ctx._task
        self._match = joining.match_windows
        self._index_records = joining.index_records
        w = self.windows
        left = self.side == LEFT_SIDE
        names = self.store_names
        self.left_store = ctx.get_store(names[0])
        self.right_store = ctx.get_store(names[1])
        self.outer = ctx.get_store(names[2]) if self.how != INNER else None
        self.this, self.other = ((self.left_store, self.right_store) if left
                                 else (self.right_store, self.left_store))
        self.other_side = RIGHT_SIDE if left else LEFT_SIDE
        self.before, self.after = (w.before_ms, w.after_ms) if left else (w.after_ms, w.before_ms)
        self.grace = w.grace_ms
        # How long after its timestamp a record's window closes, per side.
        self.close_after = {LEFT_SIDE: w.after_ms + w.grace_ms,
                            RIGHT_SIDE: w.before_ms + w.grace_ms}
        self.keeps_this = self.how == OUTER or (self.how == LEFT and left)
        self.keeps_other = self.how == OUTER or (self.how == LEFT and not left)
        _INDEXES[self.this] = _build_index(self.this)
        self._pruned_below = -1
        for store in (self.left_store, self.right_store):
            if store.retention_ms < w.retention_ms():
                raise TopologyError(
                    f"stream-stream join {ctx.node_name!r}: store {store.name!r} keeps "
                    f"{store.retention_ms} ms, less than the windows' before + after + grace "
                    f"({w.retention_ms()} ms)")

    def _stream_time(self):
        return max(self.left_store.meta("stream_time", -1),
                   self.right_store.meta("stream_time", -1))

    def process_batch(self, batch):
        keys, values, tss = batch.keys, batch.values, batch.timestamps
        if not keys:
            return
        if None in keys or None in values or min(tss) < 0:
            keep = self._usable(batch)
            if not keep:
                return
            batch = batch.select(keep)
            keys, values, tss = batch.keys, batch.values, batch.timestamps
        kbs = self.key_serde.serialize_batch(keys)
        before, after = self.before, self.after
        stream_time = self._stream_time()
        late, unmatched, pair_this, pair_time, pair_ck, now = self._match(
            kbs, tss, stream_time, self.grace, before, after, self._other_index())
        if late:
            self._late(batch, late, stream_time)
        if pair_this:
            self._forward_pairs(batch, pair_this, pair_time, pair_ck)
        self._store(kbs, tss, values, late, unmatched)
        if now > stream_time:
            # Only a stream time that moved closes windows: a record that is not late
            # closes after the stream time it arrived at.
            self.this.set_meta("stream_time", now)
            if self.outer is not None:
                self._emit_closed(now)
            for store in (self.left_store, self.right_store, self.outer):
                if store is not None:
                    store.expire(now)
            self._prune(now)

    def _prune(self, now):
        """Forget, every half retention, the indexed records that no record that is not
        late can join any more (older than stream time minus the retention)."""
        cutoff = now - self.windows.retention_ms()
        if cutoff - self._pruned_below < self.windows.retention_ms() // 2 + 1:
            return
        self._pruned_below = cutoff
        for store in (self.left_store, self.right_store):
            index = _INDEXES.get(store)
            if index is None:
                continue
            for kb in list(index):
                kept = [e for e in index[kb] if e[0] >= cutoff]
                if kept:
                    index[kb] = kept
                else:
                    del index[kb]

    # --- steps ----------------------------------------------------------------------------
    def _other_index(self):
        """The other side's index (built here if its processor has not run init yet)."""
        index = _INDEXES.get(self.other)
        if index is None:
            index = _INDEXES[self.other] = _build_index(self.other)
        return index

    def _forward_pairs(self, batch, pair_this, pair_time, pair_ck):
        """Forward the joined pairs; the other side's values are read with one fetch_batch
        of the distinct records that joined."""
        values, tss = batch.values, batch.timestamps
        matched = dict(zip(pair_ck, pair_time))
        cks = list(matched)
        times = list(matched.values())
        ovals = dict(zip(cks, self.other.fetch_batch(cks, times)))
        joiner = self.joiner
        if self.side == LEFT_SIDE:
            out = [joiner(values[i], ovals[ck]) for i, ck in zip(pair_this, pair_ck)]
        else:
            out = [joiner(ovals[ck], values[i]) for i, ck in zip(pair_this, pair_ck)]
        out_ts = [t if t > tss[i] else tss[i] for i, t in zip(pair_this, pair_time)]
        # Each result carries its record's offset and headers (Kafka Streams keeps them).
        like = batch.select(pair_this)
        self.ctx.forward_batch(like.keys, out, out_ts, like=like)
        if self.keeps_other:
            close = self.close_after[self.other_side]
            side = self.other_side
            oks = [side + ck for ck in cks]
            closes = [t + close for t in times]
            waiting = self.outer.fetch_batch(oks, closes)
            if any(v is not None for v in waiting):
                gone = [i for i, v in enumerate(waiting) if v is not None]
                self.outer.put_batch([oks[i] for i in gone], [closes[i] for i in gone],
                                     [None] * len(gone))

    def _store(self, kbs, tss, values, late, unmatched):
        """This side's records (not late) into its store and its index, each under a new
        sequence number (records with equal key and timestamp are all kept); the unmatched
        ones, in a left/outer join, into the outer store by the time their window closes."""
        this = self.this
        kept, cks, seq = self._index_records(kbs, tss, late, this.meta("seq", 0),
                                             _INDEXES[this])
        if not kept:
            return
        this.set_meta("seq", seq)
        this.put_batch(cks, [tss[i] for i in kept], [values[i] for i in kept])
        if self.keeps_this and unmatched:
            ck_of = dict(zip(kept, cks)) if late else cks
            close = self.close_after[self.side]
            side = self.side
            self.outer.put_batch([side + ck_of[i] for i in unmatched],
                                 [tss[i] + close for i in unmatched], [b""] * len(unmatched))

    def _emit_closed(self, now):
        """Emit, then forget, the unmatched records whose window closed (close < now)."""
        closed = self.outer.fetch_all(0, now - 1)
        if not closed:
            return
        by_side = {LEFT_SIDE: ([], []), RIGHT_SIDE: ([], [])}
        okeys, ocloses = [], []
        for w, _ in closed:
            ok = w.key
            okeys.append(ok)
            ocloses.append(w.start)
            side = ok[:1]
            cks, starts = by_side[side]
            cks.append(ok[1:])
            starts.append(w.start - self.close_after[side])
        joiner = self.joiner
        deser = self.key_serde.deserialize
        out_k, out_v, out_ts = [], [], []
        for side, store in ((LEFT_SIDE, self.left_store), (RIGHT_SIDE, self.right_store)):
            cks, starts = by_side[side]
            if not cks:
                continue
            for ck, t, v in zip(cks, starts, store.fetch_batch(cks, starts)):
                if v is None:
                    continue
                out_k.append(deser(ck[:-8]))
                out_v.append(joiner(v, None) if side == LEFT_SIDE else joiner(None, v))
                out_ts.append(t)
        self.outer.put_batch(okeys, ocloses, [None] * len(okeys))
        if out_k:
            self.ctx.forward_batch(out_k, out_v, out_ts)

    # --- bad and late input ---------------------------------------------------------------
    def _usable(self, batch):
        keys, values, tss = batch.keys, batch.values, batch.timestamps
        keep = []
        for i in range(len(keys)):
            if keys[i] is None or values[i] is None:
                self.task.metrics["join_null_dropped"] += 1
                continue
            if tss[i] < 0:
                off = batch.offsets[i]
                self.task.handle_error(ProcessingError(
                    f"stream-stream join {self.ctx.node_name!r}: the record at topic "
                    f"{batch.topic!r} partition {batch.partition} offset {off} has a negative "
                    f"timestamp ({tss[i]}); join windows need event time >= 0",
                    topic=batch.topic, partition=batch.partition, offset=off,
                    node=self.ctx.node_name), None)
                continue
            keep.append(i)
        return keep

    def _late(self, batch, late, stream_time):
        from cstreams import handlers as _handlers
        from cstreams.windowed import LateRecordError

        task = self.task
        task.metrics["late_records_dropped"] += len(late)
        if isinstance(task.error_handler, _handlers.FailHandler):
            return
        for i in late:
            off = batch.offsets[i]
            task.handle_error(LateRecordError(
                f"stream-stream join {self.ctx.node_name!r}: late record at topic "
                f"{batch.topic!r} partition {batch.partition} offset {off} (timestamp "
                f"{batch.timestamps[i]}): more than the grace ({self.grace} ms) behind stream "
                f"time", topic=batch.topic, partition=batch.partition, offset=off,
                node=self.ctx.node_name), None)


def add_stream_stream_join(topology, name, left, right, joiner, windows, *, how=INNER,
                           key_serde, left_value_serde, right_value_serde, persistent=True,
                           logging=True):
    """Processor API: a windowed stream-stream join of the nodes ``left`` and ``right``
    (their records must be co-partitioned: same key, same partitioning, equal partition
    counts) added to ``topology``: the nodes ``<name>-left`` and ``<name>-right`` (one
    StreamStreamJoin per side), their stores (stream_stream_join_stores) and the node
    ``name`` that merges their output. Returns ``name``, the node to continue from."""
    from cstreams import serde as _serde_mod
    from cstreams.dsl.operators import PassThrough

    ks = _serde_mod.resolve(key_serde, f"stream-stream join {name!r} key serde")
    specs = stream_stream_join_stores(
        name, windows, how, _serde_mod.resolve(left_value_serde, "left value serde"),
        _serde_mod.resolve(right_value_serde, "right value serde"),
        persistent=persistent, logging=logging)
    stores = [s.name for s in specs]
    from cstreams.processors import stream_stream_join

    lnode, rnode = f"{name}-left", f"{name}-right"
    topology.add_processor(lnode, stream_stream_join("left", stores, joiner, windows, how=how,
                                                     key_serde=ks), parents=[left])
    topology.add_processor(rnode, stream_stream_join("right", stores, joiner, windows,
                                                     how=how, key_serde=ks), parents=[right])
    for spec in specs:
        topology.add_store(spec, processors=[lnode, rnode])
    topology.add_processor(name, PassThrough, parents=[lnode, rnode])
    return name


__all__ = ["Change", "INNER", "JoinWindows", "LEFT", "LEFT_SIDE", "OUTER", "RIGHT_SIDE",
           "StreamStreamJoin", "StreamTableJoin", "TableGetter", "TableTableJoin",
           "TableUpsert", "add_stream_stream_join", "stream_stream_join_stores"]
