"""Windowed grouped streams: ``group_by_key().windowed_by(windows)`` -> count, reduce,
aggregate (and sum, min, max, mean), each a KTable over Windowed keys.

The aggregation is the Processor API's windowed processor (cstreams.windowed) with its window
or session store; the result table's key serde is Kafka Streams' time-windowed (or
session-windowed) format over the grouping key serde, so ``to_stream().to(topic)`` writes
keys a Kafka Streams consumer reads with TimeWindowedSerde / SessionWindowedSerde.
"""

from __future__ import annotations

from cstreams import serde as _serde_mod
from cstreams import stores as _stores
from cstreams import windowed as W
from cstreams.dsl import operators as ops
from cstreams.dsl.builder import KTable
from cstreams.errors import TopologyError
from cstreams.windows import SessionWindows, SlidingWindows, check_windows


class WindowedKStream:
    """A grouped stream cut into windows (TimeWindows, SlidingWindows, SessionWindows)."""

    def __init__(self, grouped, windows):
        check_windows(windows)
        self._grouped = grouped
        self._b = grouped._b
        self.windows = windows

    def _table(self, prefix, what, aggregation, name, store_name, materialized, emit,
               retention_ms, out_serde):
        g, b = self._grouped, self._b
        if g._repartition:
            for which, serde in (("key", g.key_serde), ("value", g.value_serde)):
                if serde is None:
                    raise TopologyError(
                        f"{what}: the key changed, so the records go through a repartition "
                        f"topic, which needs a {which} serde; pass key_serde= and "
                        f"value_serde= to group_by()/group_by_key()")
        if g.key_serde is None:
            raise TopologyError(f"{what}: the window store needs a key serde; pass key_serde= "
                                f"to group_by_key() (or a default to StreamsBuilder)")
        node = b._name(f"KSTREAM-{prefix}", name)
        sliding = isinstance(self.windows, SlidingWindows)
        if isinstance(materialized, _stores.StoreSpec) and not sliding:
            specs = [materialized]
        elif materialized in ("rocksdb", "in_memory"):
            sname = store_name or (f"{node}-store" if name is not None
                                   else b._name(f"KSTREAM-{prefix}-STATE-STORE"))
            specs = W.stores(sname, self.windows, aggregation, key_serde=g.key_serde,
                             value_serde=g.value_serde, persistent=materialized == "rocksdb",
                             retention_ms=retention_ms)
        else:
            raise TopologyError(f"{what}: materialized must be 'rocksdb', 'in_memory' or (not "
                                f"for sliding windows) a window store spec, got "
                                f"{materialized!r}")
        store = specs[0]
        parent = g._source(store.name)
        b._topology.add_processor(
            node, W.aggregate_windows(store.name, self.windows, aggregation, emit),
            parents=[parent])
        for spec in specs:
            b._topology.add_store(spec, processors=[node])
        if isinstance(self.windows, SessionWindows):
            ks = W.session_windowed_serde(g.key_serde)
        elif sliding:
            ks = W.time_windowed_serde(g.key_serde, self.windows.time_difference_ms)
        else:
            ks = W.time_windowed_serde(g.key_serde, self.windows.size_ms)
        return WindowedKTable(b, node, ks, out_serde, ops.TableFlags())

    def count(self, *, emit="update", name=None, store_name=None, materialized="rocksdb",
              retention_ms=None) -> "WindowedKTable":
        """Records per key and window (int64). ``emit``: "update" (every update, per batch)
        or "final" (once per window, when it closes)."""
        return self._table("AGGREGATE", "windowed count()", W.COUNT, name, store_name,
                           materialized, emit, retention_ms, _serde_mod.INT64)

    def _builtin(self, agg, what, serde, **kw):
        return self._table("AGGREGATE", f"windowed {what}()", agg, kw.get("name"),
                           kw.get("store_name"), kw.get("materialized", "rocksdb"),
                           kw.get("emit", "update"), kw.get("retention_ms"), serde)

    def sum(self, **kw) -> "WindowedKTable":
        return self._builtin(W.SUM, "sum", _serde_mod.JSON, **kw)

    def min(self, **kw) -> "WindowedKTable":
        return self._builtin(W.MIN, "min", _serde_mod.JSON, **kw)

    def max(self, **kw) -> "WindowedKTable":
        return self._builtin(W.MAX, "max", _serde_mod.JSON, **kw)

    def mean(self, **kw) -> "WindowedKTable":
        return self._builtin(W.MEAN, "mean", _serde_mod.FLOAT64, **kw)

    def reduce(self, reducer, *, emit="update", name=None, store_name=None,
               materialized="rocksdb", retention_ms=None) -> "WindowedKTable":
        """``reducer(aggregate, value) -> aggregate`` per window (sessions merge with it)."""
        vs = self._grouped.value_serde
        if vs is None:
            raise TopologyError("windowed reduce(): the store needs the stream's value serde")
        return self._table("REDUCE", "windowed reduce()", W.reduce(reducer, vs), name,
                           store_name, materialized, emit, retention_ms, vs)

    def aggregate(self, initializer, aggregator, merger=None, *, value_serde=None,
                  emit="update", name=None, store_name=None, materialized="rocksdb",
                  retention_ms=None) -> "WindowedKTable":
        """``aggregator(key, value, aggregate)`` from ``initializer()``; session windows also
        need ``merger(key, agg1, agg2)``. ``value_serde``: the aggregate's (default JSON)."""
        if isinstance(self.windows, SessionWindows) and merger is None:
            raise TopologyError("windowed aggregate() over session windows needs a merger")
        vs = _serde_mod.resolve(value_serde, "windowed aggregate value serde") \
            if value_serde is not None else (self._b.default_value_serde or _serde_mod.JSON)
        agg = W.aggregate(initializer, aggregator, merger, vs)
        return self._table("AGGREGATE", "windowed aggregate()", agg, name, store_name,
                           materialized, emit, retention_ms, vs)


class WindowedKTable(KTable):
    """The result of a windowed aggregation: read it with ``to_stream()``."""

    def _unsupported(self, op):
        raise TopologyError(f"{op}() on a windowed table (node {self._node!r}) is not "
                            f"supported; use to_stream() and stream operators")

    def filter(self, predicate, *, name=None):
        self._unsupported("filter")

    def filter_not(self, predicate, *, name=None):
        self._unsupported("filter_not")

    def map_values(self, fn, *, value_serde=None, name=None):
        self._unsupported("map_values")

    def group_by(self, fn, *, key_serde=None, value_serde=None, name=None):
        self._unsupported("group_by")
