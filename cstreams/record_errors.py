"""Record errors: what the dispatch nodes do when one record fails, on both twins.

Every error raised while a record is processed (a processor's exception, a store refusing
its key, a sink that cannot serialize it, a produce the client rejects for that record, such
as an oversized one) reaches the task's error handler as an error naming the record's topic,
partition, offset and the node: ``fail`` raises it (nothing past it is committed), ``skip``
counts it and goes on, ``dead-letter`` writes the consumed bytes with the error headers and
goes on. A failing ``process_batch`` is re-run a record at a time under every handler, so
that the error names the failing record (under ``fail`` too) and only it is skipped.

Errors that are not about one record stop the app as they are: a store whose disk failed
(StoreIOError), a processor misusing forward (ForwardError), broker, commit and transaction
errors, and an error a handler already decided on (it is re-raised through the nodes above
it unchanged).

The compiled and the pure dispatch call these functions from their ``except`` clauses; the
logic lives here once.
"""

from __future__ import annotations

import logging

from cstreams.errors import (
    CStreamsError,
    DeserializationError,
    ForwardError,
    ProcessingError,
    ProductionError,
    SerdeError,
    SerializationError,
    StoreError,
    StoreIOError,
)

log = logging.getLogger("cstreams.errors")

# CStreamsErrors that are about the record in hand (a store refusing a None key or a key its
# serde cannot encode, a serde called by user code, a forward to an unknown child).
_ABOUT_ONE_RECORD = (StoreError, SerdeError, ProcessingError, SerializationError,
                     DeserializationError)
_HANDLED = "_cstreams_handled"

# librdkafka refuses these records in produce() itself: the record, not the client, is bad.
_RECORD_PRODUCE_ERRORS = {"MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE", "INVALID_RECORD",
                          "CORRUPT_MESSAGE"}


class RecordProductionError(ProductionError):
    """The producer refused one record (too large for ``message.max.bytes``, ...): names the
    sink node, its topic and the source record."""

    def __init__(self, message, *, topic=None, partition=-1, offset=-1, node=None,
                 sink_topic=None, kafka_error=None):
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.node = node
        self.sink_topic = sink_topic
        self.kafka_error = kafka_error


def mark_handled(error):
    """The handler decided on ``error``: nodes above re-raise it unchanged."""
    try:
        setattr(error, _HANDLED, True)
    except AttributeError:
        pass
    return error


def about_one_record(exc):
    """True for an error of the record in hand that its handler has not yet seen."""
    if getattr(exc, _HANDLED, False) or isinstance(exc, (StoreIOError, ForwardError)):
        return False
    if isinstance(exc, CStreamsError):
        return isinstance(exc, _ABOUT_ONE_RECORD)
    return isinstance(exc, Exception)


def _describe(exc):
    return f"{type(exc).__name__}: {exc}"


def record_failed(node, batch, i, exc):
    """``node``'s processor raised ``exc`` on record ``i`` of ``batch``: let the handler
    decide (returns to go on, raises to stop)."""
    if not about_one_record(exc):
        raise exc
    offset = batch.offsets[i]
    err = ProcessingError(
        f"processor {node.name!r} failed on the record at topic {batch.topic!r} partition "
        f"{batch.partition} offset {offset}: {_describe(exc)}",
        topic=batch.topic, partition=batch.partition, offset=offset, node=node.name,
    )
    node.task.handle_error(err, None, exc)


def batch_failed(node, batch, exc):
    """``node``'s process_batch raised ``exc``: discard what the failed call forwarded and
    re-run the batch a record at a time, so that the error names the failing record and
    every record that does not fail is processed once. Raises under ``fail``."""
    if not about_one_record(exc):
        raise exc
    log.info("processor %r failed on the batch at topic %r partition %d offsets %d..%d "
             "(%s); re-running it a record at a time", node.name, batch.topic,
             batch.partition, batch.offsets[0], batch.offsets[-1], _describe(exc))
    node.context._discard_outputs()
    node._run_each(batch)


def sink_unserializable(sink, batch):
    """``sink`` could not serialize ``batch``: find each record it cannot serialize, let the
    handler decide on it, and return the batch of the others (None when none is left)."""
    kser, vser = sink.key_serde.serialize, sink.value_serde.serialize
    keep = []
    for i in range(len(batch.keys)):
        field = "key"
        try:
            kser(batch.keys[i])
            field = "value"
            vser(batch.values[i])
        except Exception as e:  # noqa: BLE001 - a serde may raise anything
            offset = batch.offsets[i]
            err = SerializationError(
                f"sink {sink.name!r} (topic {sink.topic!r}) cannot serialize the {field} of "
                f"the record that came from topic {batch.topic!r} partition {batch.partition} "
                f"offset {offset}: {e}",
                topic=batch.topic, partition=batch.partition, offset=offset, node=sink.name,
                field=field,
            )
            sink.task.handle_error(err, None, e)
            continue
        keep.append(i)
    if len(keep) == len(batch.keys):
        return batch
    return batch.select(keep) if keep else None


def _code_name(exc):
    err = exc.args[0] if getattr(exc, "args", None) else None
    name = getattr(err, "name", None)
    return name() if callable(name) else None


def send_failed(sink, batch, exc, kbs, vbs, partitions):
    """The collector raised ``exc`` sending ``sink``'s batch. An error of one record (the
    produce loop tells which: ``exc.produced`` records went out before it) goes to the
    handler, and the rest of the batch is sent; anything else propagates."""
    n = len(kbs)
    start = 0
    while True:
        produced = getattr(exc, "produced", None)
        code = _code_name(exc)
        if produced is None or code not in _RECORD_PRODUCE_ERRORS:
            raise exc
        i = start + produced
        offset = batch.offsets[i]
        kerr = exc.args[0]
        err = RecordProductionError(
            f"sink {sink.name!r} cannot produce the record that came from topic "
            f"{batch.topic!r} partition {batch.partition} offset {offset} to topic "
            f"{sink.topic!r} ({len(kbs[i] or b'')}-byte key, {len(vbs[i] or b'')}-byte "
            f"value): {code}: {kerr.str() if hasattr(kerr, 'str') else kerr}",
            topic=batch.topic, partition=batch.partition, offset=offset, node=sink.name,
            sink_topic=sink.topic, kafka_error=kerr,
        )
        sink.task.handle_error(err, None, exc)
        start = i + 1
        if start >= n:
            return
        headers = batch.headers
        try:
            sink.task.send(
                sink.topic, kbs[start:], vbs[start:], batch.timestamps[start:],
                None if headers is None else headers[start:],
                partitions if type(partitions) is int else partitions[start:])
            return
        except Exception as e:  # noqa: BLE001 - classified at the top of the loop
            exc = e
