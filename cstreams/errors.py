"""Exceptions raised by cstreams, each carrying the coordinates a user needs."""

from __future__ import annotations


class CStreamsError(Exception):
    """Base of every cstreams error."""


class TopologyError(CStreamsError):
    """The topology is not valid: the message names the node or store at fault."""


class SerdeError(CStreamsError):
    """A value could not be (de)serialized.

    ``index`` is the position in the batch being converted (-1 for a single value); the batch
    paths re-raise it as a DeserializationError or SerializationError naming the record.
    """

    def __init__(self, message, index=-1):
        super().__init__(message)
        self.index = index


class DeserializationError(CStreamsError):
    """A consumed record failed to deserialize; names topic, partition, offset and node."""

    def __init__(self, message, *, topic=None, partition=-1, offset=-1, node=None, field="value"):
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.node = node
        self.field = field


class SerializationError(CStreamsError):
    """A record failed to serialize at a sink or store; names the node and source record."""

    def __init__(self, message, *, topic=None, partition=-1, offset=-1, node=None, field="value"):
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.node = node
        self.field = field


class ProcessingError(CStreamsError):
    """A processor raised; names the node and the input record (or batch offsets)."""

    def __init__(self, message, *, topic=None, partition=-1, offset=-1, node=None):
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.node = node


class ForwardError(ProcessingError):
    """A processor misused ``forward``/``forward_batch`` (a child it does not have, columns of
    different lengths, ``like=`` a batch the outputs do not line up with). A bug in the
    processor, not bad input: it stops the app under every error handler, since skipping would
    drop every record."""


class StoreError(CStreamsError):
    """A state store could not be opened, read or written, or refused a key (None, or one
    its key serde cannot serialize)."""


class StoreIOError(StoreError):
    """The disk under a store failed (full, too large, I/O error, closed store): names the
    store and its path. Not about one record: the app stops, nothing is committed past it,
    and the next start restores the store from its changelog."""


class ProductionError(CStreamsError):
    """A produced record was not acknowledged by the broker."""


class ConfigurationError(CStreamsError):
    """An App or store setting is invalid or conflicts with one the runtime owns."""


class BrokerUnavailableError(CStreamsError):
    """The bootstrap servers could not be reached (or answered) within the time allowed."""


class MissingTopicsError(CStreamsError):
    """Source (or sink, or dead-letter) topics the topology needs do not exist."""


class CopartitioningError(CStreamsError):
    """Sources of one sub-topology read topics with different partition counts."""


class CommitError(CStreamsError):
    """The consumer offsets could not be committed."""


class RestoreError(CStreamsError):
    """A store could not be restored from its changelog."""


class TransactionError(CStreamsError):
    """Exactly-once: the transactional producer failed in a way the instance cannot recover
    from (a fatal producer error, or transactions that keep aborting)."""


class ProducerFencedError(TransactionError):
    """Exactly-once: another producer with this instance's transactional.id started, so this
    one may never commit again. The instance stops without committing."""


class TaskMigratedError(ProducerFencedError):
    """Exactly-once: the broker fenced this instance's producer after the open transaction
    outlived ``transaction.timeout.ms`` (a broker that hung, or an instance that stalled), not
    because another instance took the transactional.id over. As Kafka Streams treats a fenced
    producer (task migrated), the runtime drops the uncommitted state, replaces the producer
    and goes on from the committed offsets; the error reaches the user only if that fails."""


class TransactionAbortedError(CStreamsError):
    """Exactly-once: the open transaction failed and was (or must be) aborted; the runtime
    discards the uncommitted state and goes on from the committed offsets."""


class ExtensionsNotLoaded(ImportError):
    """CSTREAMS_REQUIRE_EXTENSIONS=1 was set but a compiled module could not be imported."""
