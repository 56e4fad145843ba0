"""The native data path (cstreams._core.native, issue 18) over the real broker: records taken
from librdkafka in C, confluent-kafka's Consumer kept for membership, pause/resume and seeks.

Skipped where the native path is not used (the pure-Python twins, CSTREAMS_NATIVE_KAFKA=0).
"""

from __future__ import annotations

import time
import uuid

import pytest

pytest.importorskip("confluent_kafka")

from confluent_kafka import (  # noqa: E402
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from helpers import FAST_GROUP, wait_for  # noqa: E402

from cstreams import _impl  # noqa: E402
from cstreams._impl import record  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

native = _impl.native_kafka() if _impl.IMPLEMENTATION == "compiled" else None
if native is None:
    pytest.skip("the native data path is not in use here", allow_module_level=True)


def _consumer(bootstrap, **extra):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": f"native-{uuid.uuid4().hex}",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     **FAST_GROUP, **extra})


class Reader:
    """A subscribed consumer on the native path, driven as the stream thread drives it."""

    def __init__(self, bootstrap, topic, **extra):
        self.consumer = _consumer(bootstrap, **extra)
        self.queue = native.NativeConsumerQueue(self.consumer, record.RecordBatch, 1000)
        self.assigned = []
        self.batches = []
        self.errors = []
        self.via_consumer = 0

        def on_assign(c, parts):
            self.queue.route([(tp.topic, tp.partition) for tp in parts])
            c.assign(parts)
            self.assigned = parts

        self.consumer.subscribe([topic], on_assign=on_assign)

    def poll(self, timeout=0.2):
        batches, errors = self.queue.consume_batches(1000, timeout)
        msgs = self.consumer.consume(1000, 0)
        self.via_consumer += sum(1 for m in msgs if m.error() is None)
        self.batches += batches
        self.errors += errors
        return batches

    def records(self):
        out = {}
        for b in self.batches:
            for i in range(len(b.offsets)):
                out.setdefault(b.partition, []).append(
                    (b.offsets[i], b.keys[i], b.values[i],
                     None if b.headers is None else b.headers[i]))
        return out

    def close(self):
        self.queue.close()
        self.consumer.close()


def _produce(bootstrap, topic, records):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition, key, value, headers in records:
        p.produce(topic, value, key, partition, headers=headers)
    assert p.flush(30) == 0


def test_one_librdkafka_in_the_process():
    import confluent_kafka

    name, version, path = native.version()
    assert (name, version) == confluent_kafka.libversion()
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "librdkafka" in line}
    assert len(libs) == 1, libs
    assert path is not None and "librdkafka" in path


def test_records_per_partition_in_order_with_headers_and_eof(broker, topic_factory):
    topic = topic_factory("native-in", 3)
    sent = []
    for i in range(900):
        p = i % 3
        key = None if i % 7 == 0 else f"k{i}".encode()
        value = None if i % 11 == 0 else (b"" if i % 13 == 0 else f"v{i}".encode())
        headers = [("h", f"{i}".encode()), ("n", None)] if i % 5 == 0 else None
        sent.append((p, key, value, headers))
    _produce(broker.bootstrap_servers, topic, sent)
    r = Reader(broker.bootstrap_servers, topic, **{"enable.partition.eof": True})
    try:
        wait_for(lambda: r.poll() is not None and
                 sum(len(v) for v in r.records().values()) == 900
                 and len({e[1] for e in r.errors}) == 3,
                 timeout=60, what="900 records and EOF of 3 partitions")
        assert r.via_consumer == 0
        assert all(type(b) is record.RecordBatch and len({b.partition}) == 1
                   for b in r.batches)
        got = r.records()
        for p in range(3):
            expected = [(k, v, h) for q, k, v, h in sent if q == p]
            rows = got[p]
            assert [o for o, *_ in rows] == list(range(len(expected)))
            assert [(k, v, h) for _, k, v, h in rows] == [
                (k, v, None if h is None else [(n, b) for n, b in h]) for k, v, h in expected]
        eof = {(t, p): o for t, p, o, code, _ in r.errors if code == native.PARTITION_EOF}
        assert eof == {(topic, p): 300 for p in range(3)}
    finally:
        r.close()


def test_pause_resume_and_revocation(broker, topic_factory):
    topic = topic_factory("native-pause", 2)
    bs = broker.bootstrap_servers
    r = Reader(bs, topic)
    try:
        _produce(bs, topic, [(p, None, b"a", None) for p in (0, 1)])
        wait_for(lambda: r.poll() is not None and len(r.records().get(0, [])) == 1
                 and len(r.records().get(1, [])) == 1, timeout=60, what="first records")
        r.consumer.pause([TopicPartition(topic, 0)])
        _produce(bs, topic, [(p, None, b"b", None) for p in (0, 1)])
        wait_for(lambda: r.poll() is not None and len(r.records()[1]) == 2, timeout=30,
                 what="partition 1 while 0 is paused")
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            r.poll(0.1)
        assert len(r.records()[0]) == 1, "a paused partition delivered records"
        r.consumer.resume([TopicPartition(topic, 0)])
        wait_for(lambda: r.poll() is not None and len(r.records()[0]) == 2, timeout=30,
                 what="partition 0 after resume")
        assert [o for o, *_ in r.records()[0]] == [0, 1]
        # Seek back: the records come again through the native queue.
        r.consumer.seek(TopicPartition(topic, 1, 0))
        wait_for(lambda: r.poll() is not None and len(r.records()[1]) == 4, timeout=30,
                 what="partition 1 again after a seek")
        assert [o for o, *_ in r.records()[1]] == [0, 1, 0, 1]
        # Partition 1 taken away (the assignment replaced by partition 0 alone, eager
        # protocol): nothing of it comes any more, and partition 0, whose fetcher librdkafka
        # stopped and started again (clearing its forwarding), goes on where it was with no
        # new route() (the queue forwards its routed partitions again on every poll).
        r.consumer.assign([TopicPartition(topic, 0, 2)])
        _produce(bs, topic, [(p, None, b"c", None) for p in (0, 1)])
        wait_for(lambda: r.poll() is not None and len(r.records()[0]) == 3, timeout=30,
                 what="partition 0 after partition 1 was revoked")
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            r.poll(0.1)
        assert len(r.records()[1]) == 4, "a revoked partition delivered records"
        assert r.via_consumer == 0
    finally:
        r.close()


def test_a_rebalance_wakes_the_wait_on_the_native_queue(broker, topic_factory):
    """The loop waits on the native queue; a rebalance callback put on confluent-kafka's
    consumer queue ends that wait at once instead of at its timeout."""
    topic = topic_factory("native-wake", 2)
    bs = broker.bootstrap_servers
    group = f"native-wake-{uuid.uuid4().hex}"
    a = Reader(bs, topic, **{"group.id": group})
    b = None

    def timed_wait(seconds):
        started = time.monotonic()
        a.queue.consume_batches(1000, seconds)
        took = time.monotonic() - started
        a.consumer.consume(1000, 0)     # serves whatever woke the wait
        return took

    try:
        wait_for(lambda: a.poll() is not None and len(a.assigned) == 2, timeout=60,
                 what="the first member's assignment")
        # With nothing to wake it, a wait runs its whole time (a leftover wake-up from the
        # assignment may end the first one early).
        assert any(timed_wait(1.0) >= 0.9 for _ in range(3))
        b = Reader(bs, topic, **{"group.id": group})    # joins: the group rebalances
        took = None
        deadline = time.monotonic() + 90
        while len(a.assigned) != 1 and time.monotonic() < deadline:
            took = timed_wait(30.0)
        assert len(a.assigned) == 1, "the rebalance never reached the first member"
        assert took < 29, f"the wait before the new assignment ran {took:.1f} s of 30"
    finally:
        a.close()
        if b is not None:
            b.close()


# Tansu answers a fetch past the log end with no error, so no offset reset is triggered.
@pytest.mark.kafka_semantics
def test_partition_error_names_topic_partition_offset(broker, topic_factory):
    topic = topic_factory("native-err", 1)
    bs = broker.bootstrap_servers
    _produce(bs, topic, [(0, None, b"x", None)])
    c = _consumer(bs, **{"auto.offset.reset": "error"})
    q = native.NativeConsumerQueue(c, record.RecordBatch, 100)
    try:
        q.route([(topic, 0)])
        c.assign([TopicPartition(topic, 0, 1000)])
        errors = []

        def poll():
            errors.extend(q.consume_batches(100, 0.2)[1])
            c.consume(100, 0)
            return errors

        wait_for(poll, timeout=30, what="an offset-reset error on the native queue")
        t, p, offset, code, reason = errors[0]
        assert (t, p) == (topic, 0) and code != 0 and reason
        assert offset == 1000 or "1000" in reason
    finally:
        q.close()
        c.close()


def test_validation_rejects_what_is_not_a_live_consumer(broker):
    p = Producer({"bootstrap.servers": broker.bootstrap_servers})
    with pytest.raises(native.NativeUnavailable, match="not a confluent-kafka Consumer"):
        native.NativeConsumerQueue(p, record.RecordBatch)
    c = _consumer(broker.bootstrap_servers)
    c.close()
    with pytest.raises((native.NativeUnavailable, RuntimeError)):
        native.NativeConsumerQueue(c, record.RecordBatch)


# --- the native producer ------------------------------------------------------------------


def _read_all(bootstrap, topic, n, **extra):
    """Every record of ``topic`` (n expected) per partition, in offset order."""
    c = _consumer(bootstrap, **extra)
    c.subscribe([topic])
    out = {}
    got = 0
    deadline = time.monotonic() + 60
    try:
        while got < n and time.monotonic() < deadline:
            for m in c.consume(500, 0.5):
                if m.error() is not None:
                    continue
                out.setdefault(m.partition(), []).append(
                    (m.offset(), m.key(), m.value(), m.timestamp()[1], m.headers()))
                got += 1
        # Nothing more than expected arrives.
        for m in c.consume(500, 1.0):
            if m.error() is None:
                got += 1
    finally:
        c.close()
    assert got == n, f"read {got} records of {topic}, expected {n}"
    return out


def test_producer_columns_reach_the_broker_in_order_with_every_field(broker, topic_factory):
    topic = topic_factory("native-prod", 3)
    bs = broker.bootstrap_servers
    p = native.NativeProducer({"bootstrap.servers": bs, "linger.ms": 5})
    n = 300
    keys = [None if i % 50 == 7 else f"k{i}".encode() for i in range(n)]
    values = [None if i % 40 == 3 else f"v{i}".encode() for i in range(n)]
    parts = [i % 3 for i in range(n)]
    stamps = [1_700_000_000_000 + i for i in range(n)]
    headers = [None if i % 2 else [("h", f"x{i}".encode()), ("empty", None)] for i in range(n)]
    assert p.produce_columns(topic, keys, values, parts, stamps, headers) == n
    assert p.flush(30) == 0
    assert p.produced == n
    got = _read_all(bs, topic, n)
    for partition in range(3):
        want = [(keys[i], values[i], stamps[i], headers[i])
                for i in range(n) if parts[i] == partition]
        recs = got[partition]
        assert [r[0] for r in recs] == sorted(r[0] for r in recs)
        assert [(r[1], r[2], r[3], r[4]) for r in recs] == want


def test_producer_one_partition_str_columns_and_the_partitioner(broker, topic_factory):
    topic = topic_factory("native-prod1", 2)
    bs = broker.bootstrap_servers
    p = native.NativeProducer({"bootstrap.servers": bs})
    p.produce_columns(topic, ["a", "b"], ["1", "2"], 1)
    p.produce(topic, b"3", b"c", 0, timestamp=1_700_000_000_123, headers={"n": "v"})
    p.produce_columns(topic, [b"d"], [b"4"], -1)       # the configured partitioner
    assert p.flush(30) == 0
    got = _read_all(bs, topic, 4)
    assert [(r[1], r[2]) for r in got[1] if r[1] != b"d"] == [(b"a", b"1"), (b"b", b"2")]
    assert [(r[1], r[2], r[3], r[4]) for r in got[0] if r[1] != b"d"] == [
        (b"c", b"3", 1_700_000_000_123, [("n", b"v")])]
    assert sum(1 for recs in got.values() for r in recs if r[1] == b"d") == 1


def test_producer_refused_record_names_its_index_and_the_rest_can_go_on(broker, topic_factory):
    topic = topic_factory("native-big", 1)
    p = native.NativeProducer({"bootstrap.servers": broker.bootstrap_servers,
                               "message.max.bytes": 10_000})
    with pytest.raises(KafkaException) as info:
        p.produce_columns(topic, [b"a", b"b", b"c"], [b"1", b"x" * 20_000, b"3"], 0)
    assert info.value.produced == 1
    assert info.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    with pytest.raises(TypeError, match="record 0: value is int") as info:
        p.produce_columns(topic, [b"a"], [5], 0)
    assert info.value.produced == 0
    p.produce_columns(topic, [b"c"], [b"3"], 0)
    assert p.flush(30) == 0
    assert [(r[1], r[2]) for r in _read_all(broker.bootstrap_servers, topic, 2)[0]] == [
        (b"a", b"1"), (b"c", b"3")]


def test_producer_delivery_failure_reaches_the_callback_with_topic_and_partition(caplog):
    reports = []
    p = native.NativeProducer({"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 500,
                               "on_delivery": lambda err, msg: reports.append((err, msg)),
                               "logger": __import__("logging").getLogger("native-test")})
    last = []
    with caplog.at_level("DEBUG", logger="native-test"):
        p.produce_columns("nowhere", [b"k1", b"k2"], [b"v1", b"v2"], [0, 1],
                          last_on_delivery=lambda err, msg: last.append((err, msg)))
        assert p.flush(10) == 0
    # The per-record callback takes the last record's report instead of the default one.
    assert [(m.topic(), m.partition()) for _, m in reports] == [("nowhere", 0)]
    assert [(m.topic(), m.partition()) for _, m in last] == [("nowhere", 1)]
    for err, msg in reports + last:
        assert err is not None and err.code() == KafkaError._MSG_TIMED_OUT
        # librdkafka's text for the code, not the record's payload read as a C string.
        assert err.str() == KafkaError(KafkaError._MSG_TIMED_OUT).str()
        assert msg.error() is err
    # librdkafka's log reached the Python logger, on the polling thread.
    assert any("127.0.0.1:1" in r.getMessage() for r in caplog.records)


def test_producer_callback_exception_is_raised_by_flush():
    def boom(err, msg):
        raise ValueError("callback failed")

    p = native.NativeProducer({"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 200,
                               "on_delivery": boom})
    p.produce_columns("nowhere", [b"k"], [b"v"], 0)
    with pytest.raises(ValueError, match="callback failed"):
        p.flush(10)


def test_producer_settings_only_confluent_takes_are_refused():
    with pytest.raises(native.NativeUnavailable, match="error_cb"):
        native.NativeProducer({"bootstrap.servers": "127.0.0.1:1", "error_cb": print})
    with pytest.raises(KafkaException, match="no.such.setting"):
        native.NativeProducer({"bootstrap.servers": "127.0.0.1:1", "no.such.setting": 1})


@pytest.mark.kafka_semantics
def test_producer_transactions_commit_abort_offsets_and_fencing(broker, topic_factory):
    topic = topic_factory("native-txn", 1)
    src = topic_factory("native-txn-src", 1)
    bs = broker.bootstrap_servers
    tid = f"native-txn-{uuid.uuid4().hex[:8]}"
    conf = {"bootstrap.servers": bs, "transactional.id": tid, "enable.idempotence": True}
    p = native.NativeProducer(dict(conf))
    p.init_transactions(30)
    group = f"native-txn-{uuid.uuid4().hex}"
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
    try:
        p.begin_transaction()
        p.produce_columns(topic, [b"a"], [b"committed"], 0)
        p.send_offsets_to_transaction([TopicPartition(src, 0, 42)],
                                      c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        p.begin_transaction()
        p.produce_columns(topic, [b"b"], [b"aborted"], 0)
        p.flush(30)
        p.abort_transaction(30)
        got = _read_all(bs, topic, 1, **{"isolation.level": "read_committed"})
        assert [(r[1], r[2]) for r in got[0]] == [(b"a", b"committed")]
        committed = c.committed([TopicPartition(src, 0)], timeout=30)
        assert committed[0].offset == 42
        # A second producer with the same transactional.id fences the first.
        p2 = native.NativeProducer(dict(conf))
        p2.init_transactions(30)
        p.begin_transaction()
        p.produce_columns(topic, [b"c"], [b"zombie"], 0)
        with pytest.raises(KafkaException) as info:
            p.commit_transaction(30)
        err = info.value.args[0]
        assert err.fatal() or err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED)
    finally:
        c.close()


def test_make_producer_is_native_unless_a_setting_needs_confluent(broker):
    from cstreams.internals import kafka

    bs = broker.bootstrap_servers
    assert type(kafka.make_producer({"bootstrap.servers": bs})) is native.NativeProducer
    plain = kafka.make_producer({"bootstrap.servers": bs, "stats_cb": print,
                                 "statistics.interval.ms": 0})
    assert type(plain) is Producer
