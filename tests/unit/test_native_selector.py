"""The selector of the native data path (cstreams._impl.native_kafka, issue 18): on when
available on the compiled core, CSTREAMS_NATIVE_KAFKA=0 off, =1 required, never on the pure
twins, and a consumer that fails validation falls back to confluent-kafka's consume()."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("confluent_kafka")

from cstreams import _impl  # noqa: E402
from cstreams.errors import ExtensionsNotLoaded  # noqa: E402


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(_impl, "_native_state", None)
    monkeypatch.setattr(_impl, "_native_logged", False)
    return monkeypatch


def test_off_when_turned_off(fresh):
    fresh.setenv("CSTREAMS_NATIVE_KAFKA", "0")
    assert _impl.native_kafka() is None
    assert _impl._native_state[1] == "CSTREAMS_NATIVE_KAFKA=0"


def test_never_on_the_pure_twins(fresh):
    fresh.setattr(_impl, "IMPLEMENTATION", "pure")
    fresh.delenv("CSTREAMS_NATIVE_KAFKA", raising=False)
    assert _impl.native_kafka() is None
    fresh.setattr(_impl, "_native_state", None)
    fresh.setenv("CSTREAMS_NATIVE_KAFKA", "1")
    with pytest.raises(ExtensionsNotLoaded, match="pure-Python twins"):
        _impl.native_kafka()


def test_unverified_client_version_is_unavailable(fresh):
    from cstreams.internals import kafka

    info = kafka.native_client_info()
    fresh.setattr(kafka, "native_client_info", lambda: info[:3] + ("9.0.0",) + info[4:])
    fresh.setattr(_impl, "IMPLEMENTATION", "compiled")
    fresh.delenv("CSTREAMS_NATIVE_KAFKA", raising=False)
    try:
        import cstreams._core.native  # noqa: F401
    except ImportError:
        pytest.skip("cstreams._core.native is not built")
    assert _impl.native_kafka() is None
    assert "confluent-kafka 9.0.0" in _impl._native_state[1]


@pytest.mark.skipif(_impl.IMPLEMENTATION != "compiled", reason="needs the compiled core")
def test_on_by_default_on_the_compiled_core(fresh):
    fresh.delenv("CSTREAMS_NATIVE_KAFKA", raising=False)
    native = _impl.native_kafka()
    assert native is not None
    assert native.unavailable() is None


@pytest.mark.skipif(_impl.IMPLEMENTATION != "compiled", reason="needs the compiled core")
def test_failed_validation_falls_back_or_fails_when_required(fresh, caplog):
    from confluent_kafka import Producer

    from cstreams.runtime.stream_thread import StreamThread

    class Tasks:
        route = None

    fresh.delenv("CSTREAMS_NATIVE_KAFKA", raising=False)
    st = StreamThread.__new__(StreamThread)
    st.native = None
    st.tasks = Tasks()
    st.consumer = Producer({})       # not a consumer: the validation fails

    class App:
        max_poll_records = 100

    st.app = App()
    with caplog.at_level(logging.INFO, logger="cstreams"):
        st._native_data_path()
    assert st.native is None and st.tasks.route is None
    assert _impl.native_kafka() is None
    assert "not a confluent-kafka Consumer" in caplog.text
    assert "consume()" in caplog.text

    fresh.setattr(_impl, "_native_state", None)
    fresh.setenv("CSTREAMS_NATIVE_KAFKA", "1")
    with pytest.raises(ExtensionsNotLoaded, match="not a confluent-kafka Consumer"):
        st._native_data_path()


def test_consumer_errors_of_both_paths_name_topic_partition_offset(caplog):
    """The stream loop's handling of consumer errors, as both data paths report them:
    (topic, partition, offset, code, reason, fatal); partition EOF is not an error."""
    from cstreams.errors import CStreamsError
    from cstreams.internals import kafka
    from cstreams.runtime.stream_thread import StreamThread

    st = StreamThread.__new__(StreamThread)
    st._consumer_errors([("in", 2, 17, kafka.PARTITION_EOF, "Broker: No more messages",
                          False)])
    with caplog.at_level(logging.WARNING, logger="cstreams"):
        st._consumer_errors([("in", 1, 5, kafka.KafkaError._MSG_TIMED_OUT, "timed out",
                              False), (None, -1, -1001, kafka.KafkaError._TRANSPORT,
                                       "all brokers down", False)])
    assert "consumer on in-1 at offset 5: timed out" in caplog.text
    assert "consumer: all brokers down" in caplog.text
    with pytest.raises(CStreamsError, match=r"consumer error on in-3 at offset 42: gone"):
        st._consumer_errors([("in", 3, 42, kafka.KafkaError.UNKNOWN_TOPIC_OR_PART, "gone",
                              False)])
    with pytest.raises(CStreamsError, match="fatal thing"):
        st._consumer_errors([(None, -1, -1001, kafka.KafkaError._FATAL, "fatal thing", True)])


def test_native_batches_taken_before_a_callback_moved_their_partition_are_dropped():
    """The native path takes its records, then confluent-kafka serves the rebalance callbacks
    of the same poll. A partition those callbacks assign again or seek back (a lost
    partition's abort rewinds the tasks kept) must not have its earlier batch processed: the
    batch precedes the new position and librdkafka fetches it again. Other partitions'
    batches stay (their positions moved on past them)."""
    from cstreams.runtime.stream_thread import StreamThread
    from cstreams.runtime.task_manager import TaskManager

    class Batch:
        def __init__(self, topic, partition, offsets):
            self.topic, self.partition, self.offsets = topic, partition, offsets

    class Native:
        def consume_batches(self, max_records, timeout):
            return [Batch("in", 0, [10, 11]), Batch("in", 1, [20, 21])], []

    tasks = TaskManager.__new__(TaskManager)
    tasks.moved = set()

    class Consumer:
        def consume(self, num_messages, timeout):
            tasks.moved.add(("in", 1))      # e.g. rewind_all's seek of in-1
            return []

    st = StreamThread.__new__(StreamThread)
    st.native, st.tasks, st.consumer = Native(), tasks, Consumer()
    batches, errors, polled = st._poll(100, 0.0)
    assert [(b.topic, b.partition) for b in batches] == [("in", 0)]
    assert errors == [] and polled == 2      # what is left to process

    class Quiet:
        def consume(self, num_messages, timeout):
            return []

    tasks.moved.add(("in", 0))              # moved before this poll's take: not stale
    st.consumer = Quiet()
    batches, _errors, _n = st._poll(100, 0.0)
    assert [(b.partition) for b in batches] == [0, 1]
