"""The embedded Tansu test broker starts, serves produce/consume and stops."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import pytest

try:
    from cstreams.devbroker import DevBroker
except ImportError:  # repo root not on sys.path (plain `pytest` run)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from cstreams.devbroker import DevBroker

pytest.importorskip("confluent_kafka")

# The launcher itself (cstreams.devbroker, re-exported as testbrokers.tansu): only in the
# Tansu session, the other sessions need no second broker.
pytestmark = pytest.mark.tansu_launcher

N = 100
PARTITIONS = 3


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.integration
def test_devbroker_roundtrip_and_stop():
    from confluent_kafka import Consumer, KafkaError, Producer

    broker = DevBroker()
    broker.start(timeout=30)
    try:
        assert broker.pid and broker.port
        assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
        assert os.path.exists(broker.log_path)

        topic = f"devbroker-{uuid.uuid4().hex[:8]}"
        broker.create_topics([topic], partitions=PARTITIONS)

        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5})
        for i in range(N):
            producer.produce(topic, key=f"key-{i:03d}".encode(), value=str(i).encode())
        assert producer.flush(30) == 0

        consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap_servers,
                "group.id": f"g-{topic}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 6000,
                "max.poll.interval.ms": 10000,
            }
        )
        consumer.subscribe([topic])
        per_partition: dict[int, list[int]] = {}
        seen = 0
        deadline = time.monotonic() + 60
        try:
            while seen < N and time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=500, timeout=1.0):
                    if msg.error():
                        assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                        continue
                    i = int(msg.value())
                    assert msg.key() == f"key-{i:03d}".encode()
                    per_partition.setdefault(msg.partition(), []).append(i)
                    seen += 1
        finally:
            consumer.close()

        all_values = sorted(v for vs in per_partition.values() for v in vs)
        assert all_values == list(range(N)), "missing or duplicated records"
        assert set(per_partition) <= set(range(PARTITIONS))
        assert len(per_partition) > 1, "keys should spread over the partitions"
        for part, values in per_partition.items():
            assert values == sorted(values), f"partition {part} out of produce order"
    finally:
        pid = broker.pid
        broker.stop()

    assert not broker.running
    assert _pid_gone(pid)


@pytest.mark.integration
def test_devbroker_context_manager_gives_distinct_ports():
    with DevBroker() as a, DevBroker() as b:
        assert a.port != b.port
        assert a.pid != b.pid
        pids = (a.pid, b.pid)
    assert all(_pid_gone(p) for p in pids)


@pytest.mark.integration
def test_make_demo_runs_on_the_embedded_broker():
    """`make demo`: examples/wordcount_demo.py starts Tansu through cstreams.devbroker (no
    Java, no testbrokers/), checks every count against the input itself (it exits non-zero on
    a mismatch) and stops the broker by PID."""
    import re
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(repo / "examples" / "wordcount_demo.py")],
                          cwd=repo, capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "every count matches the input." in proc.stdout, out[-3000:]
    m = re.search(r"broker: Tansu at 127\.0\.0\.1:\d+ \(pid (\d+)\)", proc.stdout)
    assert m, out[-3000:]
    assert _pid_gone(int(m.group(1)))
