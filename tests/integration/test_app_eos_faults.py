"""exactly_once_v2 under faults, with the app run as a subprocess through the CLI.

1. SIGKILL mid-transaction while input is still produced, restart with the same instance id
   (its init_transactions() fences the dead producer and aborts its open transaction): the
   RocksDB stores hold exactly the true counts and the committed offsets reach the input end.
2. Two exactly-once instances share the partitions; one stops cleanly (SIGTERM) mid-stream and
   the other takes its tasks over, restoring them from the changelogs: the survivor's stores
   hold exactly the true counts at the end.

The test broker (Tansu) does not hide aborted records from read_committed readers
(TESTING.md). The output topic therefore may show the aborted transaction's records, and the
tests only check its last value per key. The same holds for the changelogs read by
restoration: a SIGKILL that lands between a store flush (changelog records sent into the
transaction) and commit_transaction() would leave aborted changelog records that this broker
replays on restore, which Kafka would not. So test 1 does not kill at a random instant: the
app stops itself inside the stream loop (a wall-clock punctuator that blocks, after a marker
record was processed and its output sent into the open transaction, and before the commit)
and the test kills it there from outside. Under exactly-once the stores send changelog
records only when they flush at commit, so the killed transaction holds sink records only:
exactly the case the broker can show.

3. (Apache Kafka only, marker kafka_semantics: the strict form of 1.) SIGKILLs in both windows
   Tansu cannot show, inside a transaction before the store flush and between the store flush
   (changelog records sent into the transaction) and commit_transaction(), then one at an
   arbitrary instant, and a last run on an empty state directory that restores every store
   from its changelog: the output read with read_committed holds every count of every key
   exactly once and in order, the stores hold the true counts.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid

import pytest

pytest.importorskip("confluent_kafka")

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition  # noqa: E402
from helpers import (  # noqa: E402
    FAST_GROUP,
    committed,
    consume_all,
    env_for_subprocess,
    int64,
    produce,
    wait_for,
)

from cstreams.stores.rocksdb_backend import RocksDBBackend  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.runtime_faults, pytest.mark.timeout(240)]

STORE = "counts"
KEYS = 29
PAUSE_VALUE = "PAUSE-HERE"

TOPOLOGY = '''
import os
import pathlib
import time

import cstreams as cs

SRC, OUT, STORE = {src!r}, {out!r}, {store!r}
PAUSE_VALUE = {pause!r}
MARKER = os.environ.get("EOSF_PAUSE_MARKER")   # set for the run that is to be killed
PAUSE_VALUE = os.environ.get("EOSF_PAUSE_VALUE", PAUSE_VALUE)
# "punctuate": block in the stream loop before the commit's store flush; "commit": block after
# the flush (changelog records in the open transaction), before commit_transaction().
BLOCK_IN = os.environ.get("EOSF_BLOCK_IN", "punctuate")
ARMED = []


def _block():
    pathlib.Path(MARKER).write_text(str(ARMED[0]))
    time.sleep(600)     # until SIGKILL


if MARKER and BLOCK_IN == "commit":
    from cstreams.runtime import transaction as _txn

    _real_commit = _txn.TransactionalProducer.commit

    def _commit(self, offsets, group_metadata):
        if ARMED:
            _block()
        return _real_commit(self, offsets, group_metadata)

    _txn.TransactionalProducer.commit = _commit


class Count(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx
        self.store = ctx.get_store(STORE)
        if MARKER and BLOCK_IN == "punctuate":
            ctx.schedule(5, cs.WALL_CLOCK_TIME, self.maybe_block)

    def process(self, record):
        c = (self.store.get(record.key) or 0) + 1
        self.store.put(record.key, c)
        self.ctx.forward(record.key, c)
        if MARKER and record.value == PAUSE_VALUE:
            ARMED.append(c)

    def maybe_block(self, _now):
        # Runs in the stream loop after the batch holding the marker record was processed
        # (its output sent into the open transaction) and before the next commit.
        if ARMED:
            _block()


def topology():
    topo = cs.Topology()
    topo.add_source("in", topics=[SRC], key_serde=cs.serde.STRING,
                    value_serde=cs.serde.STRING)
    topo.add_store(cs.stores.rocksdb(STORE, key_serde=cs.serde.STRING,
                                     value_serde=cs.serde.INT64))
    topo.add_processor("count", Count, parents=["in"], stores=[STORE])
    topo.add_sink("out", topic=OUT, parents=["count"], key_serde=cs.serde.STRING,
                  value_serde=cs.serde.INT64)
    return topo
'''


def write_topology(tmp_path, src, out):
    name = f"eosfaults_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        TOPOLOGY.format(src=src, out=out, store=STORE, pause=PAUSE_VALUE))
    return f"{name}:topology"


def start_cli(tmp_path, broker, spec, app_id, instance_id, state_dir, log_name, env_extra=None):
    args = [sys.executable, "-m", "cstreams", "run", spec,
            "--application-id", app_id, "--bootstrap-servers", broker.bootstrap_servers,
            "--processing-guarantee", "exactly_once_v2", "--instance-id", instance_id,
            "--state-dir", str(state_dir), "--commit-interval-ms", "200",
            "--progress-interval-ms", "1000"]
    for k, v in FAST_GROUP.items():
        args += ["--config", f"{k}={v}"]
    env = env_for_subprocess()
    env.update(env_extra or {})
    log_path = tmp_path / log_name
    log = open(log_path, "w")
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, log_path


def stop(proc, timeout=30):
    """SIGTERM, then the exit code (a clean close is 0)."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


def kill_all(procs):
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()


def records(start, n):
    return [(f"k{i % KEYS}".encode(), f"v{i}".encode()) for i in range(start, start + n)]


def input_truth(broker, src, partitions, total):
    """({key: true count}, {partition: end offset}, [(partition, offset, key, value)])."""
    recs = consume_all(broker.bootstrap_servers, src, until=lambda r: len(r) >= total,
                       timeout=60)
    assert len(recs) == total
    counts, ends = {}, {p: 0 for p in range(partitions)}
    for p, o, k, _v, _h in recs:
        counts[k.decode()] = counts.get(k.decode(), 0) + 1
        ends[p] = max(ends[p], o + 1)
    assert all(ends.values()), ends      # every partition has input
    return counts, ends, [(p, o, k, v) for p, o, k, v, _h in recs]


def committed_offsets(broker, app_id, src, partitions):
    """{partition: committed offset}, 0 where nothing was committed."""
    return {p: max(o, 0) for p, o in
            committed(broker.bootstrap_servers, app_id, src, partitions).items()}


def store_contents(state_dir, app_id, partitions):
    """{key: count} over every task's RocksDB store in ``state_dir``, read from disk."""
    out = {}
    for p in range(partitions):
        path = state_dir / app_id / f"0_{p}" / STORE
        if not path.exists():
            continue
        db = RocksDBBackend(str(path))
        try:
            for kb, vb in db.range():
                k = kb.decode()
                assert k not in out, f"key {k} in two tasks' stores"
                out[k] = int.from_bytes(vb, "big", signed=True)
        finally:
            db.close()
    return out


def last_per_key(recs):
    """The last value per key in offset order (a key always goes to one partition)."""
    out = {}
    for _p, _o, k, v, _h in recs:     # consume_all sorts by (partition, offset)
        out[k.decode()] = int64(v)
    return out


def count_uncommitted(bootstrap, topic, at_least, timeout=30.0):
    """How many records ``topic`` holds with isolation.level=read_uncommitted (aborted
    transactions included, on any broker): reads until ``at_least`` and 2 s idle."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_uncommitted", **FAST_GROUP})
    c.subscribe([topic])
    n, last = 0, time.monotonic()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for m in c.consume(1000, 0.2):
                if m.error() is None:
                    n += 1
                    last = time.monotonic()
                elif m.error().code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(m.error())
            if n >= at_least and time.monotonic() - last > 2.0:
                break
    finally:
        c.close()
    return n


def wait_uncommitted_record(bootstrap, topic, partitions, key, value, timeout=30.0):
    """Wait until a read_uncommitted reader sees the record (key, value) on ``topic``: output
    of a transaction still open has reached the broker. Partitions are assigned, not
    subscribed: no group join, so the wait is as short as the delivery itself."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "isolation.level": "read_uncommitted"})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for m in c.consume(1000, 0.2):
                if m.error() is None and m.key() == key and m.value() == value:
                    return
        raise AssertionError(f"{topic} never showed {key!r} -> {value!r}")
    finally:
        c.close()


def log_text(path):
    return path.read_text(errors="replace")


def per_key_values(recs):
    """{key: [values in offset order]} (a key always goes to one partition)."""
    out = {}
    for _p, _o, k, v, _h in recs:
        out.setdefault(k.decode(), []).append(int64(v))
    return out


def test_eos_sigkill_mid_transaction_restart_same_instance_exact_state(
        broker, topic_factory, tmp_path, broker_kind):
    parts = 3
    src, out = topic_factory("eosk-in", parts), topic_factory("eosk-out", parts)
    app_id = f"eosk-{src}"
    spec = write_topology(tmp_path, src, out)
    state = tmp_path / "state"
    marker = tmp_path / "paused"
    # The feed goes on for ~6 s after the marker: the kill lands while input still arrives.
    first, chunks, chunk = 300, 40, 30
    total = first + chunks * chunk + 1          # + the marker record
    produce(broker.bootstrap_servers, src, records(0, first))

    def feed():
        for i in range(chunks):
            recs = records(first + i * chunk, chunk)
            if i == 3:
                recs.append((b"k0", PAUSE_VALUE.encode()))
            produce(broker.bootstrap_servers, src, recs)
            time.sleep(0.15)

    feeder = threading.Thread(target=feed, daemon=True)
    procs = []
    t0 = time.monotonic()
    try:
        proc, log1 = start_cli(tmp_path, broker, spec, app_id, "node-1", state, "run1.log",
                               {"EOSF_PAUSE_MARKER": str(marker)})
        procs.append(proc)
        # Some transactions committed before the fault.
        wait_for(lambda: sum(committed_offsets(
            broker, app_id, src, parts).values()) >= first,
            timeout=60, interval=0.3, what="the first input committed")
        feeder.start()
        wait_for(lambda: marker.exists() and marker.read_text(), timeout=60,
                 what="the app to block inside a transaction")
        # The marker record's count, forwarded inside the open transaction, is on the broker
        # before the kill (waited for, not assumed after a sleep).
        armed = int(marker.read_text())
        wait_uncommitted_record(broker.bootstrap_servers, out, parts, b"k0",
                                struct.pack(">q", armed))
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        killed_while_feeding = feeder.is_alive()
        at_kill = committed_offsets(broker, app_id, src, parts)

        proc, log2 = start_cli(tmp_path, broker, spec, app_id, "node-1", state, "run2.log")
        procs.append(proc)
        feeder.join(60)
        truth, ends, inp = input_truth(broker, src, parts, total)
        wait_for(lambda: committed_offsets(broker, app_id, src, parts) == ends,
                 timeout=90, interval=0.3, what="every input offset committed")
        outputs = consume_all(broker.bootstrap_servers, out, timeout=60,
                              until=lambda r: last_per_key(r) == truth)
        assert stop(proc) == 0
        elapsed = time.monotonic() - t0
    finally:
        kill_all(procs)
    assert killed_while_feeding
    # The killed transaction held the marker record's output and was never committed.
    ((mp, mo),) = [(p, o) for p, o, _k, v in inp if v == PAUSE_VALUE.encode()]
    assert 0 <= at_kill[mp] <= mo, (at_kill, mp, mo)
    assert sum(at_kill.values()) >= first
    assert sum(at_kill.values()) < total
    # Both runs used the same transactional.id: the second one's init_transactions() fenced
    # the first and aborted its open transaction.
    tid = f"transactional.id '{app_id}-node-1'"
    assert tid in log_text(log1) and tid in log_text(log2)
    assert "Traceback" not in log_text(log2)
    # Exactly-once state: RocksDB holds the true counts, no more, no less.
    assert store_contents(state, app_id, parts) == truth
    assert committed_offsets(broker, app_id, src, parts) == ends
    assert last_per_key(outputs) == truth
    # Read uncommitted, the output holds one record per input plus the aborted
    # transaction's (the marker record's update at least), which a read_committed reader
    # on Kafka would not see.
    assert count_uncommitted(broker.bootstrap_servers, out, total + 1) > total
    if broker_kind != "tansu":
        # The strict form, where read_committed hides aborted records: every count once.
        assert per_key_values(outputs) == {k: list(range(1, n + 1)) for k, n in truth.items()}
    print(f"sigkill test: {elapsed:.1f} s")


def test_eos_two_instances_one_stops_midstream_survivor_exact_state(
        broker, topic_factory, tmp_path):
    parts = 4
    src, out = topic_factory("eosr-in", parts), topic_factory("eosr-out", parts)
    app_id = f"eosr-{src}"
    spec = write_topology(tmp_path, src, out)
    state_a, state_b = tmp_path / "state-a", tmp_path / "state-b"
    first, chunks, chunk = 400, 20, 30
    total = first + chunks * chunk
    produce(broker.bootstrap_servers, src, records(0, first))

    def feed():
        for i in range(chunks):
            produce(broker.bootstrap_servers, src, records(first + i * chunk, chunk))
            time.sleep(0.15)

    def running_tasks(log):
        return {line.split("task ", 1)[1].split(":")[0]
                for line in log_text(log).splitlines() if ": running" in line and "task " in line}

    feeder = threading.Thread(target=feed, daemon=True)
    procs = []
    t0 = time.monotonic()
    try:
        a, log_a = start_cli(tmp_path, broker, spec, app_id, "a", state_a, "a.log")
        procs.append(a)
        b, log_b = start_cli(tmp_path, broker, spec, app_id, "b", state_b, "b.log")
        procs.append(b)
        wait_for(lambda: running_tasks(log_b) and sum(committed_offsets(
            broker, app_id, src, parts).values()) >= first,
            timeout=60, interval=0.3, what="b running tasks and the first input committed")
        feeder.start()
        time.sleep(1.0)
        b_code = stop(b)
        a_before = len(log_text(log_a))
        stopped_while_feeding = feeder.is_alive()
        feeder.join(60)
        truth, ends, _inp = input_truth(broker, src, parts, total)
        wait_for(lambda: committed_offsets(broker, app_id, src, parts) == ends,
                 timeout=90, interval=0.3, what="every input offset committed")
        outputs = consume_all(broker.bootstrap_servers, out, timeout=60,
                              until=lambda r: last_per_key(r) == truth)
        a_code = stop(a)
        elapsed = time.monotonic() - t0
    finally:
        kill_all(procs)
    assert b_code == 0 and a_code == 0
    assert stopped_while_feeding
    b_tasks = running_tasks(log_b)
    assert b_tasks and len(b_tasks) < parts
    # The survivor took b's tasks over, restoring their stores from the changelogs. Not
    # every task b ever ran: a task b ran briefly may have moved to a in an earlier
    # rebalance, before b stopped (seen once in 4 runs).
    text_a = log_text(log_a)[a_before:]
    taken_over = {f"0_{p}" for p in range(parts)
                  if f"task 0_{p}: restored" in text_a or f"task 0_{p}: restoring" in text_a}
    assert taken_over and taken_over <= b_tasks, (taken_over, b_tasks)
    assert "transaction aborted" not in text_a + log_text(log_b)
    assert store_contents(state_a, app_id, parts) == truth
    assert committed_offsets(broker, app_id, src, parts) == ends
    assert last_per_key(outputs) == truth
    print(f"two-instance test: {elapsed:.1f} s")


@pytest.mark.kafka_semantics
def test_eos_sigkills_in_every_window_read_committed_output_exact(
        broker, topic_factory, tmp_path):
    parts = 3
    src, out = topic_factory("eoss-in", parts), topic_factory("eoss-out", parts)
    app_id = f"eoss-{src}"
    spec = write_topology(tmp_path, src, out)
    state, fresh_state = tmp_path / "state", tmp_path / "state-fresh"
    first, chunks, chunk = 300, 30, 30
    pauses = {4: "PAUSE-1", 12: "PAUSE-2"}
    total = first + chunks * chunk + len(pauses)
    produce(broker.bootstrap_servers, src, records(0, first))

    def feed():
        for i in range(chunks):
            recs = records(first + i * chunk, chunk)
            if i in pauses:       # one key, so one partition: PAUSE-1 comes first
                recs.append((b"k0", pauses[i].encode()))
            produce(broker.bootstrap_servers, src, recs)
            time.sleep(0.15)

    def done():
        return sum(committed_offsets(broker, app_id, src, parts).values())

    def run_until_blocked(n, block_in, value):
        marker = tmp_path / f"blocked-{n}"
        proc, log = start_cli(tmp_path, broker, spec, app_id, "node-1", state, f"run{n}.log",
                              {"EOSF_PAUSE_MARKER": str(marker), "EOSF_BLOCK_IN": block_in,
                               "EOSF_PAUSE_VALUE": value})
        procs.append(proc)
        wait_for(marker.exists, timeout=90, what=f"run {n} to block ({block_in})")
        time.sleep(0.5)           # the open transaction's records reach the broker
        assert proc.poll() is None, log_text(log)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        return log

    feeder = threading.Thread(target=feed, daemon=True)
    procs = []
    try:
        proc, _log = start_cli(tmp_path, broker, spec, app_id, "node-1", state, "run0.log")
        procs.append(proc)
        wait_for(lambda: done() >= first, timeout=60, interval=0.3,
                 what="the first input committed")
        os.kill(proc.pid, signal.SIGKILL)          # between commits, at no chosen point
        proc.wait(10)
        feeder.start()
        log1 = run_until_blocked(1, "commit", pauses[4])   # flushed, not committed
        at_kill1 = done()
        log2 = run_until_blocked(2, "punctuate", pauses[12])
        feeder.join(60)
        truth, ends, _inp = input_truth(broker, src, parts, total)
        # The last run starts from an empty state directory: every store is restored from
        # its changelog, which holds the aborted transactions' records too.
        proc, log3 = start_cli(tmp_path, broker, spec, app_id, "node-1", fresh_state,
                               "run3.log")
        procs.append(proc)
        wait_for(lambda: committed_offsets(broker, app_id, src, parts) == ends,
                 timeout=120, interval=0.3, what="every input offset committed")
        outputs = consume_all(broker.bootstrap_servers, out, timeout=60,
                              until=lambda r: last_per_key(r) == truth)
        assert stop(proc) == 0
    finally:
        kill_all(procs)
    assert at_kill1 < total
    for log in (log1, log2):
        assert "Traceback" not in log_text(log)
    assert "Traceback" not in log_text(log3)
    # Read with read_committed (the consumer's default), every count of every key appears
    # exactly once, in order: nothing of the three killed transactions, nothing missing.
    assert per_key_values(outputs) == {k: list(range(1, n + 1)) for k, n in truth.items()}
    assert len(outputs) == total
    assert store_contents(fresh_state, app_id, parts) == truth
    assert committed_offsets(broker, app_id, src, parts) == ends
    # The faults did leave aborted records behind, which read_committed readers skipped.
    assert count_uncommitted(broker.bootstrap_servers, out, total + 1) > total
