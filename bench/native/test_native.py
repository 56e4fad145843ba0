"""The issue-18 spike against the real (embedded Tansu) broker: what the native data path
produces and consumes is what was meant, record for record, read back both by the spike and
by confluent-kafka's own consumer as the reference; errors are surfaced with coordinates.

    CSTREAMS_REQUIRE_EXTENSIONS=1 .venv/bin/python -m pytest -q bench/native/test_native.py
    CSTREAMS_NO_EXTENSIONS=1 .venv/bin/python -m pytest -q bench/native/test_native.py

Builds the spike (bench/native/setup.py) if it is not built. Not part of the package's suite
(testpaths = tests): the spike lives in bench/ only.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PARTITIONS = 3
BASE_TS = 1_700_000_000_000
GROUP = {"session.timeout.ms": 6000, "max.poll.interval.ms": 10000,
         "heartbeat.interval.ms": 500, "topic.metadata.refresh.interval.ms": 2000}


@pytest.fixture(scope="module")
def native():
    if not any((HERE / "build").glob("rdkafka_native*.so")):
        subprocess.run([sys.executable, str(HERE / "setup.py")], check=True, cwd=str(HERE))
    sys.path.insert(0, str(HERE / "build"))
    import rdkafka_native

    return rdkafka_native


@pytest.fixture(scope="module")
def broker():
    from cstreams.devbroker import DevBroker

    b = DevBroker()
    b.start(timeout=60)
    try:
        yield b
    finally:
        b.stop()


def make_topic(broker, name):
    topic = f"{name}-{uuid.uuid4().hex[:8]}"
    broker.create_topics([(topic, PARTITIONS)])
    return topic


def records():
    """The input: per record (partition, key, value, timestamp, headers). Partition 2 carries
    no headers at all (its batches must have headers=None); null keys, tombstones, a header
    without a value and an empty value are all in."""
    out = []
    for i in range(600):
        p = i % PARTITIONS
        key = None if i % 7 == 0 else f"k{i % 50}".encode()
        value = None if i % 11 == 0 else (b"" if i % 13 == 0 else f"v{i}".encode() * (i % 5 + 1))
        headers = None
        if p != 2 and i % 4 == 0:
            headers = [("h1", f"x{i}".encode()), ("empty", None)]
        out.append((p, key, value, BASE_TS + i, headers))
    return out


def produce_native(native, bootstrap, topic, recs):
    producer = native.NativeProducer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                                      "delivery.report.only.error": False})
    # Two calls: one int partition for a whole column, then a partition list.
    first = [r for r in recs if r[0] == 0]
    producer.produce_columns(topic, [r[1] for r in first], [r[2] for r in first], 0,
                             [r[3] for r in first], [r[4] for r in first])
    rest = [r for r in recs if r[0] != 0]
    producer.produce_columns(topic, [r[1] for r in rest], [r[2] for r in rest],
                             [r[0] for r in rest], [r[3] for r in rest], [r[4] for r in rest])
    assert producer.flush(30) == 0
    producer.check()
    assert producer.produced == len(recs)
    assert producer.acknowledged == len(recs)  # every report counted in C
    return producer


def read_reference(bootstrap, topic, expected):
    """confluent-kafka's consumer: per partition [(key, value, timestamp, offset, headers)]."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ref-{uuid.uuid4().hex[:6]}",
                  "enable.partition.eof": True, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got = {p: [] for p in range(PARTITIONS)}
    eof = set()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error() is not None:
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    eof.add(m.partition())
                    continue
                eof.discard(m.partition())
                got[m.partition()].append((m.key(), m.value(), m.timestamp()[1], m.offset(),
                                           m.headers()))
            if len(eof) == PARTITIONS and sum(map(len, got.values())) >= expected:
                break
    finally:
        c.close()
    return got


def read_native(native, bootstrap, topic, expected):
    import cstreams as cs

    consumer = native.NativeConsumer(
        {"bootstrap.servers": bootstrap, "group.id": f"native-{uuid.uuid4().hex[:6]}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False,
         "enable.partition.eof": True, **GROUP},
        [topic], cs.RecordBatch, 100)
    got = {p: [] for p in range(PARTITIONS)}
    batches = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            for b in consumer.consume_batches(100, 0.5):
                batches.append(b)
                headers = b.headers if b.headers is not None else [None] * len(b)
                got[b.partition].extend(zip(b.keys, b.values, b.timestamps, b.offsets,
                                            headers))
            at_eof = {p for t, p, _ in consumer.eof if t == topic}
            if len(at_eof) == PARTITIONS and sum(map(len, got.values())) >= expected:
                break
        eof = list(consumer.eof)
    finally:
        consumer.close()
    return got, batches, eof


def test_native_round_trip_equals_input_and_reference(native, broker):
    import cstreams as cs

    topic = make_topic(broker, "native-rt")
    recs = records()
    produce_native(native, broker.bootstrap_servers, topic, recs)
    want = {p: [(k, v, ts, off, h) for off, (_, k, v, ts, h) in
                enumerate(r for r in recs if r[0] == p)] for p in range(PARTITIONS)}

    reference = read_reference(broker.bootstrap_servers, topic, len(recs))
    assert reference == want  # the native producer wrote what it was given

    got, batches, eof = read_native(native, broker.bootstrap_servers, topic, len(recs))
    assert got == want  # the native consumer reads what confluent-kafka reads
    assert all(type(b) is cs.RecordBatch and b.topic == topic for b in batches)
    for b in batches:
        assert b.offsets == sorted(b.offsets)
        # headers: None when no record of the batch has any, else one entry per record.
        if b.headers is not None:
            assert len(b.headers) == len(b) and any(h is not None for h in b.headers)
    assert all(b.headers is None for b in batches if b.partition == 2)
    # Partition EOF at the end of every partition: the restoration signal.
    ends = {p: len(want[p]) for p in range(PARTITIONS)}
    assert {(t, p, o) for t, p, o in eof if o == ends[p]} == {
        (topic, p, ends[p]) for p in range(PARTITIONS)}


def test_one_partition_batches_across_polls_keep_offset_order(native, broker):
    topic = make_topic(broker, "native-order")
    n = 3000
    producer = native.NativeProducer({"bootstrap.servers": broker.bootstrap_servers,
                                      "linger.ms": 20, "delivery.report.only.error": True})
    keys = [f"key-{i}".encode() for i in range(n)]
    values = [i.to_bytes(8, "big") for i in range(n)]
    producer.produce_columns(topic, keys, values, [i % PARTITIONS for i in range(n)])
    assert producer.flush(30) == 0
    producer.check()
    assert producer.acknowledged == 0  # only errors are reported
    got, batches, _ = read_native(native, broker.bootstrap_servers, topic, n)
    assert sum(map(len, got.values())) == n
    for p, rows in got.items():
        assert [off for _, _, _, off, _ in rows] == list(range(len(rows)))
        assert [int.from_bytes(v, "big") for _, v, _, _, _ in rows] == list(
            range(p, n, PARTITIONS))
    assert len(batches) < n // 10  # batches, not records


def test_produce_errors_name_topic_partition_and_record(native, broker):
    topic = make_topic(broker, "native-err")
    producer = native.NativeProducer({"bootstrap.servers": broker.bootstrap_servers,
                                      "delivery.report.only.error": True})
    producer.produce_columns(topic, [b"k"], [b"v"], 0)
    assert producer.flush(30) == 0  # metadata known from here on
    with pytest.raises(native.NativeKafkaError, match=rf"{topic}.*partition 99 record 1"):
        producer.produce_columns(topic, [b"a", b"b"], [b"1", b"2"], [1, 99])
    assert producer.produced == 2  # the record before the failure went out
    with pytest.raises(TypeError, match="record 0: value is str"):
        producer.produce_columns(topic, [b"a"], ["not bytes"], 0)
    with pytest.raises(ValueError, match="2 keys and 1 values"):
        producer.produce_columns(topic, [b"a", b"b"], [b"1"], 0)


def test_failed_deliveries_are_counted_and_surfaced(native):
    # No broker listens on this port: every record times out in librdkafka's queue.
    producer = native.NativeProducer({"bootstrap.servers": "127.0.0.1:9",
                                      "message.timeout.ms": 300,
                                      "delivery.report.only.error": True})
    producer.produce_columns("nowhere", [b"a", b"b"], [b"1", b"2"], 0)
    assert producer.flush(10) == 0
    assert producer.failed == 2
    with pytest.raises(native.NativeKafkaError, match="2 record.*partition 0"):
        producer.check()


def test_bad_setting_is_named(native):
    with pytest.raises(native.NativeKafkaError, match="no.such.setting"):
        native.NativeProducer({"no.such.setting": 1})


def test_one_librdkafka_in_the_process(native):
    import confluent_kafka  # noqa: F401  (its extension loads the wheel's librdkafka)

    assert native.version()[1] == confluent_kafka.libversion()[1]
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "librdkafka" in line}
    assert len(libs) == 1, libs
