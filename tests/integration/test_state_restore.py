"""Persistent state across restarts: the RocksDB store, its changelog and the checkpoint.

One counting app (key -> count in a RocksDB store with a changelog) is run, stopped and run
again on the same input topic with more records in between, and the state directory is
treated as an operator might: kept, deleted, or with a corrupted checkpoint file. Every run
must end with exactly the true counts, and the restarts must restore what they say.
"""

from __future__ import annotations

import logging
import shutil

import pytest

pytest.importorskip("confluent_kafka")

from helpers import app_config, consume_all, int64, latest_counts, produce, wait_for  # noqa: E402

import cstreams as cs  # noqa: E402
from cstreams.internals.state.checkpoint import checkpoint_path, read_checkpoint  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PARTITIONS = 2
KEYS = [f"user-{i}" for i in range(30)]


def counting_topology(src, out):
    S, I64 = cs.serde.STRING, cs.serde.INT64
    t = cs.Topology()
    t.add_source("in", topics=[src], key_serde=S, value_serde=S)
    t.add_store(cs.stores.rocksdb("counts", key_serde=S, value_serde=I64))
    t.add_processor("count", cs.processors.count("counts"), parents=["in"], stores=["counts"])
    t.add_sink("out", topic=out, parents=["count"], key_serde=S, value_serde=I64)
    return t


class Run:
    """Runs the app until its output shows ``truth`` for every key, then closes it."""

    def __init__(self, broker, src, out, app_id, state_dir):
        self.broker, self.src, self.out = broker, src, out
        self.app_id, self.state_dir = app_id, state_dir

    def __call__(self, truth):
        app = cs.App(counting_topology(self.src, self.out), application_id=self.app_id,
                     bootstrap_servers=self.broker.bootstrap_servers,
                     state_dir=str(self.state_dir), commit_interval_ms=300, config=app_config())
        app.start()
        try:
            wait_for(lambda: latest_counts(self.output()) == truth, timeout=90,
                     what=f"output counts {truth}")
            wait_for(lambda: app.metrics()["commits"] >= 1, what="a commit")
            metrics = app.metrics()
        finally:
            app.close()
        return metrics

    def output(self):
        return consume_all(self.broker.bootstrap_servers, self.out, idle=1.0, timeout=20)


def counting_app(broker, topic_factory, tmp_path):
    """(input topic, application id, state directory, its Run, the store's changelog)."""
    src, out = topic_factory("events", PARTITIONS), topic_factory("counts", PARTITIONS)
    app_id = f"state-{src}"
    state = tmp_path / "state"
    return src, app_id, state, Run(broker, src, out, app_id, state), \
        f"{app_id}-counts-changelog"


def feed(broker, src, n, truth):
    records = []
    for i in range(n):
        key = KEYS[(i * 7) % len(KEYS)]
        truth[key] = truth.get(key, 0) + 1
        records.append((key.encode(), b"x"))
    produce(broker.bootstrap_servers, src, records)


def store_counts(state_dir, app_id):
    """Every (key, count) in the RocksDB stores on disk, read with the backend itself."""
    from cstreams.stores.rocksdb_backend import RocksDBBackend

    counts = {}
    for p in range(PARTITIONS):
        path = state_dir / app_id / f"0_{p}" / "counts"
        if not path.exists():
            continue
        backend = RocksDBBackend(str(path))
        try:
            for kb, vb in backend.range():
                counts[kb.decode()] = int64(vb)
        finally:
            backend.close()
    return counts


def test_restart_keeps_counts_and_damaged_state_is_restored_in_full(
        broker, topic_factory, tmp_path, caplog):
    src, app_id, state, run, changelog = counting_app(broker, topic_factory, tmp_path)
    truth = {}

    # 1. First run: counts from nothing; a clean close leaves a checkpoint per task.
    feed(broker, src, 300, truth)
    m = run(truth)
    assert m["records_restored"] == 0
    assert store_counts(state, app_id) == truth
    for p in range(PARTITIONS):
        assert read_checkpoint(str(state / app_id / f"0_{p}"))[(changelog, p)] > 0

    # 2. Clean restart: nothing to restore, counting goes on from the stored counts.
    feed(broker, src, 200, truth)
    m = run(truth)
    assert m["records_restored"] == 0
    assert store_counts(state, app_id) == truth

    # 3. A task's local directory is deleted: that task restores its store in full from the
    #    changelog (every key it holds, at least once), and the counts stay exact.
    keys_of_task0 = set(store_counts(state, app_id)) - _keys_of(state, app_id, 1)
    shutil.rmtree(state / app_id / "0_0")
    feed(broker, src, 100, truth)
    m = run(truth)
    assert m["records_restored"] >= len(keys_of_task0) > 0
    assert store_counts(state, app_id) == truth

    # 4. A corrupt checkpoint is ignored with a warning naming the file: full restore of that
    #    task, exact counts.
    cp = checkpoint_path(str(state / app_id / "0_1"))
    with open(cp, "w") as f:
        f.write("{not json")
    feed(broker, src, 100, truth)
    with caplog.at_level(logging.WARNING):
        m = run(truth)
    assert any(cp in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert m["records_restored"] >= len(_keys_of(state, app_id, 1)) > 0
    assert store_counts(state, app_id) == truth

    # Across all runs, every key's counts were emitted 1..n in order (nothing lost, nothing
    # counted twice, since every run closed cleanly).
    per_key = {}
    for _p, _o, k, v, _h in run.output():
        per_key.setdefault(k.decode(), []).append(int64(v))
    for key, n in truth.items():
        assert per_key[key] == list(range(1, n + 1)), key


# Tansu answers a fetch past the log end with no error: the checkpoint cannot be caught.
@pytest.mark.kafka_semantics
def test_checkpoint_past_the_changelog_end_wipes_the_store_before_restoring(
        broker, topic_factory, tmp_path, caplog):
    """A checkpoint that points past the end of its changelog (the changelog was deleted and
    created again, or truncated) means the local store is not that changelog's state: it is
    wiped and restored from the beginning, not replayed onto (which would keep keys the
    changelog no longer has)."""
    from cstreams.internals.state.checkpoint import write_checkpoint
    from cstreams.stores.rocksdb_backend import RocksDBBackend

    src, app_id, state, run, changelog = counting_app(broker, topic_factory, tmp_path)
    truth = {}
    feed(broker, src, 300, truth)
    run(truth)
    task_dir = state / app_id / "0_1"
    # What a store holds that its changelog does not: a key only on disk, and a checkpoint
    # past the changelog's end.
    backend = RocksDBBackend(str(task_dir / "counts"))
    try:
        backend.write_batch([b"ghost"], [(99).to_bytes(8, "big")])
        backend.persist()
    finally:
        backend.close()
    write_checkpoint(str(task_dir), {(changelog, 1): 1_000_000})
    feed(broker, src, 100, truth)
    with caplog.at_level(logging.WARNING, logger="cstreams"):
        m = run(truth)
    assert store_counts(state, app_id) == truth, "the store kept a key its changelog lacks"
    assert m["records_restored"] >= len(_keys_of(state, app_id, 1)) > 0
    assert any("the changelog does not have" in r.getMessage() and "1000000" in r.getMessage()
               for r in caplog.records)


def _keys_of(state_dir, app_id, partition):
    from cstreams.stores.rocksdb_backend import RocksDBBackend

    backend = RocksDBBackend(str(state_dir / app_id / f"0_{partition}" / "counts"))
    try:
        return {kb.decode() for kb, _ in backend.range()}
    finally:
        backend.close()


def test_sigkill_with_nothing_in_flight_then_restart_gives_exact_counts(
        broker, topic_factory, tmp_path, broker_kind):
    """Killed after its last commit covered every input record: the restart repairs the local
    state from the changelog (the checkpoint may be older) and counts on exactly."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from helpers import FAST_GROUP, committed, env_for_subprocess

    src, out = topic_factory("events", PARTITIONS), topic_factory("counts", PARTITIONS)
    app_id = f"kill-{src}"
    state = tmp_path / "state"
    (tmp_path / "killtopo.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})\n"
        "from test_state_restore import counting_topology\n"
        f"topology = counting_topology({src!r}, {out!r})\n")

    def start():
        args = [sys.executable, "-m", "cstreams", "run", "killtopo:topology",
                "--application-id", app_id, "--bootstrap-servers", broker.bootstrap_servers,
                "--state-dir", str(state), "--commit-interval-ms", "200"]
        for k, v in FAST_GROUP.items():
            args += ["--config", f"{k}={v}"]
        log = open(tmp_path / f"app-{time.monotonic_ns()}.log", "w")
        return subprocess.Popen(args, cwd=tmp_path, env=env_for_subprocess(), stdout=log,
                                stderr=subprocess.STDOUT)

    truth = {}
    feed(broker, src, 400, truth)
    proc = start()
    try:
        # Every input record is committed (so its output and changelog were acknowledged).
        total = sum(truth.values())
        wait_for(lambda: sum(max(o, 0) for o in committed(
            broker.bootstrap_servers, app_id, src, PARTITIONS).values()) == total,
            timeout=90, what="every input offset committed")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        feed(broker, src, 200, truth)
        proc = start()
        wait_for(lambda: latest_counts(consume_all(broker.bootstrap_servers, out, idle=1.0,
                                                   timeout=20)) == truth,
                 timeout=90, what="output counts equal to the truth")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert store_counts(state, app_id) == truth
    per_key = {}
    for _p, _o, k, v, _h in consume_all(broker.bootstrap_servers, out, idle=1.0, timeout=20):
        per_key.setdefault(k.decode(), []).append(int64(v))
    for key, n in truth.items():
        assert per_key[key] == list(range(1, n + 1)), key
    # Every input record committed (Tansu's high watermarks under-report, so the total of the
    # committed offsets is compared with the number of records produced; on Apache Kafka each
    # committed offset is also the partition's high watermark).
    offsets = committed(broker.bootstrap_servers, app_id, src, PARTITIONS)
    assert sum(offsets.values()) == sum(truth.values())
    if broker_kind != "tansu":
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "hw"})
        try:
            for p, o in offsets.items():
                assert c.get_watermark_offsets(TopicPartition(src, p), timeout=10)[1] == o
        finally:
            c.close()


def _changelog_view(bootstrap, changelog):
    """({partition: high watermark}, [(partition, offset, key, value, headers)]): the
    changelog's end offsets and what a reader finds from the beginning."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        highs = {p: c.get_watermark_offsets(TopicPartition(changelog, p), timeout=10)[1]
                 for p in range(PARTITIONS)}
    finally:
        c.close()
    recs = consume_all(bootstrap, changelog, until=lambda r: len(r) and all(
        any(x[0] == p and x[1] == highs[p] - 1 for x in r) for p in highs if highs[p]),
        timeout=30)
    return highs, recs


@pytest.mark.kafka_semantics
def test_changelog_compacted_then_full_restore_reaches_the_high_watermark(
        broker, topic_factory, tmp_path):
    """Apache Kafka only (Tansu neither compacts nor reports true high watermarks): the
    changelog of a store updated over several runs is compacted by the broker (fewer records
    than offsets, the latest value of every key kept), and a store restored in full from that
    compacted changelog holds exactly the true counts with its checkpoint at the watermark."""
    src, out = topic_factory("events", PARTITIONS), topic_factory("counts", PARTITIONS)
    app_id = f"compact-{src}"
    changelog = f"{app_id}-counts-changelog"
    run = Run(broker, src, out, app_id, tmp_path / "state")
    truth = {}
    for _ in range(4):            # runs more than log.roll.ms apart: segments roll between
        feed(broker, src, 300, truth)
        run(truth)

    def compacted():
        highs, recs = _changelog_view(broker.bootstrap_servers, changelog)
        latest = {k.decode(): int64(v) for _p, _o, k, v, _h in recs}
        return len(recs) < sum(highs.values()) and latest == truth

    wait_for(compacted, timeout=90, interval=1.0, what="the broker to compact the changelog")
    highs, recs = _changelog_view(broker.bootstrap_servers, changelog)
    assert len({k for _p, _o, k, _v, _h in recs}) == len(truth)

    # Everything local is lost: the next run restores each store from the compacted changelog.
    fresh = tmp_path / "fresh"
    run = Run(broker, src, out, app_id, fresh)
    feed(broker, src, 30, truth)
    m = run(truth)
    assert 0 < m["records_restored"] < sum(highs.values())
    assert store_counts(fresh, app_id) == truth
    # The restore read to the end: each checkpoint names the changelog's end offset.
    highs_after, _recs = _changelog_view(broker.bootstrap_servers, changelog)
    for p in range(PARTITIONS):
        assert read_checkpoint(str(fresh / app_id / f"0_{p}"))[(changelog, p)] == highs_after[p]
