"""The native data path (cstreams._core.native, issue 18) over the real broker: records taken
from librdkafka in C, confluent-kafka's Consumer kept for membership, pause/resume and seeks.

Skipped where the native path is not used (the pure-Python twins, CSTREAMS_NATIVE_KAFKA=0).
"""

from __future__ import annotations

import time
import uuid

import pytest

pytest.importorskip("confluent_kafka")

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
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
