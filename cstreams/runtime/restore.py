"""Changelog restoration: a separate assign()-only consumer reads each changelog partition of
a new task from its checkpointed offset (or the beginning) to partition EOF and applies the
records to the store backend with ``store.restore_batch``, in batches.

A checkpointed offset outside the changelog (deleted and created again, truncated, records
removed by retention) means the local store is not that changelog's state: the restore
consumer runs with ``auto.offset.reset=error``, and on the reset error the store is wiped
and restored from the beginning (Kafka Streams' TaskCorruptedException), rather than the log
being replayed onto keys it no longer has.

It stops on partition EOF (``enable.partition.eof=true``), never at the high watermark alone:
a watermark can be stale (and some brokers under-report it). A source topic that serves as a
changelog (a DSL table's) is read only up to the group's committed offset: records past it are
processed again, and must find the table as it was before them.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import time

from cstreams._impl import grouping
from cstreams.errors import RestoreError
from cstreams.internals import kafka

log = logging.getLogger("cstreams.restore")

PROGRESS_INTERVAL_S = 5.0


class _Pending:
    __slots__ = ("task", "store", "topic", "partition", "start", "records", "position", "end",
                 "waiting", "restarts")

    def __init__(self, task, store, topic, partition, start, end=None):
        self.end = end
        self.task = task
        self.store = store
        self.topic = topic
        self.partition = partition
        self.start = start
        self.records = 0
        self.position = start
        self.waiting = False        # an EOF came before the high watermark (see _stable_end)
        self.restarts = 0           # wiped and restarted from the beginning (_corrupted)


class StoreRestorer:
    def __init__(self, consumer_conf, *, max_records=10_000):
        # An offset out of range is the restorer's to handle (_corrupted), not a reset.
        self._conf = {**consumer_conf, "auto.offset.reset": "error"}
        self._consumer = None
        self.max_records = max_records
        self._pending = {}          # (topic, partition) -> _Pending
        self._by_task = {}          # task_id -> {(topic, partition)}
        self._started = {}          # task_id -> monotonic start
        self._counts = {}           # task_id -> records restored
        self._offsets = {}          # task_id -> {(topic, partition): end offset}
        self._last_progress = time.monotonic()
        self.records_restored = 0
        self._group = grouping.group_messages

    @property
    def consumer(self):
        if self._consumer is None:
            self._consumer = kafka.make_consumer(self._conf)
        return self._consumer

    @property
    def active(self):
        return bool(self._pending)

    def progress(self):
        """{task_id: records restored so far} of the tasks still restoring."""
        return dict(self._counts)

    def add(self, task, plan):
        """Start restoring ``task``: plan = [(store, changelog topic, partition, offset or
        None for the beginning[, end offset: stop there instead of at EOF])]. Returns True
        when there is nothing to restore."""
        if not plan:
            return True
        tps = []
        keys = set()
        for store, topic, partition, offset, *end in plan:
            start = kafka.OFFSET_BEGINNING if offset is None else offset
            self._pending[(topic, partition)] = _Pending(task, store, topic, partition, start,
                                                         end[0] if end else None)
            keys.add((topic, partition))
            tps.append(kafka.TopicPartition(topic, partition, start))
        self._by_task[task.task_id] = keys
        self._started[task.task_id] = time.monotonic()
        self._counts[task.task_id] = 0
        self.consumer.incremental_assign(tps)
        log.info("task %s: restoring %s", task.task_id,
                 ", ".join(f"{t}-{p} from {'beginning' if o is None else o}"
                           for _, t, p, o, *_end in plan))
        return False

    def remove(self, task_id):
        """Stop restoring a task (revoked before it finished)."""
        keys = self._by_task.pop(task_id, set())
        self._started.pop(task_id, None)
        self._counts.pop(task_id, None)
        self._offsets.pop(task_id, None)
        tps = []
        for k in keys:
            if self._pending.pop(k, None) is not None:
                tps.append(kafka.TopicPartition(k[0], k[1]))
        if tps:
            self.consumer.incremental_unassign(tps)

    def step(self, timeout):
        """Consume and apply one batch of changelog records. Returns [(task, {(topic,
        partition): next offset})] for tasks whose every changelog reached its end."""
        if not self._pending:
            return []
        msgs = self.consumer.consume(num_messages=self.max_records, timeout=timeout)
        # The compiled grouping splits the poll into one batch per changelog partition (offset
        # order kept) and hands back the EOF and error events apart. A partition's EOF comes
        # after the records before it, so applying the batches first keeps the order; records
        # that arrived after an EOF in the same poll are applied too, and the restored
        # position stays at the EOF offset, which only makes a later restore replay them.
        batches, events = self._group(msgs)
        for b in batches:
            self._apply(b)
        eofs = [(tp, p.end) for tp, p in self._pending.items()
                if p.end is not None and p.position >= p.end]
        for m in events:
            err = m.error()
            if err.code() == kafka.PARTITION_EOF:
                if self._stable_end(m.topic(), m.partition(), m.offset()):
                    eofs.append(((m.topic(), m.partition()), m.offset()))
                continue
            if err.code() == kafka.KafkaError._AUTO_OFFSET_RESET and self._corrupted(
                    (m.topic(), m.partition()), err):
                continue
            if err.fatal() or not err.retriable():
                raise RestoreError(f"restoring from changelog {m.topic()}-{m.partition()} "
                                   f"failed: {err.str()}")
            log.warning("restore consumer: %s", err.str())
        done = []
        for tp, end in eofs:
            p = self._pending.pop(tp, None)
            if p is None:
                continue
            if end >= 0:
                p.position = end
            self.consumer.incremental_unassign([kafka.TopicPartition(tp[0], tp[1])])
            tid = p.task.task_id
            keys = self._by_task.get(tid)
            keys.discard(tp)
            self._offsets.setdefault(tid, {})[tp] = p.position
            if not keys:
                del self._by_task[tid]
                secs = max(time.monotonic() - self._started.pop(tid), 1e-6)
                n = self._counts.pop(tid)
                log.info("task %s: restored %d records in %.2f s (%.0f records/s)",
                         tid, n, secs, n / secs)
                done.append((p.task, self._offsets.pop(tid)))
        now = time.monotonic()
        if self._by_task and now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            for tid in self._by_task:
                secs = max(now - self._started[tid], 1e-6)
                log.info("task %s: restoring, %d records so far (%.0f records/s)", tid,
                         self._counts[tid], self._counts[tid] / secs)
        return done

    def _corrupted(self, tp, err):
        """The restoration of ``tp`` reached an offset the changelog does not have (the
        checkpoint's, or a position retention removed meanwhile): wipe the store and restore
        it from the beginning. False if ``tp`` is not being restored, or was restarted so
        already (the error is then the caller's)."""
        p = self._pending.get(tp)
        if p is None or p.restarts >= 2:
            return False
        p.restarts += 1
        log.warning("task %s: store %r: restoring from offset %d of changelog %s-%d, which the "
                    "changelog does not have (%s): wiping the store and restoring it from the "
                    "beginning", p.task.task_id, p.store.name, p.position, tp[0], tp[1],
                    err.str())
        _wipe(p.store)
        self._counts[p.task.task_id] -= p.records
        p.start = p.position = kafka.OFFSET_BEGINNING
        p.records = 0
        tps = [kafka.TopicPartition(tp[0], tp[1], kafka.OFFSET_BEGINNING)]
        self.consumer.incremental_unassign(tps)
        self.consumer.incremental_assign(tps)
        return True

    def _stable_end(self, topic, partition, offset):
        """Whether the EOF at ``offset`` ends the restoration of a changelog partition.

        Under read_committed the EOF comes at the last stable offset, which stops before
        the first record of any transaction whose markers are not written yet, also one
        that is committed (EndTxn answered: the output of the transaction is, or will be,
        visible) but whose markers the broker has still to write, as after a broker restart
        (the coordinator completes such a transaction only once it reloaded its log). A
        restoration that stopped there would run the task over state without that
        transaction, while the group's committed offsets and the output include it. So the
        restoration goes on until the last stable offset reaches the high watermark of the
        same fetch: every transaction on the changelog completed (committed ones applied,
        aborted ones skipped). No transaction of this instance is open on the changelog of
        a task being restored, and another producer's is completed or aborted by the broker
        within transaction.timeout.ms. Read_uncommitted (at-least-once) ends at the EOF."""
        p = self._pending.get((topic, partition))
        if p is None or p.end is not None or offset < 0:
            return True
        try:
            high = self.consumer.get_watermark_offsets(
                kafka.TopicPartition(topic, partition), cached=True)[1]
        except kafka.KafkaException:
            return True
        if high is None or high < 0 or offset >= high:
            return True
        if not p.waiting:
            p.waiting = True
            log.info("task %s: restoring %s-%d: end of the committed records at %d, a "
                     "transaction up to %d is still being completed: waiting for it",
                     p.task.task_id, topic, partition, offset, high)
        return False

    def _apply(self, batch):
        p = self._pending.get((batch.topic, batch.partition))
        if p is None:
            return
        keys, values = batch.keys, batch.values
        if p.end is not None and batch.offsets[-1] >= p.end:
            cut = bisect.bisect_left(batch.offsets, p.end)
            keys, values = keys[:cut], values[:cut]
            if not keys:
                return
        n = len(keys)
        p.store.restore_batch(keys, values)
        p.position = batch.offsets[n - 1] + 1
        p.records += n
        self._counts[p.task.task_id] = self._counts.get(p.task.task_id, 0) + n
        self.records_restored += n

    def close(self):
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:  # noqa: BLE001
                log.debug("restore consumer close failed", exc_info=True)
            self._consumer = None


def _wipe(store, chunk=10_000):
    """Delete everything ``store``'s backend holds: a tombstone per key, applied as restored
    changelog records are (``restore_batch``), ``chunk`` keys at a time."""
    start = None
    while True:
        kbs = [kb for kb, _ in itertools.islice(store.backend.range(start, None), chunk)]
        if not kbs:
            break
        store.restore_batch(kbs, [None] * len(kbs))
        start = kbs[-1] + b"\x00"
