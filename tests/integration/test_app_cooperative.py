"""Cooperative (incremental) rebalancing over the broker: when a second instance joins, the
partitions that stay on the first keep being processed and their tasks are never closed;
only the tasks that move are committed and closed. The same run with eager rebalancing
(partition.assignment.strategy=range) closes every task. Input is fed throughout and every
record is counted: exactly as the truth says when every offset commit went through; a commit
the group refused mid-rebalance (REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION, which Apache Kafka
answers to commits made while a cooperative rebalance is under way) leaves the offsets pending,
and the member that takes a partition over reprocesses from the last committed offset on top
of the restored changelog: at-least-once duplicates, allowed then and only then.

The pause of the staying partitions (the longest gap between two records processed on them
from the join on) is logged for both strategies: a measurement, never asserted
(bench/RESULTS.md, "Rebalancing")."""

from __future__ import annotations

import collections
import logging
import threading
import time

import pytest

pytest.importorskip("confluent_kafka")

from confluent_kafka import Producer  # noqa: E402
from helpers import app_config, consume_all, int64, wait_for  # noqa: E402

import cstreams as cs  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.runtime_faults, pytest.mark.timeout(240)]

log = logging.getLogger("test.cooperative")
PARTITIONS = 4

# (application_id, instance name) -> [(partition, monotonic time)] of processed records
SEEN = collections.defaultdict(list)


def counting_topology(src, out, app_id, instance):
    seen = SEEN[(app_id, instance)]

    class Count(cs.Processor):
        def init(self, ctx):
            self.ctx, self.store = ctx, ctx.get_store("counts")

        def process(self, record):
            seen.append((record.partition, time.monotonic()))
            n = (self.store.get(record.key) or 0) + 1
            self.store.put(record.key, n)
            self.ctx.forward(record.key, n)

    topo = cs.Topology()
    topo.add_source("in", topics=[src], key_serde=cs.serde.STRING, value_serde=cs.serde.STRING)
    topo.add_processor("count", Count, parents=["in"])
    topo.add_store(cs.stores.rocksdb("counts", cs.serde.STRING, cs.serde.INT64), ["count"])
    topo.add_sink("out", topic=out, parents=["count"], key_serde=cs.serde.STRING,
                  value_serde=cs.serde.INT64)
    return topo


def running(app):
    return {t for t, m in app.metrics()["tasks"].items() if m["state"] == "running"}


@pytest.mark.parametrize("strategy", ["cooperative-sticky", "range"])
def test_staying_partitions_keep_processing_while_others_move(broker, topic_factory,
                                                              tmp_path, strategy):
    src, out = topic_factory("in", PARTITIONS), topic_factory("out", PARTITIONS)
    app_id = f"coop-{strategy}-{src}"
    sent = collections.Counter()
    stop = threading.Event()

    def feed():
        # Idempotent: a produce retried after a lost response must not write an input record
        # twice, or the app counts it twice and the truth below is one short.
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5,
                             "enable.idempotence": True})
        i = 0
        while not stop.is_set():
            for p in range(PARTITIONS):
                key = f"p{p}-k{i % 5}"
                producer.produce(src, b"x", key.encode(), p)
                sent[key] += 1
            producer.poll(0)
            i += 1
            time.sleep(0.02)
        assert producer.flush(30) == 0

    def new_app(name):
        return cs.App(counting_topology(src, out, app_id, name), application_id=app_id,
                      bootstrap_servers=broker.bootstrap_servers,
                      state_dir=str(tmp_path / name), commit_interval_ms=500,
                      config=app_config(**{"partition.assignment.strategy": strategy}))

    a = new_app("a").start()
    b = None
    feeder = threading.Thread(target=feed)
    try:
        wait_for(lambda: len(running(a)) == PARTITIONS, timeout=60, what="a running all")
        feeder.start()
        time.sleep(2.0)
        joined_at = time.monotonic()
        b = new_app("b").start()
        wait_for(lambda: running(b) and len(running(a) | running(b)) == PARTITIONS,
                 timeout=90, what="the tasks shared by both instances")
        time.sleep(2.0)
        stop.set()
        feeder.join()
        truth = dict(sent)
        # Until the counts match, or nothing new for 10 s (an over-count never matches).
        recs = consume_all(broker.bootstrap_servers, out, timeout=90, idle=10,
                           until=lambda r: latest(r) == truth)
        refused = a.metrics()["commits_failed"] + b.metrics()["commits_failed"]
        stayed = running(a)
        closed_on_a = set(a._stream.tasks.closed_task_metrics)
    finally:
        stop.set()
        if feeder.is_alive():
            feeder.join()
        a.close()
        if b is not None:
            b.close()
    got = latest(recs)
    assert set(got) == set(truth)
    lost = {k: (got[k], n) for k, n in truth.items() if got[k] < n}
    assert not lost, f"records lost (got, sent): {lost}"
    extra = {k: got[k] - n for k, n in truth.items() if got[k] > n}
    if extra:
        log.warning("rebalance (%s): at-least-once duplicates %s after %d refused commit(s)",
                    strategy, extra, refused)
    assert not extra or refused, (
        f"counted twice although every offset commit went through: {extra}")
    assert stayed and len(stayed) < PARTITIONS
    moved = {f"0_{p}" for p in range(PARTITIONS)} - stayed
    if strategy == "cooperative-sticky":
        # Only the tasks that left were closed; the staying ones ran throughout.
        assert closed_on_a == moved
    else:
        assert closed_on_a == {f"0_{p}" for p in range(PARTITIONS)}
    staying_partitions = {int(t.split("_")[1]) for t in stayed}
    pause = max_gap(SEEN[(app_id, "a")], staying_partitions, joined_at)
    log.warning("rebalance (%s): longest pause of the partitions that stayed %s: %.2f s",
                strategy, sorted(staying_partitions), pause)
    print(f"\nrebalance ({strategy}): longest pause of staying partitions "
          f"{sorted(staying_partitions)}: {pause:.2f} s")


def latest(records):
    out = {}
    for _p, _o, k, v, _h in records:
        out[k.decode()] = int64(v)
    return out


def max_gap(seen, partitions, since):
    gaps = []
    for p in partitions:
        times = sorted(t for q, t in seen if q == p and t >= since - 1.0)
        gaps += [b - a for a, b in zip(times, times[1:])]
    return max(gaps) if gaps else float("nan")
