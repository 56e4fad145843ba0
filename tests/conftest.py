"""Shared fixtures: the embedded test broker (session-scoped) and per-test topic names.

Only integration tests use them; nothing here runs for other tests unless they ask for it.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a plain `pytest` from a checkout that is not installed
    sys.path.insert(0, str(ROOT))

# Fast consumer-group joins on the test broker (TESTING.md: ~3 s instead of ~25 s).
FAST_GROUP = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "max.poll.interval.ms": 10000,
    "topic.metadata.refresh.interval.ms": 2000,
}


@pytest.fixture(scope="session")
def broker():
    """A DevBroker (Tansu) for the whole session, stopped by PID at the end."""
    pytest.importorskip("confluent_kafka")
    from cstreams.devbroker import DevBroker

    b = DevBroker()
    b.start(timeout=60)
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def topic_factory(broker):
    """make(name, partitions=1, config=None) -> a topic name unique to this test."""

    def make(name, partitions=1, config=None):
        topic = f"{name}-{uuid.uuid4().hex[:8]}"
        broker.create_topics([(topic, partitions, config)] if config else [(topic, partitions)])
        return topic

    return make


@pytest.fixture
def fast_group_config():
    return dict(FAST_GROUP)
