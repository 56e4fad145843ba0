"""StreamsBuilder: streams, tables, grouped streams and tables, built into a cs.Topology.

Every operator adds its nodes to the builder's Topology when it is called; ``build()`` returns
that Topology. Node, store and internal-topic names are generated from a counter in call order
(``KSTREAM-FILTER-0000000003``), as Kafka Streams names them, so the same code builds the same
names; ``name=`` replaces a generated name. Repartition topics are declared as internal
topics named ``<name>-repartition``; the App (and the TopologyTestDriver) prefix them with
``<application_id>-`` and create them with the partition count of the upstream sources.
"""

from __future__ import annotations

import re

from cstreams import joins as _joins
from cstreams import serde as _serde_mod
from cstreams import stores as _stores
from cstreams.dsl import operators as ops
from cstreams.dsl.change import ChangeSerde
from cstreams.errors import TopologyError
from cstreams.processors import (
    FilterProcessor,
    FlatMapProcessor,
    MapProcessor,
    MapValuesProcessor,
)
from cstreams.topology import Topology

STREAM_STREAM_JOINS = ("windowed stream-stream joins (cstreams issue 15) need the window store "
                       "of cstreams' windowing, which is not connected yet; join a stream "
                       "with a table (builder.table(), an aggregation) meanwhile")
WINDOWING_ISSUE = ("windowed aggregations come with cstreams' windowing (tumbling, hopping, "
                   "sliding and session windows), which is not connected to the DSL yet")


def _serde(s, where):
    return None if s is None else _serde_mod.resolve(s, where)


class StreamsBuilder:
    """Builds a Topology from streams and tables.

    ``default_key_serde`` / ``default_value_serde`` stand in wherever the DSL does not know a
    serde (after ``map``, ``process`` ...) and one is needed (a sink, a repartition topic, a
    store), as Kafka Streams' default serdes do; without them such a place is a build-time
    error that says which serde to pass.
    """

    def __init__(self, *, default_key_serde=None, default_value_serde=None, fuse=False):
        self._topology = Topology()
        self._counter = 0
        self.fuse = fuse
        self._steps = {}        # node name -> (kind, fn) of the fusable operators
        self.default_key_serde = _serde(default_key_serde, "default key serde")
        self.default_value_serde = _serde(default_value_serde, "default value serde")

    # --- naming ---------------------------------------------------------------------------
    def _name(self, prefix, name=None):
        if name is not None:
            return name
        n = self._counter
        self._counter += 1
        return f"{prefix}-{n:010d}"

    # --- sources --------------------------------------------------------------------------
    def stream(self, topics=None, *, pattern=None, key_serde=None, value_serde=None,
               name=None) -> "KStream":
        """A stream of the records of ``topics`` (a name or a list) or of every topic matching
        ``pattern``. Serdes default to the builder's defaults, else bytes."""
        ks = _serde(key_serde, "stream() key serde") or self.default_key_serde
        vs = _serde(value_serde, "stream() value serde") or self.default_value_serde
        node = self._name("KSTREAM-SOURCE", name)
        if isinstance(pattern, str):
            pattern = re.compile(pattern)
        self._topology.add_source(node, topics, pattern=pattern,
                                  key_serde=ks or _serde_mod.BYTES,
                                  value_serde=vs or _serde_mod.BYTES)
        return KStream(self, node, ks or _serde_mod.BYTES, vs or _serde_mod.BYTES, False)

    def table(self, topic: str, *, key_serde=None, value_serde=None, name=None,
              store_name=None, materialized="rocksdb", cache=True) -> "KTable":
        """The table of ``topic``: its latest value per key (a null value deletes the key),
        materialized in a key-value store whose changelog is ``topic`` itself (restoration
        reads the topic; no changelog topic is created). ``materialized``: "rocksdb" or
        "in_memory"."""
        if not isinstance(topic, str):
            raise TopologyError(f"table() reads one topic, got {topic!r}")
        ks = _serde(key_serde, "table() key serde") or self.default_key_serde
        vs = _serde(value_serde, "table() value serde") or self.default_value_serde
        ks, vs = ks or _serde_mod.BYTES, vs or _serde_mod.BYTES
        source = self._name("KTABLE-SOURCE", None if name is None else f"{name}-source")
        node = self._name("KTABLE-SOURCE-PROC", name)
        store = self._store(store_name, name, "KTABLE-SOURCE-STATE-STORE", materialized, ks,
                            vs, "table()")
        if store.key_serde is not ks or store.value_serde is not vs:
            raise TopologyError(
                f"table({topic!r}): store {store.name!r} must use the topic's serdes (its "
                f"changelog is the topic: restoration copies the topic's bytes into it); "
                f"pass the same key_serde and value_serde to both")
        store.source_changelog = topic
        self._topology.add_source(source, topic, key_serde=ks, value_serde=vs)
        flags = ops.TableFlags()
        self._topology.add_processor(
            node, _factory(ops.TableSource, store.name, flags, cache), parents=[source])
        self._topology.add_store(store, processors=[node])
        return KTable(self, node, ks, vs, flags, _joins.TableGetter(store.name))

    def global_table(self, topic: str, *, key_serde=None, value_serde=None, name=None,
                     store_name=None, materialized="rocksdb") -> "GlobalKTable":
        """Every partition of ``topic`` as one table on every instance (a global store:
        restored in full at start, kept current by the runtime), for
        ``stream.join(global_table, joiner, key_selector=...)`` with no co-partitioning."""
        if not isinstance(topic, str):
            raise TopologyError(f"global_table() reads one topic, got {topic!r}")
        ks = _serde(key_serde, "global_table() key serde") or self.default_key_serde
        vs = _serde(value_serde, "global_table() value serde") or self.default_value_serde
        ks, vs = ks or _serde_mod.BYTES, vs or _serde_mod.BYTES
        store = self._store(store_name, name, "GLOBALKTABLE-SOURCE-STATE-STORE", materialized,
                            ks, vs, "global_table()")
        if store.key_serde is not ks or store.value_serde is not vs:
            raise TopologyError(f"global_table({topic!r}): store {store.name!r} must use the "
                                f"topic's serdes")
        self._topology.add_global_store(store, topic)
        return GlobalKTable(self, store.name, ks, vs)

    def _store(self, store_name, node_name, prefix, materialized, key_serde, value_serde,
               where):
        if isinstance(materialized, _stores.StoreSpec):
            return materialized
        if store_name is None:
            store_name = (f"{node_name}-store" if node_name is not None
                          else self._name(prefix))
        if key_serde is None or value_serde is None:
            which = "key" if key_serde is None else "value"
            raise TopologyError(
                f"{where}: store {store_name!r} needs a {which} serde, and the DSL does not "
                f"know the {which} type here; pass {which}_serde= (or a default to "
                f"StreamsBuilder)")
        if materialized == "rocksdb":
            return _stores.rocksdb(store_name, key_serde, value_serde)
        if materialized == "in_memory":
            return _stores.in_memory(store_name, key_serde, value_serde)
        raise TopologyError(f"{where}: materialized must be 'rocksdb', 'in_memory' or a store "
                            f"from cstreams.stores, got {materialized!r}")

    def build(self) -> Topology:
        """The Topology (validated). With ``fuse=True``, chains of per-record stateless
        operators (filter, filter_not, map, map_values, select_key) each run as one node
        (cstreams.dsl.fusion)."""
        self._topology.validate()
        if not self.fuse:
            return self._topology
        from cstreams.dsl.fusion import fuse

        topology = fuse(self._topology, self._steps)
        topology.validate()
        return topology

    @property
    def topology(self) -> Topology:
        return self._topology


def _factory(cls, *args):
    return lambda: cls(*args)


class _Ended:
    """What to() and foreach() return: the stream ends there."""

    def __init__(self, what, node):
        self._what = what
        self._node = node

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise TopologyError(
            f"{attr}() after {self._what} (node {self._node!r}): {self._what} ends a stream; "
            f"apply {attr}() to the stream before it, or read the topic back with "
            f"builder.stream()")


class KStream:
    """A stream of records. Every operator returns a new KStream (or a grouped stream, a
    table); the one it was called on stays usable (fan-out)."""

    def __init__(self, builder, node, key_serde, value_serde, key_changed):
        self._b = builder
        self._node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.key_changed = key_changed

    @property
    def node_name(self):
        return self._node

    def _add(self, prefix, name, factory, key_serde, value_serde, key_changed, stores=(),
             step=None):
        node = self._b._name(f"KSTREAM-{prefix}", name)
        self._b._topology.add_processor(node, factory, parents=[self._node])
        if step is not None:
            self._b._steps[node] = step
        for s in stores:
            self._b._topology.add_store(s, processors=[node])
        return KStream(self._b, node, key_serde, value_serde, key_changed)

    def _same(self, prefix, name, factory, step=None):
        return self._add(prefix, name, factory, self.key_serde, self.value_serde,
                         self.key_changed, step=step)

    # --- stateless ------------------------------------------------------------------------
    def filter(self, predicate, *, batch=False, name=None) -> "KStream":
        """Keep records for which ``predicate(key, value)`` is true. ``batch=True``:
        ``predicate(keys, values)`` returns one truth value per record."""
        if batch:
            return self._same("FILTER", name, _factory(ops.BatchFilter, predicate))
        return self._same("FILTER", name, _factory(FilterProcessor, predicate),
                          ("filter", predicate))

    def filter_not(self, predicate, *, batch=False, name=None) -> "KStream":
        """Drop records for which the predicate is true."""
        if batch:
            return self._same("FILTER", name, _factory(
                ops.BatchFilter, lambda ks, vs: [not f for f in predicate(ks, vs)]))
        return self._same("FILTER", name, _factory(
            FilterProcessor, lambda k, v: not predicate(k, v)), ("filter_not", predicate))

    def map(self, fn, *, batch=False, key_serde=None, value_serde=None,
            name=None) -> "KStream":
        """``fn(key, value) -> (key, value)``; ``batch=True``: ``fn(keys, values) -> (keys,
        values)``. The key may change: a later grouping repartitions."""
        cls = ops.BatchMap if batch else MapProcessor
        return self._add("MAP", name, _factory(cls, fn), _serde(key_serde, "map key serde"),
                         _serde(value_serde, "map value serde"), True,
                         step=None if batch else ("map", fn))

    def map_values(self, fn, *, batch=False, value_serde=None, name=None) -> "KStream":
        """``fn(value) -> value``; ``batch=True``: ``fn(values) -> values``."""
        cls = ops.BatchMapValues if batch else MapValuesProcessor
        return self._add("MAPVALUES", name, _factory(cls, fn), self.key_serde,
                         _serde(value_serde, "map_values value serde"), self.key_changed,
                         step=None if batch else ("map_values", fn))

    def flat_map(self, fn, *, batch=False, key_serde=None, value_serde=None,
                 name=None) -> "KStream":
        """``fn(key, value) -> iterable of (key, value)``; ``batch=True``: ``fn(keys,
        values)`` -> one such iterable per record."""
        factory = (_factory(ops.BatchFlatMap, fn, False) if batch
                   else _factory(FlatMapProcessor, fn))
        return self._add("FLATMAP", name, factory, _serde(key_serde, "flat_map key serde"),
                         _serde(value_serde, "flat_map value serde"), True)

    def flat_map_values(self, fn, *, batch=False, value_serde=None,
                        name=None) -> "KStream":
        """``fn(value) -> iterable of values``, each with the record's key; ``batch=True``:
        ``fn(values)`` -> one iterable of values per record."""
        factory = (_factory(ops.BatchFlatMap, fn, True) if batch
                   else _factory(FlatMapProcessor, lambda k, v: [(k, x) for x in fn(v)]))
        return self._add("FLATMAPVALUES", name, factory, self.key_serde,
                         _serde(value_serde, "flat_map_values value serde"), self.key_changed)

    def select_key(self, fn, *, batch=False, key_serde=None, name=None) -> "KStream":
        """``fn(key, value) -> new key``; ``batch=True``: ``fn(keys, values) -> keys``."""
        cls = ops.BatchSelectKey if batch else ops.SelectKey
        return self._add("KEY-SELECT", name, _factory(cls, fn),
                         _serde(key_serde, "select_key key serde"), self.value_serde, True,
                         step=None if batch else ("select_key", fn))

    def peek(self, fn, *, batch=False, name=None) -> "KStream":
        """Call ``fn(key, value)`` per record (``batch=True``: ``fn(keys, values)`` per
        batch); the records go on unchanged."""
        return self._same("PEEK", name, _factory(ops.BatchPeek if batch else ops.Peek, fn))

    def foreach(self, fn, *, batch=False, name=None) -> _Ended:
        """Call ``fn(key, value)`` per record (``batch=True``: per batch); ends the stream."""
        s = self._same("FOREACH", name,
                       _factory(ops.BatchPeek if batch else ops.Peek, fn))
        return _Ended("foreach()", s._node)

    def merge(self, *others, name=None) -> "KStream":
        """One stream of this one's records and the others' (order kept per input batch)."""
        if not others:
            raise TopologyError("merge() needs at least one other stream")
        for o in others:
            if not isinstance(o, KStream) or o._b is not self._b:
                raise TopologyError(f"merge(): {o!r} is not a stream of the same builder")
        streams = (self,) + others
        node = self._b._name("KSTREAM-MERGE", name)
        self._b._topology.add_processor(node, ops.PassThrough,
                                        parents=[s._node for s in streams])

        def same(attr):
            vals = {getattr(s, attr) for s in streams}
            return vals.pop() if len(vals) == 1 else None

        return KStream(self._b, node, same("key_serde"), same("value_serde"),
                       any(s.key_changed for s in streams))

    def split(self, *, name=None) -> "BranchedKStream":
        """Route each record to the first branch whose predicate it satisfies:
        ``stream.split().branch(p1, name="a").branch(p2, name="b").default_branch()``
        returns {"a": KStream, "b": KStream, "0": KStream (the default) ...}."""
        return BranchedKStream(self, self._b._name("KSTREAM-BRANCH", name))

    def process(self, processor, *, stores=(), key_serde=None, value_serde=None,
                name=None) -> "KStream":
        """Drop down to the Processor API: ``processor`` is a Processor or BatchProcessor
        class or a factory; ``stores`` are store specs (cstreams.stores) to add and connect,
        or names of stores already in the topology. The key may change."""
        node = self._b._name("KSTREAM-PROCESSOR", name)
        topo = self._b._topology
        names = []
        for s in stores:
            if isinstance(s, _stores.StoreSpec):
                if s.name not in topo.stores:
                    topo.add_store(s)
                names.append(s.name)
            elif isinstance(s, str):
                names.append(s)
            else:
                raise TopologyError(f"process() node {node!r}: a store is a store spec or a "
                                    f"name, got {s!r}")
        topo.add_processor(node, processor, parents=[self._node], stores=names)
        return KStream(self._b, node, _serde(key_serde, "process key serde"),
                       _serde(value_serde, "process value serde"), True)

    # --- sinks ----------------------------------------------------------------------------
    def _sink_serdes(self, key_serde, value_serde, where):
        ks = (_serde(key_serde, f"{where} key serde") or self.key_serde
              or self._b.default_key_serde)
        vs = (_serde(value_serde, f"{where} value serde") or self.value_serde
              or self._b.default_value_serde)
        for which, s in (("key", ks), ("value", vs)):
            if s is None:
                raise TopologyError(
                    f"{where} after node {self._node!r}: the {which} serde is unknown (an "
                    f"earlier operator changed the {which}); pass {which}_serde= to it or "
                    f"here, or a default to StreamsBuilder")
        return ks, vs

    def to(self, topic, *, key_serde=None, value_serde=None, partitioner=None, topics=None,
           name=None) -> _Ended:
        """Write the stream to ``topic``, or, when ``topic`` is a callable ``fn(key, value)
        -> topic name``, to the topic it chooses per record among ``topics`` (declared, so
        that the app can check they exist). Ends the stream."""
        where = "to(topic chooser)" if callable(topic) else f"to({topic!r})"
        ks, vs = self._sink_serdes(key_serde, value_serde, where)
        topo = self._b._topology
        if callable(topic):
            if not topics:
                raise TopologyError("to(topic chooser) needs topics=[...]: the topics it may "
                                    "choose")
            router = self._b._name("KSTREAM-TOPIC-ROUTER", name)
            sinks = {t: f"{router}-{t}" for t in topics}
            topo.add_processor(router, _factory(ops.TopicRouter, topic, sinks),
                               parents=[self._node])
            for t, sink in sinks.items():
                topo.add_sink(sink, t, parents=[router], key_serde=ks, value_serde=vs,
                              partitioner=partitioner)
            return _Ended("to()", router)
        sink = self._b._name("KSTREAM-SINK", name)
        topo.add_sink(sink, topic, parents=[self._node], key_serde=ks, value_serde=vs,
                      partitioner=partitioner)
        return _Ended("to()", sink)

    def repartition(self, *, key_serde=None, value_serde=None, name=None) -> "KStream":
        """Send the records through an internal topic ``<application_id>-<name>-repartition``
        partitioned by key, and continue from it."""
        ks, vs = self._sink_serdes(key_serde, value_serde, "repartition()")
        base = self._b._name("KSTREAM-REPARTITION", name)
        node = _repartition(self._b, self._node, base, ks, vs)
        return KStream(self._b, node, ks, vs, False)

    # --- grouping -------------------------------------------------------------------------
    def group_by_key(self, *, key_serde=None, value_serde=None,
                     name=None) -> "KGroupedStream":
        """Group by the current key; repartitions first only if an operator changed the key."""
        return KGroupedStream(self, _serde(key_serde, "group_by_key key serde"),
                              _serde(value_serde, "group_by_key value serde"), name,
                              self.key_changed)

    def group_by(self, fn, *, key_serde=None, value_serde=None,
                 name=None) -> "KGroupedStream":
        """Group by ``fn(key, value) -> new key`` (always repartitions)."""
        keyed = self.select_key(fn, key_serde=key_serde,
                                name=None if name is None else f"{name}-key-select")
        return KGroupedStream(keyed, _serde(key_serde, "group_by key serde"),
                              _serde(value_serde, "group_by value serde"), name, True)

    def to_table(self, *, name=None, store_name=None, materialized="rocksdb",
                 cache=True) -> "KTable":
        """This stream read as a table (latest value per key)."""
        return self.group_by_key(name=name).reduce(
            lambda _agg, v: v, name=name, store_name=store_name, materialized=materialized,
            cache=cache)

    # --- joins ----------------------------------------------------------------------------
    def join(self, other, joiner, windows=None, *, key_selector=None, value_serde=None,
             name=None) -> "KStream":
        """Stream-table join: ``joiner(value, table value)`` for each record whose key is in
        ``other`` (a KTable of this builder), read as of processing time; records with a
        null key or value are dropped. ``key_selector(key, value)`` re-keys the stream
        first. A stream whose key changed goes through a repartition topic
        (``<application_id>-<name>-repartition``) keyed like the table, as in Kafka
        Streams. One get_batch of the distinct keys per stream batch."""
        return self._table_join(other, joiner, windows, key_selector, value_serde, name,
                                False, "join")

    def left_join(self, other, joiner, windows=None, *, key_selector=None, value_serde=None,
                  name=None) -> "KStream":
        """As join(), but a record whose key is not in the table is joined with None (and
        one with a null key too)."""
        return self._table_join(other, joiner, windows, key_selector, value_serde, name,
                                True, "left_join")

    def _global_join(self, table, joiner, windows, key_selector, value_serde, name, left,
                     what):
        if table._b is not self._b:
            raise TopologyError(f"{what}(): {table!r} is not a table of the same builder")
        if windows is not None:
            raise TopologyError(f"{what}(): a stream-table join takes no windows")
        prefix = "LEFTJOIN" if left else "JOIN"
        out = self._add(prefix, name, _factory(_joins.StreamTableJoin, table.store_name,
                                               joiner, key_selector, left),
                        self.key_serde, _serde(value_serde, f"{what} value serde"),
                        self.key_changed)
        self._b._topology.connect_store(table.store_name, [out._node])
        return out

    def outer_join(self, other, joiner, windows=None, **kwargs):
        if isinstance(other, (KTable, GlobalKTable)):
            raise TopologyError("outer_join(): a stream-table join is inner (join) or left "
                                "(left_join); Kafka Streams has no stream-table outer join")
        raise NotImplementedError(f"KStream.outer_join: {STREAM_STREAM_JOINS}")

    def _table_join(self, table, joiner, windows, key_selector, value_serde, name, left,
                    what):
        if isinstance(table, GlobalKTable):
            return self._global_join(table, joiner, windows, key_selector, value_serde, name,
                                     left, what)
        if isinstance(table, KStream):
            raise NotImplementedError(f"KStream.{what} of two streams: {STREAM_STREAM_JOINS}")
        if not isinstance(table, KTable) or table._b is not self._b:
            raise TopologyError(f"{what}(): {table!r} is not a table of the same builder")
        if windows is not None:
            raise TopologyError(f"{what}(): a stream-table join takes no windows")
        if table._getter is None:
            raise TopologyError(f"{what}(): table {table._node!r} has no store to read")
        stream = self
        if key_selector is not None:
            stream = stream.select_key(key_selector, key_serde=table.key_serde,
                                       name=None if name is None else f"{name}-key-select")
        if stream.key_changed:
            stream = stream.repartition(key_serde=stream.key_serde or table.key_serde,
                                        name=name)
        prefix = "LEFTJOIN" if left else "JOIN"
        out = stream._add(prefix, name, _factory(_joins.StreamTableJoin, table._getter,
                                                 joiner, None, left),
                          stream.key_serde, _serde(value_serde, f"{what} value serde"), False)
        self._b._topology.connect_store(table._getter.store_name, [out._node])
        return out

    def __repr__(self):
        return f"<KStream {self._node}>"


def _repartition(builder, parent, base, key_serde, value_serde):
    """Sink to the internal topic ``<base>-repartition`` and a source reading it back; returns
    the source's name."""
    topo = builder._topology
    topic = f"{base}-repartition"
    topo.add_sink(f"{base}-repartition-sink", topic, parents=[parent], key_serde=key_serde,
                  value_serde=value_serde, internal=True)
    source = f"{base}-repartition-source"
    topo.add_source(source, topic, key_serde=key_serde, value_serde=value_serde,
                    internal=True)
    return source


class BranchedKStream:
    """split(): add branches, then default_branch() or no_default_branch() to get the dict of
    branch streams (keyed by branch name, or its position as a string)."""

    def __init__(self, stream, node):
        self._stream = stream
        self._node = node
        self._branches = []      # (branch name, predicate)
        self._batch = None
        self._done = False

    def branch(self, predicate, *, name=None, batch=False) -> "BranchedKStream":
        """``predicate(key, value)``; ``batch=True``: ``predicate(keys, values)`` -> one truth
        value per record (all branches of one split take the same form)."""
        if self._done:
            raise TopologyError(f"split {self._node!r}: branch() after default_branch()")
        if self._batch is not None and self._batch != batch:
            raise TopologyError(f"split {self._node!r}: mix of batch and per-record "
                                f"predicates")
        self._batch = batch
        label = str(len(self._branches)) if name is None else name
        if any(label == b for b, _ in self._branches):
            raise TopologyError(f"split {self._node!r}: duplicate branch name {label!r}")
        self._branches.append((label, predicate))
        return self

    def default_branch(self, *, name=None) -> dict:
        return self._finish(str(len(self._branches)) if name is None else name)

    def no_default_branch(self) -> dict:
        return self._finish(None)

    def _finish(self, default):
        if self._done:
            raise TopologyError(f"split {self._node!r} is finished already")
        if not self._branches:
            raise TopologyError(f"split {self._node!r} has no branch")
        self._done = True
        s, b = self._stream, self._stream._b
        topo = b._topology
        labels = [lbl for lbl, _ in self._branches]
        children = [f"{self._node}-{lbl}" for lbl in labels]
        default_child = None if default is None else f"{self._node}-{default}"
        topo.add_processor(self._node, _factory(
            ops.Branch, [p for _, p in self._branches], children, default_child,
            bool(self._batch)), parents=[s._node])
        out = {}
        pairs = list(zip(labels, children))
        if default is not None:
            pairs.append((default, default_child))
        for label, child in pairs:
            topo.add_processor(child, ops.PassThrough, parents=[self._node])
            out[label] = KStream(b, child, s.key_serde, s.value_serde, s.key_changed)
        return out


class KGroupedStream:
    """A stream grouped by key: count, reduce, aggregate -> KTable."""

    def __init__(self, stream, key_serde, value_serde, name, repartition):
        self._stream = stream
        self._b = stream._b
        self.key_serde = key_serde or stream.key_serde or self._b.default_key_serde
        self.value_serde = value_serde or stream.value_serde or self._b.default_value_serde
        self._name = name
        self._repartition = repartition

    def _source(self, store_name):
        """The node the aggregation reads: the stream, or the repartition topic's source."""
        s = self._stream
        if not self._repartition:
            return s._node
        base = self._name if self._name is not None else store_name
        return _repartition(self._b, s._node, base, self.key_serde, self.value_serde)

    def _aggregate(self, prefix, what, name, store_name, materialized, value_serde, make):
        b = self._b
        for which, serde in (("key", self.key_serde), ("value", self.value_serde)):
            if serde is None and self._repartition:
                raise TopologyError(
                    f"{what} after node {self._stream._node!r}: the key changed, so the "
                    f"records go through a repartition topic, which needs a {which} serde; "
                    f"pass key_serde= and value_serde= to group_by()/group_by_key() (or "
                    f"defaults to StreamsBuilder)")
        node = b._name(f"KSTREAM-{prefix}", name)
        store = b._store(store_name, name, f"KSTREAM-{prefix}-STATE-STORE", materialized,
                         self.key_serde, value_serde, f"{what} (node {node!r})")
        parent = self._source(store.name)
        flags = ops.TableFlags()
        b._topology.add_processor(node, make(store.name, flags), parents=[parent])
        b._topology.add_store(store, processors=[node])
        return KTable(b, node, self.key_serde, store.value_serde, flags,
                      _joins.TableGetter(store.name))

    def count(self, *, name=None, store_name=None, materialized="rocksdb",
              cache=True) -> "KTable":
        """Records per key (int64); records with a null key are skipped. ``cache``: forward
        the latest count per key at each commit (False: every update)."""
        return self._aggregate("AGGREGATE", "count()", name, store_name, materialized,
                               _serde_mod.INT64,
                               lambda st, fl: _factory(ops.StreamCount, st, fl, cache))

    def reduce(self, reducer, *, name=None, store_name=None, materialized="rocksdb",
               cache=True) -> "KTable":
        """``reducer(aggregate, value) -> aggregate``; the first value of a key is its
        aggregate. The store uses the stream's value serde."""
        def aggregator(_k, v, agg):
            return v if agg is _FIRST else reducer(agg, v)

        return self._aggregate(
            "REDUCE", "reduce()", name, store_name, materialized, self.value_serde,
            lambda st, fl: _factory(ops.StreamAggregate, st, _first, aggregator, fl, cache))

    def aggregate(self, initializer, aggregator, *, value_serde=None, name=None,
                  store_name=None, materialized="rocksdb", cache=True) -> "KTable":
        """``aggregator(key, value, aggregate) -> aggregate``, starting from
        ``initializer()``; ``value_serde`` is the aggregate's serde (the store's)."""
        vs = _serde(value_serde, "aggregate value serde") or self._b.default_value_serde
        return self._aggregate(
            "AGGREGATE", "aggregate()", name, store_name, materialized, vs,
            lambda st, fl: _factory(ops.StreamAggregate, st, initializer, aggregator, fl,
                                    cache))

    def windowed_by(self, windows):
        """Hook for windowed aggregations (not connected yet).

        To connect it: return a windowed grouped stream whose count/reduce/aggregate add the
        windowing processor and its window store the way ``_aggregate`` does: the node to read
        is ``self._source(store_name)`` (the stream, or the repartition topic's source when
        the key changed), serdes are ``self.key_serde`` / ``self.value_serde``, names come
        from ``self._b._name(prefix, name)``, nodes and stores go to ``self._b._topology``;
        the result is a KTable over the windowed keys."""
        raise NotImplementedError(f"windowed_by(): {WINDOWING_ISSUE}")


_FIRST = object()


def _first():
    return _FIRST


class KTable:
    """A changelog stream read as a table: the latest value per key."""

    def __init__(self, builder, node, key_serde, value_serde, flags, getter=None):
        self._b = builder
        self._node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self._flags = flags
        self._upstream = []      # the table flags this table's values come from
        # How a join reads this table's current values: its store and the stateless
        # operators after it (cstreams.joins.TableGetter).
        self._getter = getter

    @property
    def node_name(self):
        return self._node

    def _need_old_values(self):
        stack = [self]
        while stack:
            t = stack.pop()
            t._flags.send_old = True
            stack.extend(t._upstream)

    def _op(self, prefix, name, make, value_serde, transform):
        node = self._b._name(f"KTABLE-{prefix}", name)
        flags = ops.TableFlags()
        self._b._topology.add_processor(node, make(flags), parents=[self._node])
        getter = None if self._getter is None else self._getter.with_transform(transform)
        out = KTable(self._b, node, self.key_serde, value_serde, flags, getter)
        out._upstream = [self]
        return out

    def filter(self, predicate, *, name=None) -> "KTable":
        """Keys whose value fails ``predicate(key, value)`` leave the table (a tombstone)."""
        fl = self._flags
        return self._op("FILTER", name, lambda out: _factory(ops.TableFilter, predicate,
                                                             False, fl, out), self.value_serde,
                        lambda k, v: v if predicate(k, v) else None)

    def filter_not(self, predicate, *, name=None) -> "KTable":
        fl = self._flags
        return self._op("FILTER", name, lambda out: _factory(ops.TableFilter, predicate,
                                                             True, fl, out), self.value_serde,
                        lambda k, v: None if predicate(k, v) else v)

    def map_values(self, fn, *, value_serde=None, name=None) -> "KTable":
        """``fn(value) -> value`` for every key."""
        fl = self._flags
        return self._op("MAPVALUES", name, lambda out: _factory(ops.TableMapValues, fn, fl,
                                                                out),
                        _serde(value_serde, "map_values value serde"), lambda k, v: fn(v))

    def to_stream(self, *, name=None) -> KStream:
        """The table's updates as a stream (null values: deletions)."""
        node = self._b._name("KTABLE-TOSTREAM", name)
        self._b._topology.add_processor(node, _factory(ops.TableToStream, self._flags),
                                        parents=[self._node])
        return KStream(self._b, node, self.key_serde, self.value_serde, False)

    def group_by(self, fn, *, key_serde=None, value_serde=None,
                 name=None) -> "KGroupedTable":
        """Regroup by ``fn(key, value) -> (new key, new value)``: through a repartition topic,
        each update retracts the old value from its old group and adds the new one."""
        self._need_old_values()
        b = self._b
        ks = _serde(key_serde, "group_by key serde") or self.key_serde or b.default_key_serde
        vs = (_serde(value_serde, "group_by value serde") or self.value_serde
              or b.default_value_serde)
        node = b._name("KTABLE-SELECT", None if name is None else f"{name}-select")
        b._topology.add_processor(node, _factory(ops.TableGroupBy, fn), parents=[self._node])
        return KGroupedTable(b, node, ks, vs, name)

    # --- joins ----------------------------------------------------------------------------
    def join(self, other, joiner, *, value_serde=None, name=None, store_name=None,
             materialized="rocksdb", cache=True) -> "KTable":
        """Table-table join: ``joiner(value, other value)`` for the keys in both tables,
        updated whenever either side changes (a key that leaves the join becomes a
        tombstone). The joined values live in a store of their own (``value_serde``), so
        that each update carries the value it replaces where a downstream operator needs it
        (a group_by retracts it). Both tables must be co-partitioned."""
        return self._table_join(other, joiner, _joins.INNER, value_serde, name, store_name,
                                materialized, cache)

    def left_join(self, other, joiner, *, value_serde=None, name=None, store_name=None,
                  materialized="rocksdb", cache=True) -> "KTable":
        """As join(), for every key of this table (``other value`` None when absent)."""
        return self._table_join(other, joiner, _joins.LEFT, value_serde, name, store_name,
                                materialized, cache)

    def outer_join(self, other, joiner, *, value_serde=None, name=None, store_name=None,
                   materialized="rocksdb", cache=True) -> "KTable":
        """As join(), for every key of either table (the missing side None)."""
        return self._table_join(other, joiner, _joins.OUTER, value_serde, name, store_name,
                                materialized, cache)

    def _table_join(self, other, joiner, how, value_serde, name, store_name, materialized,
                    cache):
        what = {"inner": "join", "left": "left_join", "outer": "outer_join"}[how]
        if not isinstance(other, KTable) or other._b is not self._b:
            raise TopologyError(f"KTable.{what}(): {other!r} is not a table of the same "
                                f"builder")
        if other is self or other._node == self._node:
            raise TopologyError(f"KTable.{what}(): a table cannot be joined with itself")
        for t in (self, other):
            if t._getter is None:
                raise TopologyError(f"KTable.{what}(): table {t._node!r} has no store to read")
        if (self.key_serde is not None and other.key_serde is not None
                and self.key_serde is not other.key_serde):
            raise TopologyError(f"KTable.{what}(): the tables {self._node!r} and "
                                f"{other._node!r} have different key serdes")
        b = self._b
        prefix = {"inner": "JOIN", "left": "LEFTJOIN", "outer": "OUTERJOIN"}[how]
        node = b._name(f"KTABLE-{prefix}", name)
        vs = _serde(value_serde, f"{what} value serde") or b.default_value_serde
        store = b._store(store_name, name, f"KTABLE-{prefix}-STATE-STORE", materialized,
                         self.key_serde or other.key_serde, vs, f"KTable.{what}() (node "
                                                                f"{node!r})")
        flags = ops.TableFlags()
        b._topology.add_processor(
            node, _factory(_joins.TableTableJoin, self._getter, other._getter, store.name,
                           joiner, how, flags, cache),
            parents=[self._node, other._node],
            stores=[self._getter.store_name, other._getter.store_name])
        b._topology.add_store(store, processors=[node])
        return KTable(b, node, self.key_serde or other.key_serde, store.value_serde, flags,
                      _joins.TableGetter(store.name))

    def __repr__(self):
        return f"<KTable {self._node}>"


class GlobalKTable:
    """global_table(): a topic held in full on every instance; joined by streams through a
    key selector (``stream.join(global_table, joiner, key_selector=fn(k, v) -> table
    key)``), which does not change the stream's key."""

    def __init__(self, builder, store_name, key_serde, value_serde):
        self._b = builder
        self.store_name = store_name
        self.key_serde = key_serde
        self.value_serde = value_serde

    def __repr__(self):
        return f"<GlobalKTable {self.store_name}>"


class KGroupedTable:
    """A table regrouped by a new key: aggregate with an adder and a subtractor."""

    def __init__(self, builder, select_node, key_serde, value_serde, name):
        self._b = builder
        self._select = select_node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self._name = name

    def _aggregate(self, prefix, what, name, store_name, materialized, value_serde,
                   initializer, adder, subtractor, cache):
        b = self._b
        node = b._name(f"KTABLE-{prefix}", name)
        store = b._store(store_name, name, f"KTABLE-{prefix}-STATE-STORE", materialized,
                         self.key_serde, value_serde, f"{what} (node {node!r})")
        base = self._name if self._name is not None else store.name
        for which, serde in (("key", self.key_serde), ("value", self.value_serde)):
            if serde is None:
                raise TopologyError(
                    f"{what} of table group_by {self._select!r}: the repartition topic "
                    f"{base + '-repartition'!r} needs a {which} serde; pass {which}_serde= "
                    f"to group_by()")
        source = _repartition(b, self._select, base, self.key_serde,
                              ChangeSerde(self.value_serde))
        flags = ops.TableFlags()
        b._topology.add_processor(node, _factory(ops.TableAggregate, store.name, initializer,
                                                 adder, subtractor, flags, cache),
                                  parents=[source])
        b._topology.add_store(store, processors=[node])
        return KTable(b, node, self.key_serde, store.value_serde, flags,
                      _joins.TableGetter(store.name))

    def aggregate(self, initializer, adder, subtractor, *, value_serde=None, name=None,
                  store_name=None, materialized="rocksdb", cache=True) -> KTable:
        """``adder(key, value, aggregate)`` for a value entering the group,
        ``subtractor(key, value, aggregate)`` for one leaving it."""
        vs = _serde(value_serde, "aggregate value serde") or self._b.default_value_serde
        return self._aggregate("AGGREGATE", "aggregate()", name, store_name, materialized, vs,
                               initializer, adder, subtractor, cache)

    def count(self, *, name=None, store_name=None, materialized="rocksdb",
              cache=True) -> KTable:
        return self._aggregate("AGGREGATE", "count()", name, store_name, materialized,
                               _serde_mod.INT64, lambda: 0, lambda k, v, a: a + 1,
                               lambda k, v, a: a - 1, cache)

    def reduce(self, adder, subtractor, *, name=None, store_name=None,
               materialized="rocksdb", cache=True) -> KTable:
        """``adder(aggregate, value)``, ``subtractor(aggregate, value)``; the store uses the
        grouped value serde."""
        return self._aggregate(
            "REDUCE", "reduce()", name, store_name, materialized, self.value_serde, _first,
            lambda k, v, a: v if a is _FIRST else adder(a, v),
            lambda k, v, a: None if a is _FIRST else subtractor(a, v), cache)


__all__ = ["BranchedKStream", "GlobalKTable", "KGroupedStream", "KGroupedTable", "KStream",
           "KTable", "StreamsBuilder"]
