"""Exactly-once runtime pieces without a broker: owned settings, the transactional.id, the
transactional producer's error handling (on a stand-in for the confluent-kafka producer)."""

from __future__ import annotations

import pytest

pytest.importorskip("confluent_kafka")

from confluent_kafka import KafkaError, KafkaException  # noqa: E402

import cstreams as cs  # noqa: E402
from cstreams.errors import (  # noqa: E402
    ConfigurationError,  # noqa: E402
    ProducerFencedError,
    TaskMigratedError,
    TransactionAbortedError,
    TransactionError,
)
from cstreams.internals import kafka  # noqa: E402
from cstreams.runtime import config  # noqa: E402
from cstreams.runtime.transaction import TransactionalProducer, stable_instance_id  # noqa: E402


def _topology():
    topo = cs.Topology()
    topo.add_source("in", topics=["in"])
    topo.add_sink("out", topic="out", parents=["in"])
    return topo


# --- owned settings --------------------------------------------------------------------------


def test_eos_settings_owned_per_client():
    confs = config.build("app", "b:9092", {"linger.ms": 5, "isolation.level": "read_committed"},
                         transactional_id="app-x")
    assert "changelog.producer" not in confs
    for client in ("consumer", "restore.consumer"):
        assert confs[client]["isolation.level"] == "read_committed"
        assert "transactional.id" not in confs[client]
    p = confs["producer"]
    assert p["transactional.id"] == "app-x" and p["enable.idempotence"] is True
    assert p["delivery.report.only.error"] is False and "on_delivery" not in p
    assert p["transaction.timeout.ms"] == config.EOS_TRANSACTION_TIMEOUT_MS
    assert p["linger.ms"] == 5 and "transactional.id" not in confs["admin"]


def test_eos_user_settings_that_conflict_or_make_no_sense():
    with pytest.raises(ConfigurationError, match="isolation.level"):
        config.build("app", "b", {"consumer.isolation.level": "read_uncommitted"},
                     transactional_id="t")
    with pytest.raises(ConfigurationError, match="enable.idempotence"):
        config.build("app", "b", {"enable.idempotence": False}, transactional_id="t")
    with pytest.raises(ConfigurationError, match="changelog.producer"):
        config.build("app", "b", {"changelog.producer.linger.ms": 1}, transactional_id="t")
    with pytest.raises(ConfigurationError, match="only used under"):
        config.build("app", "b", {"transactional.id": "t"})
    timeout = config.build("app", "b", {"transaction.timeout.ms": 30000}, transactional_id="t")
    assert timeout["producer"]["transaction.timeout.ms"] == 30000


def test_at_least_once_settings_unchanged():
    confs = config.build("app", "b")
    assert confs["producer"]["delivery.report.only.error"] is True
    assert confs["changelog.producer"]["delivery.report.only.error"] is False
    assert "isolation.level" not in confs["consumer"]
    assert "transactional.id" not in confs["producer"]


# --- the transactional.id and App settings ---------------------------------------------------


def test_transactional_id_is_stable_per_state_dir(tmp_path):
    a = cs.App(_topology(), "app", "b:1", state_dir=str(tmp_path / "one"),
               processing_guarantee="exactly_once_v2")
    again = cs.App(_topology(), "app", "b:1", state_dir=str(tmp_path / "one"),
                   processing_guarantee="exactly_once_v2")
    other = cs.App(_topology(), "app", "b:1", state_dir=str(tmp_path / "two"),
                   processing_guarantee="exactly_once_v2")
    assert a.transactional_id == again.transactional_id != other.transactional_id
    iid = stable_instance_id(str(tmp_path / "one"), "app")
    assert a.transactional_id == f"app-{iid}"
    assert (tmp_path / "one" / "app" / "instance.id").read_text().strip() == iid
    assert a.client_configs["producer"]["transactional.id"] == a.transactional_id


def test_transactional_id_overrides(tmp_path):
    named = cs.App(_topology(), "app", "b:1", state_dir=str(tmp_path),
                   processing_guarantee="exactly_once_v2", instance_id="node-3")
    assert named.transactional_id == "app-node-3"
    given = cs.App(_topology(), "app", "b:1", state_dir=str(tmp_path),
                   processing_guarantee="exactly_once_v2",
                   config={"producer.transactional.id": "mine"})
    assert given.transactional_id == "mine"
    assert given.client_configs["producer"]["transactional.id"] == "mine"


def test_app_eos_defaults_and_rejections(tmp_path):
    eos = cs.App(_topology(), "app", "b:1", state_dir=str(tmp_path),
                 processing_guarantee="exactly_once_v2")
    assert eos.commit_interval_ms == 100 and eos.exactly_once
    alos = cs.App(_topology(), "app", "b:1", state_dir=str(tmp_path))
    assert alos.commit_interval_ms == 30_000 and alos.transactional_id is None
    assert cs.App(_topology(), "app", "b:1", state_dir=str(tmp_path),
                  processing_guarantee="exactly_once_v2",
                  commit_interval_ms=1000).commit_interval_ms == 1000
    with pytest.raises(ConfigurationError, match="production_error_handler"):
        cs.App(_topology(), "app", "b:1", state_dir=str(tmp_path),
               processing_guarantee="exactly_once_v2", production_error_handler="skip")
    with pytest.raises(ConfigurationError, match="instance_id"):
        cs.App(_topology(), "app", "b:1", state_dir=str(tmp_path), instance_id="x")


# --- TransactionalProducer -------------------------------------------------------------------


def _err(code, *, fatal=False, retriable=False, abort=False):
    return KafkaException(KafkaError(code, "boom", fatal=fatal, retriable=retriable,
                                     txn_requires_abort=abort))


class FakeProducer:
    def __init__(self):
        self.calls = []
        self.fail = {}          # method -> [exceptions to raise, in order]

    def _call(self, name, *args):
        self.calls.append(name)
        errs = self.fail.get(name)
        if errs:
            raise errs.pop(0)

    def init_transactions(self, *a):
        self._call("init")

    def begin_transaction(self):
        self._call("begin")

    def send_offsets_to_transaction(self, offsets, metadata, *a):
        self._call("offsets")

    def commit_transaction(self, *a):
        self._call("commit")

    def abort_transaction(self, *a):
        self._call("abort")

    def produce(self, *a):
        self._call("produce")

    def poll(self, *a):
        return 0


@pytest.fixture
def txn(monkeypatch):
    fake = FakeProducer()
    monkeypatch.setattr(kafka, "make_producer", lambda conf: fake)
    monkeypatch.setattr("cstreams.runtime.transaction.time.sleep", lambda s: None)
    t = TransactionalProducer({"transactional.id": "app-1"}, timeout=1)
    t.init()
    return t, fake


def test_begin_is_lazy_and_commit_of_nothing_is_no_transaction(txn):
    t, fake = txn
    assert t.commit([], None) is False and fake.calls == ["init"]
    t.begin()
    t.begin()
    assert fake.calls == ["init", "begin"] and t.open
    assert t.commit([kafka.TopicPartition("in", 0, 5)], object()) is True
    assert fake.calls[-2:] == ["offsets", "commit"] and not t.open
    # Offsets alone (e.g. every record was skipped) still make a transaction.
    t.commit([kafka.TopicPartition("in", 0, 6)], object())
    assert fake.calls[-3:] == ["begin", "offsets", "commit"]
    assert (t.begun, t.committed, t.aborted) == (2, 2, 0)


def test_retriable_commit_is_retried(txn):
    t, fake = txn
    fake.fail["commit"] = [_err(KafkaError._TIMED_OUT, retriable=True)]
    t.begin()
    assert t.commit([], None) is True
    assert fake.calls.count("commit") == 2 and not t.open


def test_abortable_failure_leaves_the_transaction_to_abort(txn):
    t, fake = txn
    fake.fail["commit"] = [_err(KafkaError._TIMED_OUT_QUEUE, abort=True)]
    t.begin()
    with pytest.raises(TransactionAbortedError, match="committing"):
        t.commit([], None)
    assert t.open and t.broken is None
    t.abort()
    assert not t.open and fake.calls[-1] == "abort" and t.aborted == 1
    t.begin()                                   # the producer goes on
    assert t.open


@pytest.mark.parametrize("code", [KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                  KafkaError.INVALID_PRODUCER_EPOCH])
def test_fenced_producer_never_commits_again(txn, code):
    t, fake = txn
    fake.fail["offsets"] = [_err(code, fatal=True)]
    t.begin()
    with pytest.raises(ProducerFencedError, match="app-1") as e:
        t.commit([kafka.TopicPartition("in", 0, 1)], object())
    assert not isinstance(e.value, TaskMigratedError)   # a young transaction: another owner
    assert "commit" not in fake.calls
    t.open = False
    with pytest.raises(ProducerFencedError):
        t.begin()
    t.close()                                   # no abort on a fenced producer
    assert fake.calls.count("abort") == 0


@pytest.mark.parametrize("code", [KafkaError.PRODUCER_FENCED, KafkaError.INVALID_TXN_STATE])
def test_fenced_after_the_transaction_timeout_is_task_migrated_and_reset_goes_on(txn, code):
    t, fake = txn
    fake.fail["abort"] = [_err(code, fatal=True)]
    t.begin()
    t.began_at -= t.transaction_timeout_s + 1   # the broker was away that long
    with pytest.raises(TaskMigratedError, match="transaction.timeout.ms"):
        t.abort()
    assert isinstance(t.broken, TaskMigratedError)
    t.reset()                                   # a new producer, same transactional.id
    assert fake.calls[-1] == "init" and not t.open and t.broken is None
    t.begin()
    assert t.commit([kafka.TopicPartition("in", 0, 1)], object()) is True


def test_fatal_error_is_a_transaction_error(txn):
    t, fake = txn
    fake.fail["begin"] = [_err(KafkaError._FATAL, fatal=True)]
    with pytest.raises(TransactionError) as e:
        t.begin()
    assert not isinstance(e.value, ProducerFencedError)
    with pytest.raises(TransactionError):
        t.begin()


def test_close_aborts_an_open_transaction(txn):
    t, fake = txn
    t.begin()
    t.close()
    assert fake.calls[-1] == "abort" and not t.open


def test_a_produce_refused_for_the_transaction_state_raises_what_put_it_there(txn):
    """After a delivery the broker fenced, the producer refuses the next produce with
    _STATE ("Erroneous state"); the sink and changelog writers raise the failure behind it
    (fenced here), as a commit would, not the bare state error."""
    from cstreams.runtime.changelog import ChangelogProducer
    from cstreams.runtime.collector import RecordCollector

    t, fake = txn
    collector = RecordCollector({}, transaction=t)
    changelog = ChangelogProducer({}, transaction=t)
    for send in (lambda: collector.send_batch("out", [b"k"], [b"v"], None, None, [0]),
                 lambda: changelog.send("app-store-changelog", 0, [b"k"], [b"v"])):
        t.broken = None
        fake.fail["produce"] = [_err(KafkaError._STATE)]
        fake.fail["begin"] = [_err(KafkaError.PRODUCER_FENCED, abort=True)]
        t.open = True
        with pytest.raises(ProducerFencedError, match="producing"):
            send()
    # Any other error the producer raises goes on as it is.
    fake.fail["produce"] = [_err(KafkaError.MSG_SIZE_TOO_LARGE)]
    with pytest.raises(KafkaException):
        collector.send_batch("out", [b"k"], [b"v"], None, None, [0])
