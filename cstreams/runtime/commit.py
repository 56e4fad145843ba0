"""The at-least-once commit protocol, in this order (a failure at any step stops it):

1. every running task flushes its stores: one write batch per store, changelog records sent;
2. both producers flush: every sink, dead-letter and changelog record is acknowledged, and a
   remembered delivery failure raises ProductionError;
3. the consumer commits synchronously, per partition, the offset after the last record
   processed; when the broker or the group coordinator is unreachable, or the group went on
   without this member (its session expired), the offsets stay pending (retried at the next
   commit; a member that takes the partitions over reprocesses from the committed offsets)
   and the app goes on, as Kafka Streams does;
4. every task with persistent logged stores writes its checkpoint file (next changelog offset
   per changelog partition, as acknowledged by the changelog producer); on the interval only
   once its changelogs advanced by CHECKPOINT_DELTA records (task_manager.write_checkpoints).

Nothing is committed past unacknowledged output.

Exactly-once (TransactionalCommitter), one transaction per commit interval:

1. every running task flushes its stores: changelog records go into the open transaction, the
   writes are held pending (the store backends hold only committed state);
2. send_offsets_to_transaction(consumer positions after the records processed, the consumer's
   group metadata), then commit_transaction (which flushes every record of the transaction);
3. only then the stores write their pending writes, one batch per store, and the tasks write
   their checkpoint files: a checkpoint never describes state a transaction has not committed,
   and none is written while a transaction is open.

An abortable failure (of the commit, of a produce inside the transaction, of the offsets sent
to it) aborts the transaction and rewinds every running task: store caches and pending writes
dropped, processors closed and created anew, the consumer sought back to the committed
positions. A fenced or fatally failed producer raises: the instance stops without committing.
"""

from __future__ import annotations

import logging
import time

from cstreams.errors import CommitError, StoreIOError, TransactionAbortedError, TransactionError
from cstreams.internals import kafka

log = logging.getLogger("cstreams.commit")


class _CommitStats:
    """Counts commits and their latency (for metrics and the progress line)."""

    commits = 0
    last_latency_ms = 0.0
    total_latency_ms = 0.0

    def _committed(self, t0):
        ms = (time.perf_counter() - t0) * 1000.0
        self.commits += 1
        self.last_latency_ms = ms
        self.total_latency_ms += ms
        return ms


class Committer(_CommitStats):
    commits_failed = 0          # commits left pending because the broker or group was away

    def __init__(self, consumer, task_manager, collector, changelog_producer, *,
                 flush_timeout=60.0):
        self.consumer = consumer
        self.tasks = task_manager
        self.collector = collector
        self.changelog_producer = changelog_producer
        self.flush_timeout = flush_timeout
        # Cooperative rebalancing: interval commits do not wait for the broker's answer. A
        # synchronous commit issued while the group rebalances waits for the rebalance to
        # end, which stalls the partitions that stay. Every record behind these offsets was
        # already acknowledged (steps 1-2), so an offset commit that fails only means records
        # read again after a crash; revocation and close commits stay synchronous.
        self.async_interval = False

    def commit(self, reason="interval"):
        if self.tasks.failed:
            raise CommitError("refusing to commit after a failure")
        t0 = time.perf_counter()
        for mt in self.tasks.running():
            try:
                mt.task.flush_stores()
            except StoreIOError:
                self.tasks.distrust_local_state(mt)
                raise
            mt.task.commit_requested = False
        self.changelog_producer.flush(self.flush_timeout)
        self.collector.flush(self.flush_timeout)
        offsets = self.tasks.pending_offsets()
        if offsets and self.async_interval and reason == "interval":
            # Not recorded as committed: the next synchronous commit sends them again.
            tps = [kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            try:
                self.consumer.commit(offsets=tps, asynchronous=True)
            except kafka.KafkaException as e:
                raise CommitError(f"committing offsets failed: {e.args[0] if e.args else e}"
                                  ) from None
        elif offsets:
            tps = [kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            try:
                result = self.consumer.commit(offsets=tps, asynchronous=False)
            except kafka.KafkaException as e:
                err = e.args[0] if e.args else e
                if _may_retry(err):
                    return self._not_committed(reason, err)
                raise CommitError(f"committing offsets failed: {err}") from None
            for tp in result or ():
                if tp.error is not None:
                    if _may_retry(tp.error):
                        return self._not_committed(reason, tp.error)
                    raise CommitError(f"committing offset {tp.offset} of {tp.topic}-"
                                      f"{tp.partition} failed: {tp.error}")
            self.tasks.committed.update(offsets)
        self.tasks.write_checkpoints(force=reason != "interval")
        ms = self._committed(t0)
        log.debug("commit (%s): %d partition(s) in %.1f ms", reason, len(offsets), ms)

    def _not_committed(self, reason, err):
        self.commits_failed += 1
        log.warning("commit (%s): offsets not committed, left pending: %s", reason, err)


def _may_retry(err):
    """A commit that failed because the broker or the group coordinator is unreachable or
    moving, or because the group went on without this member (its session expired while the
    broker was away): the offsets stay pending for the next commit, or for the member that
    takes the partitions over, which reprocesses from the last committed offsets (at-least-
    once allows that; the output before them is acknowledged)."""
    code = kafka.error_code(err)
    return code in _COMMIT_RETRY or bool(getattr(err, "retriable", lambda: False)())


_COMMIT_RETRY = frozenset((
    kafka.KafkaError._TRANSPORT, kafka.KafkaError._TIMED_OUT, kafka.KafkaError._WAIT_COORD,
    kafka.KafkaError.REQUEST_TIMED_OUT, kafka.KafkaError.COORDINATOR_NOT_AVAILABLE,
    kafka.KafkaError.NOT_COORDINATOR, kafka.KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    kafka.KafkaError.UNKNOWN_MEMBER_ID, kafka.KafkaError.ILLEGAL_GENERATION,
    kafka.KafkaError.REBALANCE_IN_PROGRESS,
))


# An instance whose transactions abort this many times in a row stops: the cause is not
# transient (a record the broker rejects every time, say), and retrying forever hides it.
MAX_CONSECUTIVE_ABORTS = 5


class TransactionalCommitter(_CommitStats):
    def __init__(self, consumer, task_manager, transaction):
        self.consumer = consumer
        self.tasks = task_manager
        self.transaction = transaction
        self.aborts = 0
        self.consecutive_aborts = 0

    def commit(self, reason="interval"):
        if self.tasks.failed:
            raise CommitError("refusing to commit after a failure")
        t0 = time.perf_counter()
        running = self.tasks.running()
        offsets = {}
        try:
            for mt in running:
                mt.task.flush_stores()
                mt.task.commit_requested = False
            offsets = self.tasks.pending_offsets()
            tps = [kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            if not self.transaction.commit(tps, self.consumer.consumer_group_metadata()):
                return
        except TransactionAbortedError as e:
            self.abort(str(e))
            return
        except kafka.KafkaException as e:
            # consumer_group_metadata() or a produce inside the flush; the transaction
            # cannot be trusted to hold every record.
            self.abort(f"{e.args[0] if e.args else e}")
            return
        self.consecutive_aborts = 0
        for mt in running:
            try:
                for store in mt.task.stores.values():
                    store.commit_pending()
            except StoreIOError:
                # The transaction holds these writes: the changelog has them, the disk not.
                self.tasks.distrust_local_state(mt)
                raise
        self.tasks.committed.update(offsets)
        self.tasks.rewind_to.update(offsets)
        # Serve the delivery reports of the changelog records (their offsets go into the
        # checkpoints); commit_transaction() has waited for every acknowledgement.
        self.transaction.producer.poll(0)
        self.tasks.write_checkpoints(force=reason != "interval")
        ms = self._committed(t0)
        log.debug("transaction committed (%s): %d partition(s) in %.1f ms", reason,
                  len(offsets), ms)

    def abort(self, why):
        """Abort the open transaction and rewind every running task to its committed
        state. Raises TransactionError when aborts keep happening."""
        self.transaction.abort()
        self.tasks.rewind_all()
        self.aborts += 1
        self.consecutive_aborts += 1
        log.warning("transaction aborted (%s); state rewound to the last commit, processing "
                    "resumes from the committed offsets", why)
        if self.consecutive_aborts >= MAX_CONSECUTIVE_ABORTS:
            raise TransactionError(f"{self.consecutive_aborts} transactions in a row aborted; "
                                   f"last cause: {why}")
