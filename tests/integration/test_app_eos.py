"""exactly_once_v2 against the real broker.

Tansu, the default test broker, does not hide aborted records from read_committed readers
(TESTING.md), so these tests check what each transaction holds and the committed state (store
contents, committed consumer offsets), not the read_committed filter; the read_committed check
runs on Apache Kafka in test_app_eos_faults.py (kafka_semantics). The app's producer is
wrapped in a recording proxy that forwards every call to the real confluent-kafka producer: the
broker and the transactions stay real.
"""

from __future__ import annotations

import pytest

pytest.importorskip("confluent_kafka")

from confluent_kafka import KafkaError, KafkaException, Producer  # noqa: E402
from helpers import app_config, committed, consume_all, produce, wait_for  # noqa: E402

import cstreams as cs  # noqa: E402
from cstreams.errors import ProducerFencedError  # noqa: E402
from cstreams.internals import kafka as cs_kafka  # noqa: E402
from cstreams.internals.state.checkpoint import read_checkpoint  # noqa: E402
from cstreams.stores.rocksdb_backend import RocksDBBackend  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PARTITIONS = 2
STORE = "counts"
# When "left" is set: process() calls count it down and the one that reaches 0 raises, once.
FAIL_ONCE = {"left": None}


class CountWithOffsets(cs.Processor):
    """Per-key count; each update names the input record: "count|partition|offset"."""

    def init(self, ctx):
        self.ctx = ctx
        self.store = ctx.get_store(STORE)

    def process(self, record):
        left = FAIL_ONCE["left"]
        if left is not None:
            FAIL_ONCE["left"] = left - 1
            if left <= 1:
                FAIL_ONCE["left"] = None
                raise RuntimeError("injected processing failure")
        c = (self.store.get(record.key) or 0) + 1
        self.store.put(record.key, c)
        self.ctx.forward(record.key, f"{c}|{record.partition}|{record.offset}")


def topology(src, out):
    topo = cs.Topology()
    topo.add_source("in", topics=[src], key_serde=cs.serde.STRING, value_serde=cs.serde.STRING)
    topo.add_store(cs.stores.rocksdb(STORE, key_serde=cs.serde.STRING,
                                     value_serde=cs.serde.INT64))
    topo.add_processor("count", CountWithOffsets, parents=["in"], stores=[STORE])
    topo.add_sink("out", topic=out, parents=["count"], key_serde=cs.serde.STRING,
                  value_serde=cs.serde.STRING)
    return topo


class RecordingProducer:
    """Forwards every call to the real producer and records the transactional ones."""

    def __init__(self, real, fail_commit_at=None):
        self._real = real
        self.calls = []
        self.fail_commit_at = fail_commit_at    # the n-th commit_transaction raises once
        self.on_failed_commit = None
        self._commits = 0

    def __getattr__(self, name):
        return getattr(self._real, name)

    def produce(self, topic, value=None, key=None, partition=-1, *args, **kw):
        # confluent-kafka's order: on_delivery, callback, timestamp, headers may follow
        # positionally (the runtime's produce loop passes them so).
        self.calls.append(("produce", topic, key, value, partition))
        return self._real.produce(topic, value, key, partition, *args, **kw)

    def begin_transaction(self, *a):
        self.calls.append(("begin",))
        return self._real.begin_transaction(*a)

    def send_offsets_to_transaction(self, offsets, metadata, *a):
        self.calls.append(("offsets", {(tp.topic, tp.partition): tp.offset for tp in offsets}))
        return self._real.send_offsets_to_transaction(offsets, metadata, *a)

    def commit_transaction(self, *a):
        self._commits += 1
        if self._commits == self.fail_commit_at:
            if self.on_failed_commit is not None:
                self.on_failed_commit()
            self.calls.append(("commit-failed",))
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT_QUEUE,
                                            "injected commit failure",
                                            txn_requires_abort=True))
        r = self._real.commit_transaction(*a)
        self.calls.append(("commit",))
        return r

    def abort_transaction(self, *a):
        r = self._real.abort_transaction(*a)
        self.calls.append(("abort",))
        return r

    def transactions(self):
        """[(outcome, [calls])] per transaction, in order."""
        out, cur = [], None
        for c in self.calls:
            if c[0] == "begin":
                cur = [c]
            elif c[0] in ("commit", "abort"):
                out.append((c[0], cur))
                cur = None
            elif cur is not None:
                cur.append(c)
        return out


@pytest.fixture
def recorder(monkeypatch):
    made = []
    real_make = cs_kafka.make_producer

    def make(conf):
        rec = RecordingProducer(real_make(conf))
        made.append(rec)
        return rec

    monkeypatch.setattr(cs_kafka, "make_producer", make)
    FAIL_ONCE["left"] = None
    yield made
    FAIL_ONCE["left"] = None


def feed(broker, src, n, start=0, keys=7):
    recs = [(f"k{i % keys}".encode(), f"v{i}".encode()) for i in range(start, start + n)]
    produce(broker.bootstrap_servers, src, recs)
    return recs


def input_by_partition(broker, src, total):
    """{partition: [key, ...] in offset order} of the input topic."""
    recs = consume_all(broker.bootstrap_servers, src, until=lambda r: len(r) >= total,
                       timeout=60)
    by = {}
    for p, _o, k, _v, _h in recs:
        by.setdefault(p, []).append(k.decode())
    return by


def counts_of(by_partition, upto=None):
    out = {}
    for p, keys in by_partition.items():
        for k in keys[: None if upto is None else upto.get(p, 0)]:
            out[k] = out.get(k, 0) + 1
    return out


def store_contents(state_dir, app_id):
    """{key: count} of every task's RocksDB store, read from disk after the app closed."""
    out = {}
    for p in range(PARTITIONS):
        path = state_dir / app_id / f"0_{p}" / STORE
        if not path.exists():
            continue
        db = RocksDBBackend(str(path))
        try:
            for kb, vb in db.range():
                out[kb.decode()] = int.from_bytes(vb, "big", signed=True)
        finally:
            db.close()
    return out


def make_app(broker, src, out, app_id, state_dir, **kw):
    return cs.App(topology(src, out), application_id=app_id,
                  bootstrap_servers=broker.bootstrap_servers, state_dir=str(state_dir),
                  processing_guarantee="exactly_once_v2", config=app_config(**kw.pop("config",
                                                                                    {})),
                  **kw)


def wait_committed(broker, app_id, src, total, timeout=90):
    wait_for(lambda: sum(max(o, 0) for o in
                         committed(broker.bootstrap_servers, app_id, src, PARTITIONS).values())
             >= total, timeout=timeout, interval=0.3, what=f"{total} input offsets committed")


def sink_updates(txn_calls, out):
    """[(key, count, partition, offset)] of the sink records in one transaction."""
    res = []
    for c in txn_calls:
        if c[0] == "produce" and c[1] == out:
            count, p, o = c[3].decode().split("|")
            res.append((c[2].decode(), int(count), int(p), int(o)))
    return res


def check_committed_transactions(rec, src, out, changelog):
    """Every committed transaction: begin, its sink records, its changelog records, the
    offsets after its records, commit. Returns the sink updates of the committed ones."""
    updates = []
    for outcome, calls in rec.transactions():
        if outcome != "commit":
            continue
        kinds = [c[0] for c in calls]
        assert kinds[0] == "begin" and kinds[-1] == "offsets", kinds[-3:]
        sink = sink_updates(calls, out)
        log = [(c[2].decode(), int.from_bytes(c[3], "big", signed=True))
               for c in calls if c[0] == "produce" and c[1] == changelog]
        topics = [c[1] for c in calls if c[0] == "produce"]
        # Sink records first (as processed), the store flush's changelog records last.
        assert topics == [out] * len(sink) + [changelog] * len(log)
        # The offsets sent are the positions right after this transaction's records.
        after = {}
        for _k, _c, p, o in sink:
            after[(src, p)] = max(after.get((src, p), 0), o + 1)
        assert calls[-1][1] == after
        # The changelog holds each updated key once, with its last count in the transaction.
        last = {}
        for k, c, _p, _o in sink:
            last[k] = c
        assert sorted(log) == sorted(last.items())
        updates += sink
    return updates


def assert_every_update_once(updates, by_partition):
    truth = counts_of(by_partition)
    per_key = {}
    for k, c, _p, _o in updates:
        per_key.setdefault(k, []).append(c)
    assert set(per_key) == set(truth)
    for k, cs_ in per_key.items():
        assert cs_ == list(range(1, truth[k] + 1)), k


def test_eos_no_fault_every_update_once_and_each_transaction_holds_its_interval(
        broker, topic_factory, tmp_path, recorder):
    src, out = topic_factory("eos-in", PARTITIONS), topic_factory("eos-out", PARTITIONS)
    app_id = f"eos-{src}"
    feed(broker, src, 300)
    app = make_app(broker, src, out, app_id, tmp_path)
    assert app.commit_interval_ms == 100
    app.start()
    try:
        wait_committed(broker, app_id, src, 300)
        feed(broker, src, 200, start=300)
        wait_committed(broker, app_id, src, 500)
    finally:
        app.close()
    (rec,) = recorder
    by_partition = input_by_partition(broker, src, 500)
    changelog = f"{app_id}-{STORE}-changelog"
    txns = rec.transactions()
    assert txns and all(outcome == "commit" for outcome, _ in txns)
    assert len(txns) >= 2
    updates = check_committed_transactions(rec, src, out, changelog)
    assert_every_update_once(updates, by_partition)
    # What the sink topic holds (no transaction aborted): each update exactly once.
    got = consume_all(broker.bootstrap_servers, out, until=lambda r: len(r) >= 500, idle=2)
    assert sorted(v for *_x, v, _h in got) == sorted(
        f"{c}|{p}|{o}".encode() for _k, c, p, o in updates)
    assert store_contents(tmp_path, app_id) == counts_of(by_partition)
    assert committed(broker.bootstrap_servers, app_id, src, PARTITIONS) == {
        p: len(keys) for p, keys in by_partition.items()}
    # Checkpoints were written after commits, at the changelog's committed end.
    for p in range(PARTITIONS):
        cp = read_checkpoint(tmp_path / app_id / f"0_{p}")
        assert cp[(changelog, p)] > 0
    m = app.metrics()
    assert m["transactions_aborted"] == 0 and m["commits"] == len(txns)


def assert_read_committed_exact(broker, src, out, total):
    """Apache Kafka only (Tansu shows aborted records to read_committed readers): the output
    read with read_committed (librdkafka's default isolation.level) holds, per key, the
    counts 1..n exactly once and in order, the i-th naming the i-th input record of that key."""
    inputs = consume_all(broker.bootstrap_servers, src, until=lambda r: len(r) >= total,
                         timeout=60)
    expected = {}
    for p, o, k, _v, _h in inputs:
        mine = expected.setdefault(k.decode(), [])
        mine.append((len(mine) + 1, p, o))
    got = {}
    for _p, _o, k, v, _h in consume_all(broker.bootstrap_servers, out, timeout=60, idle=3):
        count, p, o = v.decode().split("|")
        got.setdefault(k.decode(), []).append((int(count), int(p), int(o)))
    assert got == expected


def test_eos_failed_commit_aborts_rewinds_and_counts_stay_exact(
        broker, broker_kind, topic_factory, tmp_path, monkeypatch):
    src, out = topic_factory("eos-in", PARTITIONS), topic_factory("eos-out", PARTITIONS)
    app_id = f"eos-{src}"
    changelog = f"{app_id}-{STORE}-changelog"
    made = []
    real_make = cs_kafka.make_producer
    snapshot = {}

    def make(conf):
        rec = RecordingProducer(real_make(conf), fail_commit_at=2)
        made.append(rec)
        return rec

    monkeypatch.setattr(cs_kafka, "make_producer", make)
    feed(broker, src, 200)
    app = make_app(broker, src, out, app_id, tmp_path)

    def at_failed_commit():
        # Inside the failing commit: the stores hold the transaction's writes as pending,
        # their backends only what the committed transactions wrote.
        stores = [mt.task.stores[STORE] for mt in app._stream.tasks.running()]
        snapshot["pending"] = sum(s.pending_count() for s in stores)
        snapshot["backend"] = {kb.decode(): int.from_bytes(vb, "big", signed=True)
                               for s in stores for kb, vb in s.backend.range()}

    app.start()
    (rec,) = made
    rec.on_failed_commit = at_failed_commit
    try:
        wait_committed(broker, app_id, src, 200)
        feed(broker, src, 200, start=200)       # the transaction whose commit fails
        wait_committed(broker, app_id, src, 400)
        feed(broker, src, 200, start=400)
        wait_committed(broker, app_id, src, 600)
        pending = [mt.task.stores[STORE].pending_count() for mt in app._stream.tasks.running()]
    finally:
        app.close()
    assert pending == [0] * len(pending)
    txns = rec.transactions()
    outcomes = [o for o, _ in txns]
    assert outcomes.count("abort") == 1 and outcomes.count("commit") >= 3, outcomes
    failed = outcomes.index("abort")
    aborted = txns[failed][1]
    assert ("commit-failed",) in aborted and any(c[0] == "offsets" for c in aborted)
    assert any(c[0] == "produce" and c[1] == changelog for c in aborted)
    assert snapshot["pending"] > 0
    committed_before = {}
    for k, c, _p, _o in check_committed_transactions(
            type("R", (), {"transactions": lambda self: txns[:failed]})(), src, out, changelog):
        committed_before[k] = c
    assert snapshot["backend"] == committed_before
    by_partition = input_by_partition(broker, src, 600)
    updates = check_committed_transactions(rec, src, out, changelog)
    assert_every_update_once(updates, by_partition)
    assert store_contents(tmp_path, app_id) == counts_of(by_partition)
    assert app.metrics()["transactions_aborted"] == 1
    if broker_kind != "tansu":
        # The strict form: the injected abort's records are invisible to read_committed.
        assert_read_committed_exact(broker, src, out, 600)


def test_eos_processing_failure_keeps_only_committed_state_and_restart_is_exact(
        broker, topic_factory, tmp_path, recorder):
    src, out = topic_factory("eos-in", PARTITIONS), topic_factory("eos-out", PARTITIONS)
    app_id = f"eos-{src}"
    feed(broker, src, 200)
    app = make_app(broker, src, out, app_id, tmp_path)
    app.start()
    try:
        wait_committed(broker, app_id, src, 200)
        FAIL_ONCE["left"] = 150          # fails mid-transaction, after some output
        feed(broker, src, 300, start=200)
        wait_for(lambda: not app.running, timeout=60, what="the app to stop on the failure")
    finally:
        with pytest.raises(cs.CStreamsError, match="injected processing failure"):
            app.close()
    rec = recorder[0]
    outcome, calls = rec.transactions()[-1]
    if outcome == "commit":
        # The failing record was the first one processed after a commit (Apache Kafka's
        # fetches can end a batch right there), so no transaction was open: none began.
        assert not any(c[0] in ("begin", "produce") for c in
                       rec.calls[len(rec.calls) - rec.calls[::-1].index(("commit",)):])
    else:
        # The open transaction, holding output of the records before the failure, was
        # aborted.
        assert outcome == "abort" and rec.calls[-1] == ("abort",)
        assert any(c[0] == "produce" and c[1] == out for c in calls)
    by_partition = input_by_partition(broker, src, 500)
    done = committed(broker.bootstrap_servers, app_id, src, PARTITIONS)
    assert sum(done.values()) < 500
    # RocksDB holds exactly the state of the committed offsets: nothing of the aborted one.
    assert store_contents(tmp_path, app_id) == counts_of(by_partition, upto=done)

    again = make_app(broker, src, out, app_id, tmp_path)
    again.start()
    try:
        wait_committed(broker, app_id, src, 500)
    finally:
        again.close()
    assert store_contents(tmp_path, app_id) == counts_of(by_partition)
    changelog = f"{app_id}-{STORE}-changelog"
    updates = []
    for r in recorder:
        updates += check_committed_transactions(r, src, out, changelog)
    assert_every_update_once(updates, by_partition)


def test_eos_second_producer_with_the_same_transactional_id_fences_the_app(
        broker, topic_factory, tmp_path, recorder):
    src, out = topic_factory("eos-in", PARTITIONS), topic_factory("eos-out", PARTITIONS)
    app_id = f"eos-{src}"
    tid = f"{app_id}-fixed"
    feed(broker, src, 100)
    app = make_app(broker, src, out, app_id, tmp_path, config={"transactional.id": tid})
    assert app.transactional_id == tid
    app.start()
    try:
        wait_committed(broker, app_id, src, 100)
        before = committed(broker.bootstrap_servers, app_id, src, PARTITIONS)
        zombie_killer = Producer({"bootstrap.servers": broker.bootstrap_servers,
                                  "transactional.id": tid})
        zombie_killer.init_transactions(30)
        feed(broker, src, 100, start=100)
        wait_for(lambda: not app.running, timeout=60, what="the fenced app to stop")
    finally:
        with pytest.raises(ProducerFencedError, match="fenced"):
            app.close()
    rec = recorder[0]
    commits = [i for i, c in enumerate(rec.calls) if c == ("commit",)]
    fenced_at = len(rec.calls)
    # Nothing was committed after the fence: the offsets stay where they were.
    assert committed(broker.bootstrap_servers, app_id, src, PARTITIONS) == before
    assert all(i < fenced_at for i in commits)
    assert sum(before.values()) == 100
