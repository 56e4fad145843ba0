"""TopologyTestDriver: run a topology with no broker.

Records piped in are serialized with the source's serdes and travel the same path as consumed
records: source deserialization, processors, stores, sink serialization. Output is read per
sink topic, deserialized with the serdes of the sink that wrote it (or ones you pass).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Optional

from cstreams._impl import record as _record
from cstreams.errors import CStreamsError
from cstreams.task import Task
from cstreams.topology import Topology


@dataclass
class OutputRecord:
    key: Any
    value: Any
    timestamp: int
    headers: Optional[list]
    partition: int
    topic: str


class _Collector:
    def __init__(self, driver):
        self._driver = driver

    def partitions_for(self, topic):
        return self._driver._partitions.get(topic, self._driver.default_partitions)

    def send_batch(self, topic, keys, values, timestamps, headers, partitions):
        out = self._driver._raw_output.setdefault(topic, [])
        for i in range(len(keys)):
            p = partitions[i] if partitions is not None else -1
            if p is None or p < 0:
                p = 0
            out.append((keys[i], values[i], timestamps[i],
                        None if headers is None else headers[i], p))
        if topic in self._driver._source_topics:
            self._driver._feedback.append((topic, keys, values, timestamps, headers, partitions))


class TopologyTestDriver:
    """Pipe records into source topics and partitions, read sink output, inspect stores.

    ``partitions`` maps a topic to its partition count (default ``default_partitions``); it
    decides where the sink's partitioner sends records. Stream time follows record
    timestamps; wall-clock time starts at ``wall_clock_ms`` and moves only with
    ``advance_wall_clock``. Persistent stores live in a temporary state directory removed on
    close unless ``state_dir`` is given.
    """

    def __init__(self, topology: Topology, *, partitions: Optional[dict] = None,
                 default_partitions: int = 1, wall_clock_ms: int = 0,
                 application_id: str = "test-driver", state_dir: Optional[str] = None,
                 error_handler=None):
        # Internal (repartition) topics are named as the App names them.
        topology = topology.for_application(application_id)
        self.topology = topology
        topology.validate()
        self.default_partitions = default_partitions
        self._partitions = dict(partitions or {})
        self._wall = wall_clock_ms
        self._app_id = application_id
        self._own_state_dir = state_dir is None
        self._state_dir = state_dir or tempfile.mkdtemp(prefix="cstreams-driver-")
        self._error_handler = error_handler
        self._tasks: dict[tuple[int, int], Task] = {}
        self._offsets: dict[tuple[str, int], int] = {}
        self._raw_output: dict[str, list[tuple]] = {}
        self._read_pos: dict[str, int] = {}
        self._feedback: list[tuple] = []
        self._source_topics = set(topology.source_topics())
        self._collector = _Collector(self)
        self._closed = False
        self._size_internal_topics()
        # Global stores: one copy for all tasks, as one instance of the App holds.
        self._global_stores = {}
        self._global_topics = {}
        for name, (spec, topic) in topology.global_stores.items():
            self._global_stores[name] = spec.build(os.path.join(self._state_dir, "global",
                                                                name))
            self._global_topics[topic] = self._global_stores[name]

    def _size_internal_topics(self):
        internal = set(self.topology.internal_topics())

        def external(sub):
            found = [self._collector.partitions_for(t) for t in sub.topics if t not in internal]
            return max(found) if found else None

        prefix = f"{self._app_id}-"
        for t, n in self.topology.internal_topic_partitions(external).items():
            # A count given for the topic's name without the prefix counts too.
            n = self._partitions.get(t[len(prefix):], n)
            self._partitions.setdefault(t, n or self.default_partitions)

    # --- input ----------------------------------------------------------------------------
    def _task(self, topic, partition):
        sub = self.topology.subtopology_for_topic(topic)
        if sub is None:
            raise CStreamsError(f"topic {topic!r} is not read by any source of the topology")
        key = (sub.id, partition)
        task = self._tasks.get(key)
        if task is None:
            task = Task(self.topology, sub, partition, self._collector,
                        application_id=self._app_id, state_dir=self._state_dir,
                        error_handler=self._error_handler, wall_clock_ms=self._wall,
                        global_stores=self._global_stores)
            task.init()
            self._tasks[key] = task
        return task

    def _source_serdes(self, topic, partition):
        task = self._task(topic, partition)
        src = task.source_for(topic)
        return task, src.key_serde, src.value_serde

    def pipe(self, topic, key, value, timestamp=None, headers=None, partition=0):
        """Send one record to ``topic``/``partition``."""
        self.pipe_batch(topic, [key], [value],
                        None if timestamp is None else [timestamp],
                        None if headers is None else [headers], partition)

    def pipe_batch(self, topic, keys, values, timestamps=None, headers=None, partition=0):
        """Send records to one partition as one batch: the topology sees one batch."""
        if self._closed:
            raise CStreamsError("the driver is closed")
        keys, values = list(keys), list(values)
        if len(keys) != len(values):
            raise ValueError(f"pipe_batch got {len(keys)} keys and {len(values)} values")
        if topic in self._global_topics:
            self._pipe_global(self._global_topics[topic], keys, values)
            return
        task, kser, vser = self._source_serdes(topic, partition)
        n = len(keys)
        if timestamps is None:
            timestamps = [self._wall] * n
        start = self._offsets.get((topic, partition), 0)
        self._offsets[(topic, partition)] = start + n
        raw = _record.RecordBatch(
            topic, partition, kser.serialize_batch(keys), vser.serialize_batch(values),
            list(timestamps), list(range(start, start + n)),
            None if headers is None else list(headers),
        )
        self._run(task, raw)

    def _pipe_global(self, store, keys, values):
        """A global store's topic: the store takes the records (null values delete) through
        its serdes, as the runtime's global consumer applies them."""
        kser, vser = store.key_serde, store.value_serde
        kbs = kser.serialize_batch(keys)
        vbs = vser.serialize_batch(values)
        keep = [i for i, kb in enumerate(kbs) if kb is not None]
        store.put_batch([kser.deserialize(kbs[i]) for i in keep],
                        [None if vbs[i] is None else vser.deserialize(vbs[i]) for i in keep])

    def pipe_raw(self, topic, keys, values, timestamps=None, headers=None, partition=0):
        """Send already-serialized bytes (to test bad input)."""
        task = self._task(topic, partition)
        n = len(keys)
        start = self._offsets.get((topic, partition), 0)
        self._offsets[(topic, partition)] = start + n
        raw = _record.RecordBatch(topic, partition, list(keys), list(values),
                                  list(timestamps or [self._wall] * n),
                                  list(range(start, start + n)),
                                  None if headers is None else list(headers))
        self._run(task, raw)

    def _run(self, task, raw):
        task.process(raw)
        # A piped batch is a commit, as in Kafka Streams' driver: table caches forward.
        task.flush_caches()
        while self._feedback:
            topic, keys, values, ts, headers, parts = self._feedback.pop(0)
            by_partition = {}
            for i in range(len(keys)):
                p = parts[i] if parts is not None and parts[i] is not None and parts[i] >= 0 else 0
                by_partition.setdefault(p, []).append(i)
            for p, idx in by_partition.items():
                self.pipe_raw(topic, [keys[i] for i in idx], [values[i] for i in idx],
                              [ts[i] for i in idx],
                              None if headers is None else [headers[i] for i in idx], p)

    # --- time -----------------------------------------------------------------------------
    def advance_wall_clock(self, ms):
        self._wall += ms
        for task in list(self._tasks.values()):
            task.punctuate_wall_clock(self._wall)

    @property
    def wall_clock_ms(self):
        return self._wall

    # --- output ---------------------------------------------------------------------------
    def _sink_serdes(self, topic):
        for sub in self.topology.subtopologies:
            for name in sub.nodes:
                spec = self.topology.node_spec(name)
                if spec.kind == "sink" and spec.topic == topic:
                    return spec.key_serde, spec.value_serde
        return None, None

    def output(self, topic, key_serde=None, value_serde=None):
        """Every record written to ``topic`` so far, deserialized, in write order."""
        kd, vd = self._sink_serdes(topic)
        kd = key_serde or kd
        vd = value_serde or vd
        out = []
        for k, v, ts, h, p in self._raw_output.get(topic, []):
            out.append(OutputRecord(
                k if kd is None else kd.deserialize(k),
                v if vd is None else vd.deserialize(v), ts, h, p, topic))
        return out

    def read_output(self, topic, key_serde=None, value_serde=None):
        """Records written to ``topic`` since the last read_output of it."""
        allrecs = self.output(topic, key_serde, value_serde)
        start = self._read_pos.get(topic, 0)
        self._read_pos[topic] = len(allrecs)
        return allrecs[start:]

    def output_raw(self, topic):
        """(key bytes, value bytes, timestamp, headers, partition) tuples written to topic."""
        return list(self._raw_output.get(topic, []))

    def output_as_dict(self, topic):
        """Latest value per key written to ``topic``."""
        return {r.key: r.value for r in self.output(topic)}

    # --- stores ---------------------------------------------------------------------------
    def get_store(self, name, partition=0):
        if name in self._global_stores:
            return self._global_stores[name]
        for (_sub_id, p), task in self._tasks.items():
            if p == partition and name in task.stores:
                return task.stores[name]
        for sub in self.topology.subtopologies:
            if name in sub.stores:
                if sub.topics:
                    return self._task(sub.topics[0], partition).stores[name]
        raise CStreamsError(f"no store {name!r} in the topology")

    def tasks(self):
        return dict(self._tasks)

    def flush(self):
        for task in self._tasks.values():
            task.flush_stores()

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            for task in self._tasks.values():
                task.flush_stores()
                task.close()
            for store in self._global_stores.values():
                store.flush()
                store.close()
        finally:
            if self._own_state_dir:
                shutil.rmtree(self._state_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
