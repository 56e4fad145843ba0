"""The embedded Tansu test broker: a re-export of ``cstreams.devbroker``.

The launcher lives in the library (``cstreams.devbroker``) so that ``make demo`` and
``python -m cstreams.devbroker`` work from a pip install, with no checkout and no Java;
the test suite reaches it here beside the Apache Kafka and external brokers.

    python -m testbrokers.tansu       # or: python -m cstreams.devbroker
"""

from __future__ import annotations

import sys

from cstreams.devbroker import (  # noqa: F401 - BrokerProcess, _NullLogger: testbrokers.kafka
    BrokerProcess,
    DevBroker,
    _NullLogger,
    create_topics,
    find_tansu,
    free_port,
    main,
)

__all__ = ["find_tansu", "DevBroker", "create_topics", "free_port", "main"]

if __name__ == "__main__":
    sys.exit(main())
