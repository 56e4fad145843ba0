"""Batch dispatch through a task's node graph: source, processor and sink nodes and the
processor context with its per-child output buffers (compiled twin)."""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from libc.stdint cimport int32_t, uint32_t

from cstreams import record_errors as _record_errors
from cstreams.errors import (
    CStreamsError,
    DeserializationError,
    ProcessingError,
    SerdeError,
    SerializationError,
)

from cstreams._core.processor cimport BatchProcessor
from cstreams._core.record cimport Record, RecordBatch, make_batch
from cstreams._core.serde cimport Serde
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE

from cstreams._core.serde import BYTES, INT32, INT64, STRING

from cstreams._core.record import Record, RecordBatch


# Serdes whose serialize(deserialize(b)) == b for every b they accept: for keys that still are
# the very objects these decoded, the consumed bytes are their serialization.
cdef tuple _ROUND_TRIP = (BYTES, STRING, INT32, INT64)


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
    return _reused_key_bytes(getattr(task, "_key_origin", None), keys, serde)


cdef object _reused_key_bytes(object origin, object keys, object serde):
    if origin is None or type(keys) is not list:
        return None
    cdef tuple snapshot = <tuple>(<tuple>origin)[0]
    if serde is not (<tuple>origin)[2]:
        return None
    cdef Py_ssize_t i, n = PyList_GET_SIZE(keys)
    if n != PyTuple_GET_SIZE(snapshot):
        return None
    for i in range(n):
        if PyList_GET_ITEM(keys, i) != PyTuple_GET_ITEM(snapshot, i):
            return None
    return (<tuple>origin)[1]


cdef class _Output:
    """Records forwarded to one child while the parent handles one input batch.

    forward_batch() of a whole batch into an empty buffer keeps the caller's lists as they are
    (no copy); anything else appends to lists the buffer owns.
    """

    def __init__(self):
        self.clear()

    cpdef clear(self):
        self.keys = None
        self.values = None
        self.timestamps = None
        self.offsets = None
        self.headers = None
        self.owned = False
        self.has_headers = False

    cdef int _own(self) except -1:
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
        return 0

    cdef int add(self, object key, object value, object timestamp, object offset,
                 object headers) except -1:
        if not self.owned:
            self._own()
        (<list>self.keys).append(key)
        (<list>self.values).append(value)
        (<list>self.timestamps).append(timestamp)
        (<list>self.offsets).append(offset)
        (<list>self.headers).append(headers)
        if headers is not None:
            self.has_headers = True
        return 0

    cdef int add_all(self, object keys, object values, object timestamps, object offsets,
                     object headers) except -1:
        if self.keys is None:
            self.keys, self.values, self.timestamps, self.offsets = keys, values, timestamps, offsets
            self.headers = headers
            self.has_headers = headers is not None
            return 0
        if not self.owned:
            self._own()
        (<list>self.keys).extend(keys)
        (<list>self.values).extend(values)
        (<list>self.timestamps).extend(timestamps)
        (<list>self.offsets).extend(offsets)
        if headers is None:
            (<list>self.headers).extend([None] * len(keys))
        else:
            (<list>self.headers).extend(headers)
            self.has_headers = True
        return 0

    def append(self, key, value, timestamp, offset, headers):
        self.add(key, value, timestamp, offset, headers)

    def extend(self, keys, values, timestamps, offsets, headers):
        self.add_all(keys, values, timestamps, offsets, headers)

    cpdef object take(self, object topic, object partition):
        if self.keys is None or not self.keys:
            self.clear()
            return None
        cdef object headers = self.headers if self.has_headers else None
        cdef RecordBatch batch
        if (type(self.keys) is list and type(self.values) is list
                and type(self.timestamps) is list and type(self.offsets) is list
                and headers is None):
            # Lengths are equal by construction (forward and forward_batch check them).
            batch = make_batch(topic, partition, self.keys, self.values, self.timestamps,
                               self.offsets, None)
        else:
            batch = RecordBatch(topic, partition, self.keys, self.values, self.timestamps,
                                self.offsets, headers)
        self.clear()
        return batch


cdef class ProcessorContext:
    """What a processor sees of its task: forwarding, stores, punctuation, record metadata."""

    def __init__(self, node, task):
        self._node = node
        self._task = task
        self._current = None
        self._max_ts = None
        self._index = -1
        self._punctuation_ts = -1
        self._outputs = [(child, _Output()) for child in node.children]
        self._outs = [out for _, out in self._outputs]
        self._by_name = {child.name: i for i, child in enumerate(node.children)}

    cdef int _set_batch(self, RecordBatch batch) except -1:
        self._current = batch
        self._max_ts = None
        return 0

    @property
    def _batch(self):
        return self._current

    @_batch.setter
    def _batch(self, batch):
        self._set_batch(batch)

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
    cdef object _offset(self):
        cdef RecordBatch b = self._current
        if b is None:
            return -1
        if self._index >= 0:
            return b.offsets[self._index]
        return b.offsets[-1] if b.offsets else -1

    cdef object _timestamp(self):
        cdef RecordBatch b = self._current
        if b is None:
            return self._punctuation_ts
        if self._index >= 0:
            return b.timestamps[self._index]
        if self._max_ts is None:
            self._max_ts = max(b.timestamps) if b.timestamps else -1
        return self._max_ts

    @property
    def topic(self):
        b = self._current
        return None if b is None else b.topic

    @property
    def partition(self):
        b = self._current
        return self._task.partition if b is None else b.partition

    @property
    def offset(self):
        return self._offset()

    @property
    def timestamp(self):
        return self._timestamp()

    cdef object _headers(self):
        cdef RecordBatch b = self._current
        if b is None or b.headers is None:
            return None
        if self._index >= 0:
            return b.headers[self._index]
        return None

    @property
    def headers(self):
        return self._headers()

    @property
    def batch(self):
        """The input batch being processed (None inside a punctuation)."""
        return self._current

    # --- forwarding -----------------------------------------------------------------------
    cdef _Output _target(self, object to):
        i = self._by_name.get(to)
        if i is None:
            raise ProcessingError(
                f"node {self._node.name!r} forwards to {to!r}, which is not one of its children "
                f"{[c.name for c, _ in self._outputs]}",
                node=self._node.name,
            )
        return <_Output>self._outs[i]

    def _targets(self, to):
        if to is None:
            return self._outputs
        i = self._by_name.get(to)
        self._target(to)
        return (self._outputs[i],)

    cpdef forward(self, key, value, timestamp=None, headers=None, to=None):
        """Send one record to the children (or the child named ``to``). Timestamp and
        headers default to the input record's."""
        if timestamp is None:
            timestamp = self._timestamp()
        if headers is None:
            headers = self._headers()
        offset = self._offset()
        cdef list outs
        cdef Py_ssize_t j
        if to is None:
            outs = self._outs
            for j in range(PyList_GET_SIZE(outs)):
                (<_Output>PyList_GET_ITEM(outs, j)).add(key, value, timestamp, offset, headers)
        else:
            self._target(to).add(key, value, timestamp, offset, headers)

    cpdef forward_batch(self, keys, values, timestamps=None, headers=None, to=None):
        """Send a batch of records (parallel lists) to the children. When ``timestamps`` (or
        ``headers``) is None it comes from the input batch if that has as many records; else
        the batch's latest timestamp is used for all, and no headers."""
        n = len(keys)
        if len(values) != n:
            raise ProcessingError(
                f"node {self._node.name!r}: forward_batch got {n} keys and {len(values)} values",
                node=self._node.name,
            )
        cdef RecordBatch b = self._current
        if b is not None and len(b.keys) == n:
            offsets = b.offsets
            if timestamps is None:
                timestamps = b.timestamps
            if headers is None:
                headers = b.headers
        else:
            offsets = [self._offset()] * n
            if timestamps is None:
                timestamps = [self._timestamp()] * n
        if len(timestamps) != n:
            raise ProcessingError(
                f"node {self._node.name!r}: forward_batch got {len(timestamps)} timestamps for "
                f"{n} records",
                node=self._node.name,
            )
        if to is None:
            for out in self._outs:
                (<_Output>out).add_all(keys, values, timestamps, offsets, headers)
        else:
            self._target(to).add_all(keys, values, timestamps, offsets, headers)

    cpdef _flush_outputs(self, topic, partition):
        cdef _Output out
        for child, o in self._outputs:
            out = <_Output>o
            batch = out.take(topic, partition)
            if batch is not None:
                child.process_batch(batch)

    cpdef _discard_outputs(self):
        for out in self._outs:
            (<_Output>out).clear()

    def serialized_keys(self, keys, serde):
        """``serde.serialize_batch(keys)``, or the consumed key bytes when ``keys`` are the
        ones the source decoded with the same exact round-trip serde (BYTES, STRING, INT32,
        INT64): no encoding twice of keys that pass through unchanged."""
        kbs = _reused_key_bytes(getattr(self._task, "_key_origin", None), keys, serde)
        return serde.serialize_batch(keys) if kbs is None else kbs

    # --- stores and punctuation -----------------------------------------------------------
    cpdef object get_store(self, object name):
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


cdef class Node:
    kind = "node"

    def __init__(self, name):
        self.name = name
        self.children = []
        self.store_names = frozenset()
        self.task = None
        self.records = 0
        self.batches = 0

    def add_child(self, child):
        self.children.append(child)

    def init(self, task):
        self.task = task

    def close(self):
        pass

    def _emit(self, batch):
        for child in self.children:
            child.process_batch(batch)


cdef class SourceNode(Node):
    """Deserializes raw batches of its topics and passes them to its children."""

    kind = "source"

    def __init__(self, name, topics, key_serde, value_serde):
        super().__init__(name)
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


cdef class ProcessorNode(Node):
    kind = "processor"

    def __init__(self, name, processor, store_names):
        super().__init__(name)
        self.processor = processor
        self.store_names = frozenset(store_names)
        self.is_batch = isinstance(processor, BatchProcessor)
        self.context = None

    def init(self, task):
        super().init(task)
        self.context = ProcessorContext(self, task)
        self.processor.init(self.context)

    def close(self):
        self.processor.close()

    def process_batch(self, RecordBatch batch):
        self.records += len(batch.keys)
        self.batches += 1
        cdef ProcessorContext ctx = self.context
        ctx._set_batch(batch)
        try:
            if self.is_batch:
                self._run_batch(batch)
            else:
                self._run_each(batch)
        finally:
            ctx._set_batch(None)
            ctx._index = -1
        ctx._flush_outputs(batch.topic, batch.partition)

    def _run_batch(self, RecordBatch batch):
        try:
            (<BatchProcessor>self.processor).process_batch(batch)
        except Exception as e:
            _record_errors.batch_failed(self, batch, e)

    def _run_each(self, RecordBatch batch):
        cdef ProcessorContext ctx = self.context
        cdef object process = self.processor.process
        cdef Py_ssize_t i, n = len(batch.keys)
        for i in range(n):
            ctx._index = i
            try:
                process(batch.record(i))
            except Exception as e:
                _record_errors.record_failed(self, batch, i, e)
        ctx._index = -1

    def punctuate(self, callback, timestamp):
        cdef ProcessorContext ctx = self.context
        ctx._set_batch(None)
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


cdef class SinkNode(Node):
    """Serializes batches and hands them to the task's record collector."""

    kind = "sink"

    def __init__(self, name, topic, key_serde, value_serde, partitioner=None):
        super().__init__(name)
        self.topic = topic
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.partitioner = partitioner

    def process_batch(self, RecordBatch batch):
        self.records += len(batch.keys)
        self.batches += 1
        try:
            kbs = _reused_key_bytes(getattr(self.task, "_key_origin", None), batch.keys,
                                    self.key_serde)
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
        collector = self.task.collector
        n = collector.partitions_for(self.topic)
        if self.partitioner is not None:
            part = self.partitioner
            keys, values = batch.keys, batch.values
            partitions = [part(keys[i], values[i], n) for i in range(len(keys))]
        else:
            partitions = murmur2_partitions(kbs, n)
        try:
            collector.send_batch(self.topic, kbs, vbs, batch.timestamps, batch.headers,
                                 partitions)
        except Exception as e:
            _record_errors.send_failed(self, batch, e, kbs, vbs, partitions)


# --- Kafka's default partitioner ------------------------------------------------------------

cdef int32_t murmur2_buffer(const unsigned char *data, Py_ssize_t length) noexcept nogil:
    """Kafka's murmur2 (the Java client's Utils.murmur2) over ``length`` bytes."""
    cdef uint32_t m = 0x5BD1E995
    cdef uint32_t h = (<uint32_t>0x9747B28C) ^ <uint32_t>length
    cdef uint32_t k
    cdef Py_ssize_t i, j, n4 = length // 4, base = (length // 4) * 4
    cdef int rest = length & 3
    for i in range(n4):
        j = i * 4
        k = (<uint32_t>data[j] | (<uint32_t>data[j + 1] << 8) | (<uint32_t>data[j + 2] << 16)
             | (<uint32_t>data[j + 3] << 24))
        k *= m
        k ^= k >> 24
        k *= m
        h *= m
        h ^= k
    if rest == 3:
        h ^= <uint32_t>data[base + 2] << 16
    if rest >= 2:
        h ^= <uint32_t>data[base + 1] << 8
    if rest >= 1:
        h ^= <uint32_t>data[base]
        h *= m
    h ^= h >> 13
    h *= m
    h ^= h >> 15
    return <int32_t>h


def _murmur2_py(data):
    # For sequences of ints that are not buffers, as the pure twin accepts them.
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    n4 = length // 4
    for i in range(n4):
        j = i * 4
        k = data[j] | (data[j + 1] << 8) | (data[j + 2] << 16) | (data[j + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length & 3
    base = n4 * 4
    if rest == 3:
        h ^= data[base + 2] << 16
    if rest >= 2:
        h ^= data[base + 1] << 8
    if rest >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


cdef int32_t _murmur2_object(object data) except? -1:
    cdef Py_buffer view
    cdef int32_t h
    if type(data) is bytes:
        return murmur2_buffer(<const unsigned char *>PyBytes_AS_STRING(data),
                              PyBytes_GET_SIZE(data))
    if PyObject_CheckBuffer(data):
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            h = murmur2_buffer(<const unsigned char *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return h
    return _murmur2_py(data)


cdef extern from "Python.h":
    bint PyObject_CheckBuffer(object obj)


def murmur2(data):
    """Kafka's murmur2 hash (as the Java client's Utils.murmur2), a signed 32-bit int."""
    return _murmur2_object(data)


def murmur2_partitions(keys, num_partitions):
    """Partition per serialized key as Kafka's default partitioner: positive murmur2 modulo
    the partition count; -1 (let the producer choose) for a null key."""
    cdef list out = []
    cdef long n
    cdef object k
    if type(num_partitions) is not int or not (0 < num_partitions <= 0x7FFFFFFF):
        # Odd partition counts keep Python's semantics (and errors), as the pure twin.
        for k in keys:
            out.append(-1 if k is None else (_murmur2_object(k) & 0x7FFFFFFF) % num_partitions)
        return out
    n = num_partitions
    cdef list src = keys if type(keys) is list else list(keys)
    cdef Py_ssize_t i, size = PyList_GET_SIZE(src)
    for i in range(size):
        k = <object>PyList_GET_ITEM(src, i)
        if k is None:
            out.append(-1)
        else:
            out.append((<long>(<uint32_t>_murmur2_object(k) & 0x7FFFFFFF)) % n)
    return out


__all__ = [
    "ProcessorContext",
    "SourceNode",
    "ProcessorNode",
    "SinkNode",
    "Record",
    "murmur2",
    "murmur2_partitions",
]
