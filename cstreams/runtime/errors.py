"""Runtime errors, defined in cstreams.errors (re-exported here for the runtime modules)."""

from __future__ import annotations

from cstreams.errors import (  # noqa: F401
    BrokerUnavailableError,
    CommitError,
    CopartitioningError,
    MissingTopicsError,
    ProducerFencedError,
    RestoreError,
    TaskMigratedError,
    TransactionAbortedError,
    TransactionError,
)
