"""Topology: sources, processors, sinks and stores; validation; sub-topologies; describe()."""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence, Union

from cstreams import names as _names
from cstreams import serde as _serde_mod
from cstreams._impl import dispatch as _dispatch
from cstreams.errors import TopologyError
from cstreams.processor import BatchProcessor, Processor
from cstreams.stores import StoreSpec


@dataclass
class _SourceSpec:
    name: str
    topics: list
    pattern: Optional[re.Pattern]
    key_serde: object
    value_serde: object
    kind: str = "source"
    parents: list = field(default_factory=list)
    stores: list = field(default_factory=list)
    internal: bool = False


@dataclass
class _ProcessorSpec:
    name: str
    factory: Callable
    parents: list
    stores: list
    kind: str = "processor"


@dataclass
class _SinkSpec:
    name: str
    topic: str
    parents: list
    key_serde: object
    value_serde: object
    partitioner: Optional[Callable]
    kind: str = "sink"
    stores: list = field(default_factory=list)
    internal: bool = False


@dataclass
class SubTopology:
    """A connected part of the topology (through edges or shared stores); one task per
    partition of its source topics."""

    id: int
    nodes: list
    sources: list
    topics: list
    patterns: list
    stores: list

    def matches(self, topic):
        return topic in self.topics or any(p.fullmatch(topic) for p in self.patterns)


class Topology:
    """A graph of source, processor and sink nodes plus state stores."""

    def __init__(self):
        self._nodes = {}
        self._stores = {}
        self._global_stores = {}     # store name -> (store spec, topic)
        self._validated = None

    # --- building -------------------------------------------------------------------------
    def _check_new_name(self, name, what):
        _names.check(name, f"{what} name", TopologyError)
        if name in self._nodes:
            raise TopologyError(
                f"duplicate node name {name!r}: a {self._nodes[name].kind} of that name exists"
            )
        self._validated = None

    @staticmethod
    def _parents(name, parents):
        if isinstance(parents, str):
            parents = [parents]
        parents = list(parents or [])
        if not parents:
            raise TopologyError(f"node {name!r} needs at least one parent")
        if len(set(parents)) != len(parents):
            raise TopologyError(f"node {name!r} lists a parent twice: {parents}")
        return parents

    def add_source(self, name: str, topics: Union[str, Sequence[str], None] = None, *,
                   pattern: Union[str, re.Pattern, None] = None, key_serde=None,
                   value_serde=None, internal: bool = False) -> "Topology":
        """A source reading ``topics`` (a name or list) or every topic matching ``pattern``.
        ``internal``: topics the application owns (repartition topics), named here without
        the ``<application_id>-`` prefix that ``for_application`` adds."""
        self._check_new_name(name, "source")
        if isinstance(topics, str):
            topics = [topics]
        topics = list(topics or [])
        if bool(topics) == (pattern is not None):
            raise TopologyError(f"source {name!r} needs either topics or a pattern, not both")
        if isinstance(pattern, str):
            pattern = re.compile(pattern)
        for t in topics:
            _names.check(t, f"source {name!r}: topic", TopologyError)
            for other in self._nodes.values():
                if other.kind == "source" and t in other.topics:
                    raise TopologyError(
                        f"topic {t!r} is read by source {other.name!r} already; a topic can "
                        f"feed only one source (source {name!r})"
                    )
        self._nodes[name] = _SourceSpec(
            name, topics, pattern,
            _serde_mod.resolve(key_serde, f"source {name!r} key serde"),
            _serde_mod.resolve(value_serde, f"source {name!r} value serde"),
            internal=bool(internal),
        )
        return self

    def add_processor(self, name: str, processor, parents: Union[str, Iterable[str]],
                      stores: Iterable[str] = ()) -> "Topology":
        """``processor`` is a Processor/BatchProcessor class or a factory returning a new
        instance per task (never a shared instance)."""
        self._check_new_name(name, "processor")
        if isinstance(processor, (Processor, BatchProcessor)):
            raise TopologyError(
                f"processor {name!r}: pass a class or a factory that returns a new instance per "
                f"task, not an instance (tasks must not share processor state)"
            )
        if not callable(processor):
            raise TopologyError(f"processor {name!r}: {processor!r} is not a class or factory")
        if inspect.isclass(processor) and not issubclass(processor, (Processor, BatchProcessor)):
            raise TopologyError(
                f"processor {name!r}: class {processor.__name__} is neither a cstreams.Processor "
                f"nor a cstreams.BatchProcessor"
            )
        self._nodes[name] = _ProcessorSpec(
            name, processor, self._parents(name, parents), list(stores or [])
        )
        return self

    def add_sink(self, name: str, topic: str, parents: Union[str, Iterable[str]], *,
                 key_serde=None, value_serde=None,
                 partitioner: Optional[Callable] = None, internal: bool = False) -> "Topology":
        """A sink writing to ``topic``. ``partitioner(key, value, num_partitions) -> int``
        replaces the default (murmur2 of the serialized key, as Kafka's). ``internal``: as
        for add_source."""
        self._check_new_name(name, "sink")
        _names.check(topic, f"sink {name!r}: topic", TopologyError)
        if partitioner is not None and not callable(partitioner):
            raise TopologyError(f"sink {name!r}: partitioner must be callable")
        self._nodes[name] = _SinkSpec(
            name, topic, self._parents(name, parents),
            _serde_mod.resolve(key_serde, f"sink {name!r} key serde"),
            _serde_mod.resolve(value_serde, f"sink {name!r} value serde"),
            partitioner, internal=bool(internal),
        )
        return self

    def add_store(self, store: StoreSpec, processors: Iterable[str] = ()) -> "Topology":
        """Add a store; optionally connect it to processors (also possible via
        add_processor(stores=[...]) or connect_store)."""
        if not isinstance(store, StoreSpec):
            raise TopologyError(
                f"add_store expects a store from cstreams.stores (in_memory, rocksdb), "
                f"got {store!r}"
            )
        if store.name in self._stores:
            raise TopologyError(f"duplicate store name {store.name!r}")
        self._stores[store.name] = store
        self._validated = None
        self.connect_store(store.name, processors)
        return self

    def add_global_store(self, store: StoreSpec, topic: str) -> "Topology":
        """A global store: every partition of ``topic`` (its latest value per key, a null
        value deleting), held in full by every instance, restored completely at start and
        kept current by the runtime; processors of any sub-topology may read it (connect it
        as usual) without co-partitioning. The store's serdes are the topic's."""
        if not isinstance(store, StoreSpec):
            raise TopologyError(f"add_global_store expects a store from cstreams.stores, got "
                                f"{store!r}")
        if store.name in self._stores or store.name in self._global_stores:
            raise TopologyError(f"duplicate store name {store.name!r}")
        if not isinstance(topic, str) or not topic:
            raise TopologyError(f"global store {store.name!r} needs a topic name")
        for other in self._nodes.values():
            if other.kind == "source" and topic in other.topics:
                raise TopologyError(f"topic {topic!r} of global store {store.name!r} is read "
                                    f"by source {other.name!r} already")
        for other, t in self._global_stores.values():
            if t == topic:
                raise TopologyError(f"topic {topic!r} feeds global store {other.name!r} "
                                    f"already")
        store.source_changelog = topic
        self._global_stores[store.name] = (store, topic)
        self._validated = None
        return self

    @property
    def global_stores(self) -> dict:
        """{store name: (store spec, topic)} of the global stores."""
        return dict(self._global_stores)

    def connect_store(self, store_name: str, processors: Iterable[str]) -> "Topology":
        if isinstance(processors, str):
            processors = [processors]
        for p in processors:
            spec = self._nodes.get(p)
            if spec is None or spec.kind != "processor":
                raise TopologyError(
                    f"cannot connect store {store_name!r} to {p!r}: no processor of that name"
                )
            if store_name not in spec.stores:
                spec.stores.append(store_name)
        self._validated = None
        return self

    # --- validation -----------------------------------------------------------------------
    def validate(self) -> list:
        """Check the whole graph; return its sub-topologies. Raises TopologyError."""
        if self._validated is not None:
            return self._validated
        nodes = self._nodes
        if not any(n.kind == "source" for n in nodes.values()):
            raise TopologyError("the topology has no source")
        children: dict[str, list[str]] = {name: [] for name in nodes}
        for n in nodes.values():
            for p in getattr(n, "parents", []):
                if p not in nodes:
                    raise TopologyError(f"node {n.name!r} has an unknown parent {p!r}")
                if nodes[p].kind == "sink":
                    raise TopologyError(
                        f"sink {p!r} cannot have children, but {n.name!r} names it as a parent"
                    )
                children[p].append(n.name)
        used = set()
        for n in nodes.values():
            for s in n.stores:
                if s in self._global_stores:
                    continue
                if s not in self._stores:
                    raise TopologyError(
                        f"processor {n.name!r} uses store {s!r}, which was not added "
                        f"(topology.add_store)"
                    )
                used.add(s)
        for s in self._stores:
            if s not in used:
                raise TopologyError(f"store {s!r} is not connected to any processor")
        self._check_cycles(children)
        for n in nodes.values():
            if n.kind == "processor" and not self._reaches_source(n.name):
                raise TopologyError(f"processor {n.name!r} is not fed by any source")
        self._children = children
        self._validated = self._subtopologies(children)
        return self._validated

    def _check_cycles(self, children):
        state = {}

        def visit(name, path):
            st = state.get(name)
            if st == 1:
                cycle = path[path.index(name):] + [name]
                raise TopologyError(f"the topology has a cycle: {' -> '.join(cycle)}")
            if st == 2:
                return
            state[name] = 1
            for c in children[name]:
                visit(c, path + [name])
            state[name] = 2

        for name in self._nodes:
            visit(name, [])

    def _reaches_source(self, name, seen=None):
        seen = set() if seen is None else seen
        if name in seen:
            return False
        seen.add(name)
        n = self._nodes[name]
        if n.kind == "source":
            return True
        return any(self._reaches_source(p, seen) for p in n.parents)

    def _subtopologies(self, children):
        parent = {name: name for name in self._nodes}

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        def union(a, b):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[rb] = ra

        for name, kids in children.items():
            for c in kids:
                union(name, c)
        store_users = {}
        for n in self._nodes.values():
            for s in n.stores:
                if s in self._global_stores:
                    continue     # every task reads its own instance's copy
                if s in store_users:
                    union(store_users[s], n.name)
                else:
                    store_users[s] = n.name
        groups = {}
        for name in self._nodes:
            groups.setdefault(find(name), []).append(name)
        # Sub-topologies are numbered in the order their first source was added (every group
        # has a source: validate() checked that each node is fed by one).
        order = list(dict.fromkeys(find(nm) for nm, n in self._nodes.items()
                                   if n.kind == "source"))
        subs = []
        for r in order:
            names = groups[r]
            sources = [nm for nm in names if self._nodes[nm].kind == "source"]
            topics = [t for nm in sources for t in self._nodes[nm].topics]
            patterns = [self._nodes[nm].pattern for nm in sources if self._nodes[nm].pattern]
            stores = []
            for nm in names:
                for s in self._nodes[nm].stores:
                    if s not in stores and s not in self._global_stores:
                        stores.append(s)
            subs.append(SubTopology(len(subs), names, sources, topics, patterns, stores))
        return subs

    # --- queries used by the runtime and the driver ---------------------------------------
    @property
    def subtopologies(self) -> list:
        return self.validate()

    def store_spec(self, name) -> StoreSpec:
        if name in self._global_stores:
            return self._global_stores[name][0]
        return self._stores[name]

    @property
    def stores(self) -> dict:
        return dict(self._stores)

    def node_spec(self, name):
        return self._nodes[name]

    def source_topics(self) -> list:
        return [t for sub in self.validate() for t in sub.topics]

    def sink_topics(self) -> list:
        return sorted({n.topic for n in self._nodes.values() if n.kind == "sink"})

    def subtopology_for_topic(self, topic) -> Optional[SubTopology]:
        for sub in self.validate():
            if sub.matches(topic):
                return sub
        return None

    def build_nodes(self, sub: SubTopology):
        """Fresh node objects for one task of ``sub``: (source node per name, all nodes)."""
        self.validate()
        built = {}
        for name in sub.nodes:
            spec = self._nodes[name]
            if spec.kind == "source":
                built[name] = _dispatch.SourceNode(name, spec.topics, spec.key_serde,
                                                   spec.value_serde)
            elif spec.kind == "sink":
                built[name] = _dispatch.SinkNode(name, spec.topic, spec.key_serde,
                                                 spec.value_serde, spec.partitioner)
            else:
                proc = spec.factory()
                if not isinstance(proc, (Processor, BatchProcessor)):
                    raise TopologyError(
                        f"the factory of processor {name!r} returned {type(proc).__name__}, "
                        f"not a cstreams.Processor or BatchProcessor"
                    )
                built[name] = _dispatch.ProcessorNode(name, proc, spec.stores)
        for name in sub.nodes:
            for c in self._children[name]:
                built[name].add_child(built[c])
        return {nm: built[nm] for nm in sub.sources}, [built[nm] for nm in sub.nodes]

    # --- internal topics ------------------------------------------------------------------
    def internal_topics(self) -> list:
        """The internal topics (repartition topics) the sources and sinks name, sorted."""
        out: set = set()
        for n in self._nodes.values():
            if getattr(n, "internal", False):
                out.update(n.topics if n.kind == "source" else [n.topic])
        return sorted(out)

    def for_application(self, application_id: str) -> "Topology":
        """This topology with every internal topic ``t`` renamed ``<application_id>-t``, as
        the App and the TopologyTestDriver run it (self when it has no internal topic)."""
        if not any(getattr(n, "internal", False) for n in self._nodes.values()):
            return self
        out = Topology()
        out._stores = dict(self._stores)
        out._global_stores = dict(self._global_stores)
        for name, spec in self._nodes.items():
            changes: dict = {"stores": list(spec.stores)}
            if spec.kind != "source":
                changes["parents"] = list(spec.parents)
            if getattr(spec, "internal", False):
                if spec.kind == "source":
                    changes["topics"] = [f"{application_id}-{t}" for t in spec.topics]
                else:
                    changes["topic"] = f"{application_id}-{spec.topic}"
            out._nodes[name] = dataclasses.replace(spec, **changes)
        return out

    def internal_topic_partitions(self, external_partitions: Callable) -> dict:
        """{internal topic: partition count}, as Kafka Streams sizes repartition topics: the
        count of the external topics read beside it (a join's other side), else the
        largest count among the sub-topologies that write to it. ``external_partitions(sub)``
        gives a sub-topology's count from its non-internal source topics (None if unknown)."""
        subs = self.validate()
        internal = set(self.internal_topics())
        writers: dict = {t: [] for t in internal}
        for sub in subs:
            for nm in sub.nodes:
                spec = self._nodes[nm]
                if spec.kind == "sink" and spec.internal:
                    writers[spec.topic].append(sub)
        counts: dict = {}

        def sub_count(sub, seen):
            if sub.id in counts:
                return counts[sub.id]
            if sub.id in seen:
                return None
            seen = seen | {sub.id}
            found = [external_partitions(sub)]
            found += [topic_count(t, seen) for t in sub.topics if t in internal]
            found = [n for n in found if n]
            counts[sub.id] = max(found) if found else None
            return counts[sub.id]

        def topic_count(t, seen):
            # A topic read beside external topics (a join's repartitioned side) must be
            # co-partitioned with them: their count wins, as Kafka Streams' co-partitioning
            # enforcer sizes it.
            readers = [external_partitions(r) for r in subs if t in r.topics]
            readers = [n for n in readers if n]
            if readers:
                return max(readers)
            found = [sub_count(w, seen) for w in writers[t]]
            found = [n for n in found if n]
            return max(found) if found else None

        return {t: topic_count(t, frozenset()) for t in sorted(internal)}

    # --- describe -------------------------------------------------------------------------
    def describe(self) -> "TopologyDescription":
        return TopologyDescription(self)


class TopologyDescription:
    def __init__(self, topology: Topology):
        self._lines = ["Topologies:"]
        subs = topology.validate()
        children = topology._children
        for sub in subs:
            self._lines.append(f"   Sub-topology: {sub.id}")
            for name in sub.nodes:
                spec = topology._nodes[name]
                if spec.kind == "source":
                    what = (f"topics: [{', '.join(spec.topics)}]" if spec.topics
                            else f"pattern: {spec.pattern.pattern}")
                    self._lines.append(f"    Source: {name} ({what})")
                elif spec.kind == "processor":
                    self._lines.append(
                        f"    Processor: {name} (stores: [{', '.join(spec.stores)}])")
                else:
                    self._lines.append(f"    Sink: {name} (topic: {spec.topic})")
                if spec.kind != "sink":
                    self._lines.append(f"      --> {', '.join(children[name]) or 'none'}")
                if spec.kind != "source":
                    self._lines.append(f"      <-- {', '.join(spec.parents)}")
        for name, (_spec, topic) in topology._global_stores.items():
            self._lines.append(f"   Global store: {name} (topic: {topic})")
        self.subtopologies = subs

    def __str__(self):
        return "\n".join(self._lines) + "\n"

    __repr__ = __str__
