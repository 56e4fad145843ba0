"""Task: one sub-topology on one partition, with its nodes, stores and punctuations.

The TopologyTestDriver and the Kafka runtime both drive tasks; they differ only in the record
collector (where sink output goes) and in how changelogs are written.
"""

from __future__ import annotations

import bisect
import collections
import logging

from cstreams import handlers as _handlers
from cstreams import names as _names
from cstreams import record_errors as _record_errors
from cstreams.errors import CStreamsError, ProcessingError, StoreError, TopologyError
from cstreams.processor import Cancellable, PunctuationType

log = logging.getLogger("cstreams.tasks")


class _Punctuation:
    __slots__ = ("node", "interval", "type", "callback", "next_time", "cancellable")

    def __init__(self, node, interval, ptype, callback, next_time):
        self.node = node
        self.interval = interval
        self.type = ptype
        self.callback = callback
        self.next_time = next_time
        self.cancellable = Cancellable()


class _TaskStores(dict):
    """The task's own stores; a global store (one per instance, kept by the runtime or the
    driver) is found by name too, but is not the task's to flush or close."""

    __slots__ = ("global_stores",)

    def __init__(self, global_stores):
        super().__init__()
        self.global_stores = global_stores or {}

    def __missing__(self, name):
        return self.global_stores[name]


class Task:
    def __init__(self, topology, sub, partition, collector, *, application_id="cstreams",
                 state_dir=None, error_handler=None, wall_clock_ms=0, global_stores=None):
        self.topology = topology
        self.sub = sub
        self.partition = partition
        self.task_id = f"{sub.id}_{partition}"
        self.application_id = application_id
        self.collector = collector
        self.state_dir = state_dir
        self.error_handler = _handlers.resolve(error_handler)
        self.stream_time = -1
        self.wall_clock_ms = wall_clock_ms
        self.commit_requested = False
        self.stores = _TaskStores(global_stores)
        self.metrics = collections.Counter()
        self._punctuations = []
        self._flush_listeners = []
        self._raw = None
        # (decoded keys, consumed key bytes, serde) of the batch in hand, set by its source
        # node: sinks and stores reuse the bytes for keys that pass through unchanged.
        self._key_origin = None
        self._sources_by_name, self.nodes = topology.build_nodes(sub)
        self._source_by_topic = {}
        for src in self._sources_by_name.values():
            for t in src.topics:
                self._source_by_topic[t] = src

    @property
    def directory(self):
        if self.state_dir is None:
            return None
        return _names.inside(self.state_dir, self.application_id, self.task_id,
                             what=f"task {self.task_id}: directory", error=StoreError)

    # --- lifecycle ------------------------------------------------------------------------
    def open_stores(self):
        """Build every store of the sub-topology (the runtime restores them before init)."""
        for name in self.sub.stores:
            spec = self.topology.store_spec(name)
            directory = None
            if self.directory is not None:
                directory = _names.inside(self.directory, name, error=StoreError,
                                          what=f"task {self.task_id}: store {name!r} directory")
            self.stores[name] = spec.build(directory)

    def init(self):
        """Open stores (if not yet) and init every node, processors last to first-seen."""
        if not self.stores and self.sub.stores:
            self.open_stores()
        self._init_nodes()

    def _init_nodes(self):
        for node in self.nodes:
            try:
                node.init(self)
            except Exception as e:
                raise self._lifecycle_error("init", node, e) from e

    def _lifecycle_error(self, what, node, e):
        if isinstance(e, ProcessingError) and e.node is not None:
            return e
        return ProcessingError(
            f"task {self.task_id}: {what}() of {node.kind} {node.name!r} failed: "
            f"{type(e).__name__}: {e}", partition=self.partition, node=node.name)

    def close_processors(self):
        """Close every node; the first error (naming node and task) is returned after all of
        them were closed."""
        first = None
        for node in self.nodes:
            try:
                node.close()
            except Exception as e:  # noqa: BLE001 - every node must get its close
                first = first or self._lifecycle_error("close", node, e)
        return first

    def rewind(self):
        """Exactly-once, the transaction aborted: drop the stores' uncommitted writes, close
        the processors and init new ones, as on a fresh start from the committed state.
        Punctuation schedules and stream time start over with them."""
        for store in self.stores.values():
            store.rewind()
        err = self.close_processors()
        if err is not None:
            log.warning("task %s: closing a processor on rewind failed: %s", self.task_id, err)
        self._punctuations = []
        self._flush_listeners = []
        self.stream_time = -1
        self._sources_by_name, self.nodes = self.topology.build_nodes(self.sub)
        self._source_by_topic = {}
        for src in self._sources_by_name.values():
            for t in src.topics:
                self._source_by_topic[t] = src
        self._init_nodes()

    def close(self):
        """Close processors, flush and close stores. Errors of one do not stop the others."""
        first = self.close_processors()
        for name, store in self.stores.items():
            try:
                store.close()
            except Exception as e:  # noqa: BLE001
                first = first or StoreError(
                    f"task {self.task_id}: closing store {name!r} failed: {e}")
        self.stores.clear()
        if first is not None:
            raise first

    # --- processing -----------------------------------------------------------------------
    def source_for(self, topic):
        src = self._source_by_topic.get(topic)
        if src is None:
            for s in self._sources_by_name.values():
                spec = self.topology.node_spec(s.name)
                if spec.pattern is not None and spec.pattern.fullmatch(topic):
                    self._source_by_topic[topic] = src = s
                    break
        if src is None:
            raise TopologyError(f"task {self.task_id} has no source for topic {topic!r}")
        return src

    def process(self, raw):
        """Run one raw (bytes) batch of one partition of a source topic through the task."""
        src = self.source_for(raw.topic)
        self._raw = raw
        try:
            src.process_raw(raw)
        finally:
            self._raw = None
            self._key_origin = None
        n = len(raw.keys)
        self.metrics["records_in"] += n
        if n:
            ts = max(raw.timestamps)
            if ts > self.stream_time:
                self.stream_time = ts
                self._punctuate(PunctuationType.STREAM_TIME, ts)

    def raw_record(self, offset):
        """The consumed (bytes) record at ``offset`` of the batch in hand, if any."""
        raw = self._raw
        if raw is None or offset < 0:
            return None
        i = bisect.bisect_left(raw.offsets, offset)
        if i < len(raw.offsets) and raw.offsets[i] == offset:
            return raw.record(i)
        return None

    def handle_error(self, error, raw_record, cause=None):
        """Let the error handler decide; raise ``error`` unless it says skip."""
        if raw_record is None:
            raw_record = self.raw_record(getattr(error, "offset", -1))
        if not self.error_handler.handle(error, raw_record, self):
            _record_errors.mark_handled(error)
            if cause is not None:
                raise error from cause
            raise error

    def error_handler_fails(self, error):
        return isinstance(self.error_handler, _handlers.FailHandler)

    # --- punctuation ----------------------------------------------------------------------
    def schedule(self, node, interval_ms, ptype, callback):
        if interval_ms < 1:
            raise CStreamsError(f"punctuation interval must be >= 1 ms, got {interval_ms}")
        if not isinstance(ptype, PunctuationType):
            raise CStreamsError(f"unknown punctuation type {ptype!r}")
        now = self.stream_time if ptype is PunctuationType.STREAM_TIME else self.wall_clock_ms
        first = None if now < 0 else now + interval_ms
        p = _Punctuation(node, interval_ms, ptype, callback, first)
        self._punctuations.append(p)
        return p.cancellable

    def _punctuate(self, ptype, now):
        fired = False
        for p in list(self._punctuations):
            if p.type is not ptype:
                continue
            if p.cancellable.cancelled:
                self._punctuations.remove(p)
                continue
            if p.next_time is None:
                p.next_time = now + p.interval
                continue
            if now >= p.next_time:
                p.node.punctuate(p.callback, now)
                fired = True
                # Skip missed intervals, as Kafka Streams does: one call per advance.
                missed = (now - p.next_time) // p.interval
                p.next_time += (missed + 1) * p.interval
        return fired

    def punctuate_wall_clock(self, now_ms):
        self.wall_clock_ms = now_ms
        return self._punctuate(PunctuationType.WALL_CLOCK_TIME, now_ms)

    # --- commit support -------------------------------------------------------------------
    def on_flush(self, node, callback):
        """Call ``callback(stream_time)`` as a punctuation of ``node`` (what it forwards
        flows downstream) at every commit, before the stores flush: the DSL's table caches
        forward their coalesced updates there, as Kafka Streams' record caches do."""
        self._flush_listeners.append((node, callback))

    def flush_caches(self):
        for node, callback in self._flush_listeners:
            node.punctuate(callback, self.stream_time)

    def flush_stores(self):
        """Commit step 1: every store writes its dirty keys and sends changelog records."""
        self.flush_caches()
        n = 0
        for store in self.stores.values():
            n += store.flush()
        return n

    def __repr__(self):
        return f"<Task {self.task_id}>"
