"""The nodes of one task's graph: source (deserializes), processor (runs a Processor or
BatchProcessor with its context) and sink (serializes, partitions, hands to the task's
record collector). Record errors go to cstreams.record_errors.

One source for both builds: run as is on the pure-Python path, compiled by Cython (pure-Python
mode, declarations in cstreams/_core/nodes.pxd) into cstreams._core.nodes.
"""

from __future__ import annotations

from cstreams import record_errors as _record_errors
from cstreams.errors import (
    CStreamsError,
    DeserializationError,
    ProcessingError,
    SerdeError,
)

from .context import ProcessorContext, _reused_key_bytes, key_origin
from .partitioner import murmur2_partitions
from .processor import BatchProcessor


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


__all__ = ["Node", "SourceNode", "ProcessorNode", "SinkNode"]
