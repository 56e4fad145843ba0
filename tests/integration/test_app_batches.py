"""Batches reach BatchProcessors as real multi-record batches of one partition, offset order."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("confluent_kafka")

from helpers import app_config, committed, produce, wait_for  # noqa: E402

import cstreams as cs  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SEEN = []
LOCK = threading.Lock()


class Recorder(cs.BatchProcessor):
    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        with LOCK:
            SEEN.append((batch.topic, batch.partition, list(batch.offsets), list(batch.values)))
        self.ctx.forward_batch(batch.keys, batch.values, like=batch)


def test_batch_processor_gets_multi_record_partition_batches(broker, topic_factory, tmp_path):
    src, out = topic_factory("in", 4), topic_factory("out", 4)
    n = 10_000
    produce(broker.bootstrap_servers, src,
            [(f"k{i}".encode(), str(i).encode()) for i in range(n)])
    topo = cs.Topology()
    topo.add_source("in", topics=[src])
    topo.add_processor("rec", Recorder, parents=["in"])
    topo.add_sink("out", topic=out, parents=["rec"])
    SEEN.clear()
    app_id = f"batches-{src}"
    app = cs.App(topo, application_id=app_id, bootstrap_servers=broker.bootstrap_servers,
                 state_dir=str(tmp_path), commit_interval_ms=200, config=app_config())
    app.start()
    try:
        wait_for(lambda: sum(len(s[2]) for s in SEEN) >= n, what="every record processed")
        wait_for(lambda: sum(o for o in committed(broker.bootstrap_servers, app_id, src,
                                                  4).values() if o > 0) == n,
                 what="every offset committed")
        metrics = app.metrics()
    finally:
        app.close()
    # Each (poll, partition) group the runtime handed to a task reached process_batch as one
    # call: as many calls as grouped batches, never one per record.
    assert metrics["records_in"] == n
    assert len(SEEN) == metrics["batches_in"], (len(SEEN), metrics["batches_in"])
    assert len(SEEN) <= n // 50, [len(s[2]) for s in SEEN]
    per_partition = {}
    for topic, partition, offsets, _values in SEEN:
        assert topic == src
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
        per_partition.setdefault(partition, []).extend(offsets)
    assert sorted(per_partition) == [0, 1, 2, 3]
    for offsets in per_partition.values():
        assert offsets == list(range(len(offsets)))     # each offset once, in order
    assert sum(len(v) for v in per_partition.values()) == n
    assert sorted(int(v) for s in SEEN for v in s[3]) == list(range(n))
