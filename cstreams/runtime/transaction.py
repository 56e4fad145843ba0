"""The transactional producer of an instance under exactly_once_v2 (KIP-447).

ONE producer per instance carries sink, changelog and dead-letter records. Its
``transactional.id`` is ``<application_id>-<instance id>``, where the instance id is a UUID
kept in ``<state_dir>/<application_id>/instance.id`` (created on first start), unless the user
sets ``transactional.id`` (or ``App(instance_id=...)``). A stable id is what lets a restarted
instance fence the zombie of its previous run: init_transactions() bumps the producer epoch and
aborts whatever transaction the old producer left open, so read_committed readers (and the
restoration of this instance's own changelogs) are not held back until the transaction timeout.

Lifecycle: a transaction begins lazily at the first produce after a commit; at commit time the
runtime sends the consumer positions with the group metadata (send_offsets_to_transaction) and
commits. Errors are sorted the way librdkafka documents them:

- retriable (e.g. a timeout): the same call is retried;
- abortable (``txn_requires_abort``): TransactionAbortedError, the caller aborts and rewinds;
- fenced (``_FENCED``, PRODUCER_FENCED, INVALID_PRODUCER_EPOCH): ProducerFencedError, or
  TaskMigratedError when the open transaction had outlived ``transaction.timeout.ms`` (the
  broker aborted it and bumped the epoch: nobody else holds the id; INVALID_TXN_STATE is
  what Kafka 4 answers then too). The stream thread then
  replaces the producer (:meth:`TransactionalProducer.reset`) and rewinds its tasks;
- any other fatal error: TransactionError. Both stop the instance without committing.
"""

from __future__ import annotations

import logging
import os
import time
import uuid

from cstreams.errors import (
    ProducerFencedError,
    TaskMigratedError,
    TransactionAbortedError,
    TransactionError,
)
from cstreams.internals import kafka

log = logging.getLogger("cstreams.transaction")

INSTANCE_ID_FILE = "instance.id"

_FENCED = frozenset((kafka.KafkaError._FENCED, kafka.KafkaError.PRODUCER_FENCED,
                     kafka.KafkaError.INVALID_PRODUCER_EPOCH))
# What a producer gets once the broker aborted its transaction on transaction.timeout.ms and
# bumped its epoch (Kafka 4 answers the EndTxn of the old epoch with INVALID_TXN_STATE).
_TIMED_OUT_AND_ABORTED = _FENCED | {kafka.KafkaError.INVALID_TXN_STATE}
_RETRIES = 5


def stable_instance_id(state_dir, application_id):
    """The instance id kept in the application's state directory, created on first use."""
    directory = os.path.join(state_dir, application_id)
    path = os.path.join(directory, INSTANCE_ID_FILE)
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    os.makedirs(directory, exist_ok=True)
    text = uuid.uuid4().hex[:16]
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return text


def _kafka_error(exc):
    return exc.args[0] if isinstance(exc, kafka.KafkaException) and exc.args else None


class TransactionalProducer:
    def __init__(self, producer_conf, *, timeout=60.0):
        self.transactional_id = producer_conf["transactional.id"]
        self.conf = dict(producer_conf)
        self.transaction_timeout_s = int(producer_conf.get("transaction.timeout.ms",
                                                           60000)) / 1000.0
        self.producer = kafka.make_producer(producer_conf)
        self.began_at = None        # monotonic time of the open transaction's begin
        self.timeout = timeout
        self.open = False
        self.broken = None          # the error after which no call may be made any more
        self.begun = 0
        self.committed = 0
        self.aborted = 0

    def _fail(self, what, exc):
        err = _kafka_error(exc)
        text = err.str() if err is not None else str(exc)
        code = err.code() if err is not None else None
        age = None if self.began_at is None else time.monotonic() - self.began_at
        if code in _TIMED_OUT_AND_ABORTED and self.open and age is not None and (
                age >= self.transaction_timeout_s):
            e = TaskMigratedError(
                f"producer fenced while {what}, after its transaction was open {age:.1f} s, "
                f"longer than transaction.timeout.ms ({self.transaction_timeout_s:g} s): the "
                f"broker aborted it (transactional.id {self.transactional_id!r}): {text}")
        elif code in _FENCED:
            e = ProducerFencedError(
                f"producer fenced while {what}: another producer with transactional.id "
                f"{self.transactional_id!r} started (a second instance with the same "
                f"application_id and instance id, or this instance's successor after it was "
                f"considered dead); this instance stops without committing: {text}")
        elif err is not None and err.fatal():
            e = TransactionError(f"fatal transactional producer error while {what} "
                                 f"(transactional.id {self.transactional_id!r}): {text}")
        elif err is not None and err.txn_requires_abort():
            return TransactionAbortedError(f"transaction failed while {what}, aborting it: "
                                           f"{text}")
        else:
            e = TransactionError(f"transactional producer error while {what} "
                                 f"(transactional.id {self.transactional_id!r}): {text}")
        self.broken = e
        return e

    def _call(self, what, fn, *args):
        for attempt in range(_RETRIES):
            try:
                return fn(*args)
            except kafka.KafkaException as exc:
                err = _kafka_error(exc)
                if (err is not None and err.retriable() and not err.fatal()
                        and not err.txn_requires_abort() and attempt + 1 < _RETRIES):
                    log.warning("%s: retrying: %s", what, err.str())
                    time.sleep(0.1 * (attempt + 1))
                    continue
                raise self._fail(what, exc) from None

    def produce_batch(self, topic, **columns):
        """Produce a batch's columns (kafka.produce_batch's keywords) in the transaction,
        begun if none is open. A produce refused with _STATE ("Erroneous state") means an
        earlier failure put the transaction in an error state (a delivery the broker fenced,
        for one): that failure, which begin_transaction() reports, is raised, classified as
        every transactional error is (fenced, timed out, fatal, abortable). Any other error
        goes on as it is."""
        self.begin()
        try:
            return kafka.produce_batch(self.producer, topic, **columns)
        except kafka.KafkaException as exc:
            if kafka.error_code(exc) != kafka.KafkaError._STATE:
                raise
            try:
                self.producer.begin_transaction()
            except kafka.KafkaException as cause:
                raise self._fail("producing", cause) from None
            raise self._fail("producing", exc) from None

    # --- lifecycle ------------------------------------------------------------------------
    def init(self):
        """init_transactions(): fences older producers with this transactional.id and
        aborts the transaction they left open."""
        self._call("initializing transactions", self.producer.init_transactions, self.timeout)
        log.info("transactional producer ready (transactional.id %r)", self.transactional_id)

    def begin(self):
        if self.open:
            return
        if self.broken is not None:
            raise self.broken
        self._call("beginning a transaction", self.producer.begin_transaction)
        self.began_at = time.monotonic()
        self.open = True
        self.begun += 1

    def commit(self, offsets, group_metadata):
        """Send ``offsets`` (TopicPartitions: next offset to read) to the transaction and
        commit it. Returns False when there was nothing to commit."""
        if not self.open and not offsets:
            return False
        self.begin()
        if offsets:
            self._call("sending offsets to the transaction",
                       self.producer.send_offsets_to_transaction, offsets, group_metadata,
                       self.timeout)
        self._call("committing the transaction", self.producer.commit_transaction,
                   self.timeout)
        self.open = False
        self.committed += 1
        return True

    def reset(self):
        """Replace a producer the broker fenced after a transaction timeout: the old one is
        dropped with whatever it still held (its transaction was aborted by the broker), a
        new one with the same transactional.id runs init_transactions()."""
        old, self.producer = self.producer, None
        try:
            old.purge()
        except Exception:  # noqa: BLE001 - a fenced producer may refuse; it is dropped
            log.debug("purging the fenced producer", exc_info=True)
        self.open = False
        self.broken = None
        self.began_at = None
        self.producer = kafka.make_producer(self.conf)
        self.init()

    def abort(self):
        """Abort the open transaction (if any); a fatal error raises."""
        if not self.open:
            return
        self._call("aborting the transaction", self.producer.abort_transaction, self.timeout)
        self.open = False
        self.aborted += 1

    def close(self):
        """Abort what is open, best effort (a fenced producer cannot)."""
        if self.open and self.broken is None:
            try:
                self.abort()
            except Exception as e:  # noqa: BLE001 - on the way out
                log.warning("aborting the open transaction on close: %s", e)
        self.open = False
