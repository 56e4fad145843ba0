"""Helpers for the App integration tests: produce input, read output, read committed offsets.

These use confluent-kafka directly (the tests check the runtime against the broker, not
against itself).
"""

from __future__ import annotations

import os
import re
import struct
import time
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

FAST_GROUP = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "max.poll.interval.ms": 10000,
    "topic.metadata.refresh.interval.ms": 2000,
}

# Also a request that timed out or lost its connection: a broker just restarted (the broker
# fault tests) loads __consumer_offsets first and may not answer within the call's timeout.
_COORDINATOR_MOVING = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
                       KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._TIMED_OUT,
                       KafkaError._TRANSPORT)

WORD = re.compile(r"[a-z0-9']+")


def app_config(**extra):
    conf = dict(FAST_GROUP)
    conf.update(extra)
    return conf


def produce(bootstrap, topic, records, partition=None, flush=True, *, idempotent=False,
            flush_timeout=30):
    """records: iterable of (key bytes|None, value bytes|None); explicit partition or the
    murmur2 partitioner. ``idempotent``: retries after a lost connection (a broker restart)
    cannot write a record twice, as they can without it."""
    conf = {"bootstrap.servers": bootstrap, "linger.ms": 20, "partitioner": "murmur2_random"}
    if idempotent:
        conf["enable.idempotence"] = True
    p = Producer(conf)
    for k, v in records:
        if partition is None:
            p.produce(topic, v, k)
        else:
            p.produce(topic, v, k, partition)
    if flush:
        assert p.flush(flush_timeout) == 0
    return p


def consume_all(bootstrap, topic, *, until=None, timeout=60.0, idle=None):
    """Every record of ``topic`` from the beginning, as (partition, offset, key, value,
    headers) sorted by (partition, offset). Reads until ``until(records)`` is true, or until
    ``idle`` seconds without a record once at least one arrived, or the timeout.

    The topic's partitions are assigned from the beginning, not subscribed: a subscription's
    consumer group join cost ~3 s per call on Tansu (0.3 s assigned), for a reader that needs
    no group. A topic that does not exist yet is waited for until the timeout (as a
    subscription would), and reads as empty if it never appears."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                  "enable.auto.commit": False})
    out = []
    deadline = time.monotonic() + timeout
    try:
        partitions = _partitions(c, topic, deadline)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        last = time.monotonic()
        while partitions and time.monotonic() < deadline:
            msgs = c.consume(1000, 0.2)
            for m in msgs:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise AssertionError(m.error())
                    continue
                out.append((m.partition(), m.offset(), m.key(), m.value(), m.headers()))
                last = time.monotonic()
            if until is not None and until(out):
                break
            if idle is not None and out and time.monotonic() - last > idle:
                break
    finally:
        c.close()
    out.sort(key=lambda r: (r[0], r[1]))
    return out


def _partitions(consumer, topic, deadline):
    """The partition ids of ``topic``, once the broker knows it; [] if not by ``deadline``."""
    while True:
        left = deadline - time.monotonic()
        try:
            md = consumer.list_topics(topic, timeout=max(0.5, min(5.0, left))).topics.get(topic)
        except KafkaException:
            md = None
        if md is not None and md.error is None and md.partitions:
            return sorted(md.partitions)
        if time.monotonic() >= deadline:
            return []
        time.sleep(0.2)


def committed(bootstrap, group, topic, partitions):
    """{partition: committed offset (or -1001 when none)} of ``group`` on ``topic``."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        for attempt in range(20):
            try:
                tps = c.committed([TopicPartition(topic, p) for p in range(partitions)],
                                  timeout=10)
                return {tp.partition: tp.offset for tp in tps}
            except KafkaException as e:
                # Apache Kafka answers NOT_COORDINATOR (and the like) while it creates or
                # loads __consumer_offsets, the first time a group is asked about.
                err = e.args[0]
                if attempt == 19 or not (err.retriable() or err.code() in _COORDINATOR_MOVING):
                    raise
                time.sleep(0.25)
    finally:
        c.close()


def int64(b):
    return struct.unpack(">q", b)[0]


def word_counts(lines):
    counts = {}
    for line in lines:
        for w in WORD.findall(line.lower()):
            counts[w] = counts.get(w, 0) + 1
    return counts


def latest_counts(records):
    """Highest count seen per word in wordcount output records."""
    out = {}
    for _p, _o, k, v, _h in records:
        w, c = k.decode(), int64(v)
        if c > out.get(w, 0):
            out[w] = c
    return out


def wait_for(pred, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def sample_lines(n, seed=7, vocabulary=40):
    import random

    rnd = random.Random(seed)
    words = [f"w{i:02d}" for i in range(vocabulary)]
    return [" ".join(rnd.choice(words) for _ in range(rnd.randint(1, 8))) for _ in range(n)]


def env_for_subprocess():
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env
