"""Runtime errors that errors.py does not (yet) define; all are CStreamsError subclasses."""

from __future__ import annotations

from cstreams.errors import CStreamsError


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


class TransactionAbortedError(CStreamsError):
    """Exactly-once: the open transaction failed and was (or must be) aborted; the runtime
    discards the uncommitted state and goes on from the committed offsets."""
