"""Batch dispatch through a task's node graph: source, processor and sink nodes and the
processor context with its per-child output buffers.

One source for both builds: run as is on the pure-Python path, compiled by Cython (pure-Python
mode, declarations in cstreams/_core/dispatch.pxd) into cstreams._core.dispatch.
"""

from __future__ import annotations

from cstreams import record_errors as _record_errors
from cstreams.errors import (
    CStreamsError,
    DeserializationError,
    ForwardError,
    ProcessingError,
    SerdeError,
)

from .partitioner import murmur2, murmur2_partitions
from .processor import BatchProcessor
from .record import Record, RecordBatch
from .serde import BYTES, INT32, INT64, STRING

# Serdes whose serialize(deserialize(b)) == b for every b they accept: for keys that still are
# the very objects these decoded, the consumed bytes are their serialization.
_ROUND_TRIP = (BYTES, STRING, INT32, INT64)


class TaskContext:
    """What a node and its processor context may ask of the task that runs them, and nothing
    else: the declared internal interface of the dispatch layer (as Kafka Streams'
    InternalProcessorContext). ``cstreams.internals.task.Task`` implements it; every node
    gets its task in its constructor.

    ``application_id``, ``task_id``, ``partition``; ``stream_time`` (-1 before the first
    record); ``stores`` (name -> store); ``commit_requested`` (set when a processor asks for a
    commit); ``_key_origin`` (set by the source of the batch in hand, see ``key_origin()``).
    """

    def __init__(self, application_id, task_id, partition, collector):
        self.application_id = application_id
        self.task_id = task_id
        self.partition = partition
        self.collector = collector
        self.stream_time = -1
        self.stores = {}
        self.commit_requested = False
        # (decoded keys, consumed key bytes, serde) of the batch in hand, set by its source
        # node (key_origin()): sinks and stores reuse the bytes of keys passed on unchanged.
        self._key_origin = None

    def partitions_for(self, topic):
        """The partition count of the sink topic ``topic``."""
        return self.collector.partitions_for(topic)

    def send(self, topic, keys, values, timestamps, headers, partitions):
        """Hand one sink batch of serialized records to the task's record collector."""
        self.collector.send_batch(topic, keys, values, timestamps, headers, partitions)

    def schedule(self, node, interval_ms, punctuation_type, callback):
        """Schedule ``callback`` as a punctuation of ``node``; returns a Cancellable."""
        raise NotImplementedError

    def on_flush(self, node, callback):
        """Call ``callback(stream_time)`` as a punctuation of ``node`` at every commit."""
        raise NotImplementedError

    def handle_error(self, error, raw_record, cause=None):
        """Let the error handler decide; raise ``error`` unless it says skip."""
        raise NotImplementedError

    def error_handler_fails(self, error):
        """Whether the error handler fails on ``error`` (no per-record retry is worth it)."""
        raise NotImplementedError


def key_origin(keys, raw_keys, serde):
    """What a source records on its task after decoding ``raw_keys`` into ``keys``: None
    unless ``serde`` round-trips exactly."""
    for s in _ROUND_TRIP:
        if serde is s:
            return (tuple(keys), raw_keys, serde)
    return None


def reused_key_bytes(task, keys, serde):
    """The consumed key bytes when ``keys`` are, element by element, the very objects the
    source of the batch in hand decoded with ``serde`` (the same exact round-trip serde);
    else None. Identity per element, so a list changed in place is not mistaken for them."""
    return _reused_key_bytes(task._key_origin, keys, serde)


def _reused_key_bytes(origin, keys, serde):
    if origin is None or type(keys) is not list:
        return None
    snapshot = origin[0]
    if serde is not origin[2]:
        return None
    lkeys = keys
    n = len(lkeys)
    if n != len(snapshot):
        return None
    for i in range(n):
        if lkeys[i] is not snapshot[i]:
            return None
    return origin[1]


class _Output:
    """Records forwarded to one child while the parent handles one input batch.

    forward_batch() of a whole batch into an empty buffer keeps the caller's lists as they are
    (no copy); anything else appends to lists the buffer owns.
    """

    def __init__(self):
        self.clear()

    def clear(self):
        self.keys = None
        self.values = None
        self.timestamps = None
        self.offsets = None
        self.headers = None
        self.owned = False
        self.has_headers = False

    def _own(self):
        if self.keys is None:
            self.keys, self.values, self.timestamps, self.offsets, self.headers = [], [], [], [], []
        else:
            self.keys = list(self.keys)
            self.values = list(self.values)
            self.timestamps = list(self.timestamps)
            self.offsets = list(self.offsets)
            self.headers = (
                list(self.headers) if self.headers is not None else [None] * len(self.keys)
            )
        self.owned = True

    def append(self, key, value, timestamp, offset, headers):
        if not self.owned:
            self._own()
        self.keys.append(key)
        self.values.append(value)
        self.timestamps.append(timestamp)
        self.offsets.append(offset)
        self.headers.append(headers)
        if headers is not None:
            self.has_headers = True

    def extend(self, keys, values, timestamps, offsets, headers):
        if self.keys is None:
            self.keys, self.values = keys, values
            self.timestamps, self.offsets = timestamps, offsets
            self.headers = headers
            self.has_headers = headers is not None
            return
        if not self.owned:
            self._own()
        self.keys.extend(keys)
        self.values.extend(values)
        self.timestamps.extend(timestamps)
        self.offsets.extend(offsets)
        if headers is None:
            self.headers.extend([None] * len(keys))
        else:
            self.headers.extend(headers)
            self.has_headers = True

    def take(self, topic, partition):
        if self.keys is None or not self.keys:
            self.clear()
            return None
        batch = RecordBatch(
            topic,
            partition,
            self.keys,
            self.values,
            self.timestamps,
            self.offsets,
            self.headers if self.has_headers else None,
        )
        self.clear()
        return batch


class ProcessorContext:
    """What a processor sees of its task: forwarding, stores, punctuation, record metadata."""

    def __init__(self, node, task):
        self._node = node
        self._task = task
        self._batch = None
        self._index = -1
        self._punctuation_ts = -1
        self._max_ts = -1
        self._max_ts_of = None
        self._outputs = [(child, _Output()) for child in node.children]
        self._outs = [out for _, out in self._outputs]
        self._by_name = {child.name: i for i, child in enumerate(node.children)}

    # --- identity -------------------------------------------------------------------------
    @property
    def application_id(self):
        return self._task.application_id

    @property
    def task_id(self):
        return self._task.task_id

    @property
    def node_name(self):
        return self._node.name

    @property
    def stream_time(self):
        return self._task.stream_time

    # --- metadata of the record in hand ---------------------------------------------------
    @property
    def topic(self):
        b = self._batch
        return None if b is None else b.topic

    @property
    def partition(self):
        b = self._batch
        return self._task.partition if b is None else b.partition

    @property
    def offset(self):
        return self._offset()

    def _offset(self):
        b = self._batch
        if b is None:
            return -1
        if self._index >= 0:
            return b.offsets[self._index]
        return b.offsets[-1] if b.offsets else -1

    @property
    def timestamp(self):
        return self._timestamp()

    def _timestamp(self):
        b = self._batch
        if b is None:
            return self._punctuation_ts
        if self._index >= 0:
            return b.timestamps[self._index]
        if self._max_ts_of is not b:
            self._max_ts = max(b.timestamps) if b.timestamps else -1
            self._max_ts_of = b
        return self._max_ts

    @property
    def headers(self):
        return self._headers()

    def _headers(self):
        b = self._batch
        if b is None or b.headers is None:
            return None
        if self._index >= 0:
            return b.headers[self._index]
        return None

    @property
    def batch(self):
        """The input batch being processed (None inside a punctuation)."""
        return self._batch

    # --- forwarding -----------------------------------------------------------------------
    def _target(self, to):
        i = self._by_name.get(to)
        if i is None:
            raise ForwardError(
                f"node {self._node.name!r} forwards to {to!r}, which is not one of its children "
                f"{[c.name for c, _ in self._outputs]}",
                node=self._node.name,
            )
        return self._outs[i]

    def forward(self, key, value, timestamp=None, headers=None, to=None):
        """Send one record to the children (or the child named ``to``). Timestamp and
        headers default to the input record's."""
        if timestamp is None:
            timestamp = self._timestamp()
        if headers is None:
            headers = self._headers()
        offset = self._offset()
        if to is None:
            for out in self._outs:
                out.append(key, value, timestamp, offset, headers)
        else:
            self._target(to).append(key, value, timestamp, offset, headers)

    def forward_batch(self, keys, values, timestamps=None, headers=None, to=None, like=None):
        """Send a batch of records (parallel lists) to the children (or the child named ``to``).

        ``like``: a batch the outputs line up with, position by position: the input batch, or
        one derived from it (``batch.select(...)``, ``batch.with_columns(...)``). Output ``i``
        then carries the offset of ``like``'s record ``i`` and, unless ``timestamps`` (or
        ``headers``) is given, its timestamp (and headers).

        Without ``like`` nothing is taken by position, whatever the lengths: every output
        carries the offset of the input batch's last record; its timestamp is
        ``timestamps[i]``, else the input batch's latest timestamp (in a punctuation: the
        punctuation's time, which for a stream-time punctuation is stream time); headers are
        ``headers[i]``, else none.
        """
        n = len(keys)
        if len(values) != n:
            raise ForwardError(
                f"node {self._node.name!r}: forward_batch got {n} keys and {len(values)} values",
                node=self._node.name,
            )
        if like is not None:
            lb = like
            if len(lb.keys) != n:
                raise ForwardError(
                    f"node {self._node.name!r}: forward_batch got {n} records like a batch of "
                    f"{len(lb.keys)}; ``like`` must line up with the outputs",
                    node=self._node.name,
                )
            offsets = lb.offsets
            if timestamps is None:
                timestamps = lb.timestamps
            if headers is None:
                headers = lb.headers
        else:
            offsets = [self._offset()] * n
            if timestamps is None:
                timestamps = [self._timestamp()] * n
        if len(timestamps) != n:
            raise ForwardError(
                f"node {self._node.name!r}: forward_batch got {len(timestamps)} timestamps "
                f"for {n} records",
                node=self._node.name,
            )
        if headers is not None and len(headers) != n:
            raise ForwardError(
                f"node {self._node.name!r}: forward_batch got {len(headers)} headers for {n} "
                f"records",
                node=self._node.name,
            )
        if to is None:
            for out in self._outs:
                out.extend(keys, values, timestamps, offsets, headers)
        else:
            self._target(to).extend(keys, values, timestamps, offsets, headers)

    def _flush_outputs(self, topic, partition):
        for child, out in self._outputs:
            batch = out.take(topic, partition)
            if batch is not None:
                child.process_batch(batch)

    def _discard_outputs(self):
        for out in self._outs:
            out.clear()

    # --- stores and punctuation -----------------------------------------------------------
    def serialized_keys(self, keys, serde):
        """``serde.serialize_batch(keys)``, or the consumed key bytes when ``keys`` are the
        ones the source decoded with the same exact round-trip serde (BYTES, STRING, INT32,
        INT64): no encoding twice of keys that pass through unchanged."""
        kbs = _reused_key_bytes(self._task._key_origin, keys, serde)
        return serde.serialize_batch(keys) if kbs is None else kbs

    def reused_key_bytes(self, keys, serde):
        """The consumed key bytes when ``keys`` are the ones the source decoded with the same
        exact round-trip serde, else None (see ``serialized_keys``)."""
        return _reused_key_bytes(self._task._key_origin, keys, serde)

    def on_flush(self, callback):
        """Call ``callback(stream_time)`` at every commit, before the stores flush, as a
        punctuation of this processor (what it forwards flows downstream)."""
        self._task.on_flush(self._node, callback)

    def get_store(self, name):
        if name not in self._node.store_names:
            raise CStreamsError(
                f"processor {self._node.name!r} is not connected to store {name!r}; "
                f"connected stores: {sorted(self._node.store_names)}"
            )
        return self._task.stores[name]

    def schedule(self, interval_ms, punctuation_type, callback):
        return self._task.schedule(self._node, interval_ms, punctuation_type, callback)

    def commit(self):
        """Ask the runtime to commit as soon as possible."""
        self._task.commit_requested = True


class Node:
    """A node of one task's graph. The task comes with the constructor; children are added
    (``add_child``) before ``init()``."""

    kind = "node"

    def __init__(self, name, task):
        self.name = name
        self.task = task
        self.children = []
        self.store_names = frozenset()
        self.records = 0
        self.batches = 0

    def add_child(self, child):
        self.children.append(child)

    def init(self):
        pass

    def close(self):
        pass

    def _emit(self, batch):
        for child in self.children:
            child.process_batch(batch)


class SourceNode(Node):
    """Deserializes raw batches of its topics and passes them to its children."""

    kind = "source"

    def __init__(self, name, task, topics, key_serde, value_serde):
        super().__init__(name, task)
        self.topics = topics
        self.key_serde = key_serde
        self.value_serde = value_serde

    def process_raw(self, raw):
        self.records += len(raw.keys)
        self.batches += 1
        batch = self.deserialize(raw)
        if batch is not None and len(batch.keys):
            self._emit(batch)

    def deserialize(self, raw):
        task = self.task
        task._key_origin = None
        try:
            keys = self.key_serde.deserialize_batch(raw.keys)
            values = self.value_serde.deserialize_batch(raw.values)
        except SerdeError:
            return self._deserialize_each(raw)
        batch = raw.with_columns(keys, values)
        task._key_origin = key_origin(batch.keys, raw.keys, self.key_serde)
        return batch

    def _deserialize_each(self, raw):
        """Slow path after a failure: find every bad record, let the handler decide."""
        kde, vde = self.key_serde.deserialize, self.value_serde.deserialize
        keep, keys, values = [], [], []
        for i in range(len(raw.keys)):
            field = "key"
            try:
                k = kde(raw.keys[i])
                field = "value"
                v = vde(raw.values[i])
            except Exception as e:
                err = DeserializationError(
                    f"cannot deserialize the {field} of the record at topic {raw.topic!r} "
                    f"partition {raw.partition} offset {raw.offsets[i]} (source node "
                    f"{self.name!r}): {e}",
                    topic=raw.topic,
                    partition=raw.partition,
                    offset=raw.offsets[i],
                    node=self.name,
                    field=field,
                )
                self.task.handle_error(err, raw.record(i), e)
                continue
            keep.append(i)
            keys.append(k)
            values.append(v)
        if not keep:
            return None
        sub = raw.select(keep)
        return sub.with_columns(keys, values)


class ProcessorNode(Node):
    kind = "processor"

    def __init__(self, name, task, processor, store_names):
        super().__init__(name, task)
        self.processor = processor
        self.store_names = frozenset(store_names)
        self.is_batch = isinstance(processor, BatchProcessor)
        self.context = None

    def init(self):
        self.context = ProcessorContext(self, self.task)
        self.processor.init(self.context)

    def close(self):
        self.processor.close()

    def process_batch(self, batch):
        self.records += len(batch.keys)
        self.batches += 1
        ctx = self.context
        ctx._batch = batch
        try:
            if self.is_batch:
                self._run_batch(batch)
            else:
                self._run_each(batch)
        finally:
            ctx._batch = None
            ctx._index = -1
        ctx._flush_outputs(batch.topic, batch.partition)

    def _run_batch(self, batch):
        proc = self.processor
        try:
            proc.process_batch(batch)
        except Exception as e:
            # Re-run a record at a time under every handler (cstreams.record_errors).
            _record_errors.batch_failed(self, batch, e)

    def _run_each(self, batch):
        ctx = self.context
        proc = self.processor
        process = proc.process
        n = len(batch.keys)
        for i in range(n):
            ctx._index = i
            try:
                process(batch.record(i))
            except Exception as e:
                _record_errors.record_failed(self, batch, i, e)
        ctx._index = -1

    def punctuate(self, callback, timestamp):
        ctx = self.context
        ctx._batch = None
        ctx._punctuation_ts = timestamp
        try:
            callback(timestamp)
        except CStreamsError:
            raise
        except Exception as e:
            raise ProcessingError(
                f"punctuation of processor {self.name!r} at {timestamp} failed: "
                f"{type(e).__name__}: {e}",
                node=self.name,
            ) from e
        ctx._flush_outputs(None, self.task.partition)


class SinkNode(Node):
    """Serializes batches and hands them to the task's record collector."""

    kind = "sink"

    def __init__(self, name, task, topic, key_serde, value_serde, partitioner=None):
        super().__init__(name, task)
        self.topic = topic
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.partitioner = partitioner

    def process_batch(self, batch):
        self.records += len(batch.keys)
        self.batches += 1
        try:
            kbs = _reused_key_bytes(self.task._key_origin, batch.keys, self.key_serde)
            if kbs is None:
                kbs = self.key_serde.serialize_batch(batch.keys)
            vbs = self.value_serde.serialize_batch(batch.values)
        except SerdeError:
            # Each record the sink cannot serialize goes to the error handler.
            batch = _record_errors.sink_unserializable(self, batch)
            if batch is None:
                return
            kbs = self.key_serde.serialize_batch(batch.keys)
            vbs = self.value_serde.serialize_batch(batch.values)
        task = self.task
        n = task.partitions_for(self.topic)
        if self.partitioner is not None:
            part = self.partitioner
            keys, values = batch.keys, batch.values
            partitions = [part(keys[i], values[i], n) for i in range(len(keys))]
        else:
            partitions = murmur2_partitions(kbs, n)
        try:
            task.send(self.topic, kbs, vbs, batch.timestamps, batch.headers, partitions)
        except Exception as e:
            _record_errors.send_failed(self, batch, e, kbs, vbs, partitions)


__all__ = [
    "TaskContext",
    "ProcessorContext",
    "SourceNode",
    "ProcessorNode",
    "SinkNode",
    "Record",
    "murmur2",
    "murmur2_partitions",
]
