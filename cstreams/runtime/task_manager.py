"""TaskManager: consumer-group assignment -> tasks (one per sub-topology x partition),
restoration before init, revocation -> commit and close.

A new task's partitions stay paused while its stores restore; they resume once every changelog
partition of the task reached its end and the processors ran init().
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import time

from cstreams import names
from cstreams.errors import CStreamsError, StoreError
from cstreams.internals import kafka
from cstreams.internals.state.checkpoint import (
    TaskDirectoryLock,
    checkpoint_path,
    read_checkpoint,
    write_checkpoint,
)
from cstreams.internals.task import Task
from cstreams.runtime.changelog import ChangelogWriter
from cstreams.runtime.partition_group import PartitionGroup

log = logging.getLogger("cstreams.tasks")

RESTORING = "restoring"
RUNNING = "running"


# How long a new task waits for the owner it moves from on this host (another stream thread or
# worker process, still closing it) to release its directory lock.
TASK_LOCK_TIMEOUT_S = 10.0
# Interval commits rewrite a task's checkpoint once its changelogs advanced by this many
# records (Kafka Streams' OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT).
CHECKPOINT_DELTA = 10_000

# A multi-input task waiting for a partition with nothing fetched yet asks the broker for its
# end offset at most this often (after a fetch, the fetched watermark is used).
WATERMARK_QUERY_INTERVAL_S = 0.5


class ManagedTask:
    """A task with what the runtime keeps beside it."""

    __slots__ = ("task", "state", "partitions", "lock", "changelogs", "positions",
                 "checkpointed", "checkpoint_written", "group")

    def __init__(self, task):
        self.task = task
        self.state = RESTORING
        self.partitions = set()     # source (topic, partition)s assigned to it
        self.lock = None
        self.changelogs = {}        # (topic, partition) -> store name, logged stores
        self.positions = {}         # (topic, partition) -> next changelog offset in the stores
        self.checkpointed = False   # the task has persistent logged stores
        self.checkpoint_written = None  # the offsets this run last wrote to its checkpoint
        self.group = None           # PartitionGroup of a task with more than one input

    @property
    def task_id(self):
        return self.task.task_id


class TaskManager:
    def __init__(self, topology, application_id, *, state_dir, error_handler, collector,
                 changelog_producer, restorer, exactly_once=False, cooperative=False):
        self.topology = topology
        self.application_id = application_id
        self.state_dir = state_dir
        self.error_handler = error_handler
        self.collector = collector
        self.changelog_producer = changelog_producer
        self.restorer = restorer
        self.consumer = None
        # The native data path: route(partitions) sends the records of those (topic,
        # partition)s to its queue; called before assign() (cstreams._core.native).
        self.route = None
        self.unroute = None         # the partitions revoked or lost: routed no more
        self.tasks = {}             # (sub id, partition) -> ManagedTask
        self.by_partition = {}      # source (topic, partition) -> ManagedTask
        self.consumed = {}          # source (topic, partition) -> next offset to commit
        self.committed = {}         # source (topic, partition) -> last committed offset
        # source (topic, partition) -> where processing resumes after an aborted transaction:
        # the last committed offset, or the first offset processed since the assignment.
        self.rewind_to = {}
        self.exactly_once = exactly_once
        # Incremental rebalancing: assignments and revocations name only the partitions that
        # move (the cooperative-sticky assignor, cstreams.runtime.config).
        self.cooperative = cooperative
        self.abort = None           # exactly-once: abort(why) of the committer
        self.commit = None          # set by the stream thread: commit(reason) callable
        self.failed = False         # no commit may happen any more (a record failed)
        self.closed_task_metrics = {}
        self.global_stores = None   # {name: store} of the instance's global stores
        # Time synchronization of tasks with more than one input (PartitionGroup).
        self.max_task_idle_ms = 0
        self.buffered_records_per_partition = 10_000
        self.grouped = []           # running ManagedTasks with a PartitionGroup
        self.paused = set()         # source (topic, partition)s paused by back-pressure
        # Source (topic, partition)s assigned or sought back since the stream thread cleared
        # it: native batches taken before that are stale (the native data path takes its
        # records before confluent-kafka serves the rebalance callbacks of the same poll).
        self.moved = set()
        self._watermarks = {}       # (topic, partition) -> (monotonic, high) asked of the broker
        self._start_offsets = {}    # (topic, partition) -> committed offset at assignment
        self.closed_node_metrics = {}   # task_id -> node name -> Counter(records, batches)
        # Readiness (cstreams.health): an assignment arrived and no revocation followed it.
        self.assigned = False

    # --- rebalance callbacks (run inside consumer.consume()) -------------------------------
    def on_assign(self, consumer, partitions):
        self.moved.update((tp.topic, tp.partition) for tp in partitions)
        if self.route is not None:
            self.route([(tp.topic, tp.partition) for tp in partitions])
        if self.cooperative:
            # Only the partitions added: the others keep their positions and keep running.
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        paused = []
        for tp in partitions:
            mt = self._task_for(tp.topic, tp.partition)
            mt.partitions.add((tp.topic, tp.partition))
            self.by_partition[(tp.topic, tp.partition)] = mt
            if mt.state == RESTORING:
                paused.append(kafka.TopicPartition(tp.topic, tp.partition))
        if paused:
            consumer.pause(paused)
        self.assigned = True    # last: its tasks exist (and restore) before it is ready
        log.info("assigned %d partition(s): %d task(s) (%s)", len(partitions), len(self.tasks),
                 ", ".join(sorted(mt.task_id for mt in self.tasks.values())) or "none")

    def on_revoke(self, consumer, partitions):
        self.assigned = False
        if not partitions:
            return
        if not self.failed and self.commit is not None:
            self.commit("revocation")
        self._close_partitions([(tp.topic, tp.partition) for tp in partitions], clean=True)
        if self.unroute is not None:
            self.unroute([(tp.topic, tp.partition) for tp in partitions])
        if self.cooperative:
            consumer.incremental_unassign(partitions)
        log.info("revoked %d partition(s); %d task(s) stay (%s)", len(partitions),
                 len(self.tasks), ", ".join(sorted(mt.task_id for mt in self.tasks.values()))
                 or "none")

    def on_lost(self, consumer, partitions):
        self.assigned = False
        log.warning("lost %d partition(s) (no longer a group member): closing their tasks "
                    "without a commit", len(partitions))
        self._close_partitions([(tp.topic, tp.partition) for tp in partitions], clean=False)
        if self.unroute is not None:
            self.unroute([(tp.topic, tp.partition) for tp in partitions])
        if self.abort is not None and not self.failed:
            # The open transaction holds output of the lost tasks too: abort it, and
            # rewind the tasks this instance keeps.
            self.abort("partitions lost")

    # --- task lifecycle -------------------------------------------------------------------
    def _task_for(self, topic, partition):
        sub = self.topology.subtopology_for_topic(topic)
        if sub is None:
            raise CStreamsError(f"assigned topic {topic!r} is not read by the topology")
        key = (sub.id, partition)
        mt = self.tasks.get(key)
        if mt is None:
            mt = self.tasks[key] = self._create(sub, partition)
        return mt

    def _create(self, sub, partition):
        task = Task(self.topology, sub, partition, self.collector,
                    application_id=self.application_id, state_dir=self.state_dir,
                    error_handler=self.error_handler, global_stores=self.global_stores)
        mt = ManagedTask(task)
        if len(sub.topics) + len(sub.patterns) > 1:
            mt.group = PartitionGroup(self.max_task_idle_ms, self.buffered_records_per_partition)
        checkpoint = {}
        if sub.stores and task.directory is not None:
            mt.lock = TaskDirectoryLock(
                task.directory, timeout=TASK_LOCK_TIMEOUT_S,
                on_wait=lambda holder: log.info(
                    "task %s: its directory is locked by another owner%s: waiting up to %g s "
                    "for it to close the task", task.task_id, holder, TASK_LOCK_TIMEOUT_S))
            checkpoint = read_checkpoint(task.directory)
        plan = self._plan(mt, checkpoint)
        try:
            task.open_stores()
        except StoreError as e:
            log.warning("task %s: local state unusable (%s); wiping it and restoring from "
                        "the changelog", task.task_id, e)
            self._close_stores(task)
            plan = self._plan(mt, None)
            task.open_stores()
        if self.exactly_once:
            for store in task.stores.values():
                store.transactional = True
        restore = []
        for name, tp, offset in plan:
            store = task.stores[name]
            if self.topology.store_spec(name).source_changelog is None:
                store.changelog = ChangelogWriter(self.changelog_producer, tp[0], tp[1])
                restore.append((store, tp[0], tp[1], offset))
                continue
            # A table's source topic: restore only what the group committed.
            end = self._committed_offset(tp)
            if end > (offset or 0):
                restore.append((store, tp[0], tp[1], offset, end))
        if self.restorer.add(task, restore):
            self._start(mt, {})
        return mt

    def _committed_offset(self, tp):
        """The group's committed offset of a source partition (0 when none)."""
        if self.consumer is None:
            return 0
        got = self.consumer.committed([kafka.TopicPartition(tp[0], tp[1])], timeout=30)
        return max(got[0].offset, 0) if got else 0

    def _plan(self, mt, checkpoint):
        """[(store name, changelog (topic, partition), start offset or None)]; wipes the
        directory of a persistent store whose local state cannot be trusted."""
        task = mt.task
        plan = []
        for name in task.sub.stores:
            spec = self.topology.store_spec(name)
            store_dir = (None if task.directory is None
                         else names.inside(task.directory, name, error=StoreError,
                                           what=f"task {task.task_id}: store {name!r}"))
            if not spec.logging:
                continue
            tp = (spec.changelog_topic(self.application_id), task.partition)
            mt.changelogs[tp] = name
            offset = None
            if spec.persistent:
                mt.checkpointed = True
                if checkpoint and tp in checkpoint and os.path.isdir(store_dir):
                    offset = checkpoint[tp]
                elif store_dir is not None and os.path.exists(store_dir):
                    log.info("task %s: store %r has no checkpoint: wiping %s and restoring "
                             "from the beginning of %s-%d", task.task_id, name, store_dir,
                             tp[0], tp[1])
                    shutil.rmtree(store_dir)
            plan.append((name, tp, offset))
        return plan

    def restored(self, task, offsets):
        """The restorer finished ``task``: init its processors and resume its partitions."""
        for mt in self.tasks.values():
            if mt.task is task:
                self._start(mt, offsets)
                return

    def _start(self, mt, offsets):
        mt.positions.update(offsets)
        mt.task.init()
        mt.state = RUNNING
        if mt.group is not None:
            self.grouped.append(mt)
        if mt.partitions and self.consumer is not None:
            self.consumer.resume([kafka.TopicPartition(t, p) for t, p in mt.partitions])
        log.info("task %s: running", mt.task_id)

    def _close_partitions(self, tps, clean):
        closing = []
        for tp in tps:
            mt = self.by_partition.pop(tp, None)
            self.consumed.pop(tp, None)
            self.committed.pop(tp, None)
            self.rewind_to.pop(tp, None)
            self.paused.discard(tp)
            self._watermarks.pop(tp, None)
            self._start_offsets.pop(tp, None)
            if mt is not None:
                if mt.group is not None:
                    mt.group.drop(tp)
                mt.partitions.discard(tp)
                if not mt.partitions and mt not in closing:
                    closing.append(mt)
        for mt in closing:
            self.close_task(mt, clean)

    def close_task(self, mt, clean):
        key = (mt.task.sub.id, mt.task.partition)
        self.tasks.pop(key, None)
        if mt in self.grouped:
            self.grouped.remove(mt)
        for tp in list(mt.partitions):
            self.by_partition.pop(tp, None)
        self.restorer.remove(mt.task_id)
        running = mt.state == RUNNING
        self.closed_task_metrics.setdefault(mt.task_id, collections.Counter()).update(
            mt.task.metrics)
        nodes = self.closed_node_metrics.setdefault(mt.task_id, {})
        for node in mt.task.nodes:
            nodes.setdefault(node.name, collections.Counter()).update(
                records=node.records, batches=node.batches)
        try:
            if running:
                mt.task.close()
            else:
                self._close_stores(mt.task)
        finally:
            if mt.lock is not None:
                mt.lock.close()
        log.info("task %s: closed%s", mt.task_id, "" if clean else " (unclean)")

    @staticmethod
    def _close_stores(task):
        for store in list(task.stores.values()):
            try:
                store.close()
            except Exception:  # noqa: BLE001
                log.debug("store close failed", exc_info=True)
        task.stores.clear()

    def close_all(self, clean):
        for mt in list(self.tasks.values()):
            try:
                self.close_task(mt, clean)
            except Exception:  # noqa: BLE001 - every task must get its close
                log.exception("closing task %s failed", mt.task_id)
        self.by_partition.clear()

    # --- processing -----------------------------------------------------------------------
    def process(self, batch):
        tp = (batch.topic, batch.partition)
        mt = self.by_partition.get(tp)
        if mt is None or mt.state != RUNNING:
            # Fetched before the pause took effect (or after a revocation): read it again
            # once the task runs.
            if mt is not None and self.consumer is not None:
                self.consumer.seek(kafka.TopicPartition(batch.topic, batch.partition,
                                                        batch.offsets[0]))
            return 0
        if tp not in self.rewind_to:
            self.rewind_to[tp] = batch.offsets[0]
        if mt.group is not None:
            if mt.group.add(batch) and tp not in self.paused and self.consumer is not None:
                self.consumer.pause([kafka.TopicPartition(*tp)])
                self.paused.add(tp)
            return 0
        mt.task.process(batch)
        self.consumed[tp] = batch.offsets[-1] + 1
        return len(batch.offsets)

    def process_buffered(self, now_ms):
        """Process what the tasks with more than one input buffered, in timestamp order
        (PartitionGroup); resume the partitions that drained below the bound."""
        n = 0
        lagging = None if self.consumer is None else self._lagging
        for mt in self.grouped:
            group = mt.group
            group.partitions = mt.partitions
            while True:
                batch = group.next_batch(now_ms, lagging)
                if batch is None:
                    break
                tp = (batch.topic, batch.partition)
                mt.task.process(batch)
                self.consumed[tp] = batch.offsets[-1] + 1
                n += len(batch.offsets)
            if self.paused:
                drained = [tp for tp in mt.partitions if tp in self.paused
                           and group.buffered(tp) <= group.max_buffered]
                if drained and self.consumer is not None:
                    self.consumer.resume([kafka.TopicPartition(*tp) for tp in drained])
                self.paused.difference_update(drained)
        return n

    def _lagging(self, tp):
        """Whether the broker holds records of ``tp`` past what was consumed: the high
        watermark of the last fetch (or, before any fetch, one asked of the broker at most
        every WATERMARK_QUERY_INTERVAL_S) against the consumer's position."""
        ktp = kafka.TopicPartition(*tp)
        try:
            high = self.consumer.get_watermark_offsets(ktp, cached=True)[1]
            if high is None or high < 0:
                now = time.monotonic()
                asked = self._watermarks.get(tp)
                if asked is None or now - asked[0] > WATERMARK_QUERY_INTERVAL_S:
                    high = self.consumer.get_watermark_offsets(ktp, timeout=1.0)[1]
                    self._watermarks[tp] = (now, high)
                else:
                    high = asked[1]
            pos = self.consumer.position([ktp])[0].offset
            if high is None or high < 0:
                return False
            if pos < 0:
                pos = self._start_offset(tp, ktp)
        except kafka.KafkaException:
            return False
        return 0 <= pos < high

    def _start_offset(self, tp, ktp):
        """Where consumption of ``tp`` starts in this assignment (nothing consumed yet): the
        group's committed offset, else the log start (auto.offset.reset=earliest); asked of
        the broker once per assignment."""
        start = self._start_offsets.get(tp)
        if start is None:
            got = self.consumer.committed([ktp], timeout=5)
            start = got[0].offset if got else -1
            if start < 0:
                start = self.consumer.get_watermark_offsets(ktp, timeout=1.0)[0]
            self._start_offsets[tp] = start
        return start

    def rewind_all(self):
        """Exactly-once, the transaction aborted: every running task drops its uncommitted
        state and recreates its processors; the consumer goes back to the committed
        positions (or to the first record processed, where nothing was committed yet)."""
        for mt in self.running():
            mt.task.rewind()
        seeks = []
        for tp, mt in self.by_partition.items():
            target = self.rewind_to.get(tp)
            buffered = mt.group is not None and mt.group.buffered(tp) > 0
            if mt.state == RUNNING and target is not None and (
                    self.consumed.get(tp) != target or buffered):
                seeks.append(kafka.TopicPartition(tp[0], tp[1], target))
        for mt in self.grouped:
            mt.group.drop()
        if self.paused and self.consumer is not None:
            self.consumer.resume([kafka.TopicPartition(*tp) for tp in self.paused])
        self.paused.clear()
        self.consumed = {tp: o for tp, o in self.committed.items() if tp in self.by_partition}
        if self.consumer is not None:
            for tp in seeks:
                self.consumer.seek(tp)
                self.moved.add((tp.topic, tp.partition))
        log.info("rewound %d task(s); %d partition(s) sought back to their committed offsets",
                 len(self.running()), len(seeks))

    def running(self):
        return [mt for mt in self.tasks.values() if mt.state == RUNNING]

    def commit_requested(self):
        return any(mt.task.commit_requested for mt in self.tasks.values())

    # --- commit support -------------------------------------------------------------------
    def pending_offsets(self):
        return {tp: o for tp, o in self.consumed.items() if self.committed.get(tp) != o}

    def write_checkpoints(self, force=True):
        """Write each running task's checkpoint. ``force=False`` (the interval commits)
        skips a task whose changelogs advanced by fewer than CHECKPOINT_DELTA records since
        this run last wrote its file, as Kafka Streams does: a checkpoint older than the
        stores is always safe (restoration replays the changelog from it, rewriting keys
        with the values they had since), only slower, and a file replaced with an fsync per
        task per commit was ~6% of the stream thread at a 1 s commit interval. The first
        checkpoint of a task and those of revocation and close are always written."""
        acked = self.changelog_producer.acked_offset
        for mt in self.running():
            if not mt.checkpointed or mt.task.directory is None:
                continue
            offsets = {}
            for tp, name in mt.changelogs.items():
                if not self.topology.store_spec(name).persistent:
                    continue
                pos = mt.positions.get(tp)
                a = acked(*tp)
                if a is not None and (pos is None or a > pos):
                    pos = a
                if pos is not None:
                    mt.positions[tp] = pos
                    offsets[tp] = pos
            if not offsets:
                continue
            written = mt.checkpoint_written
            if not force and written is not None:
                delta = sum(o - written.get(tp, 0) for tp, o in offsets.items())
                if delta < CHECKPOINT_DELTA:
                    continue
            if offsets != written:
                _persist_unlogged(mt.task)
                write_checkpoint(mt.task.directory, offsets)
                mt.checkpoint_written = offsets

    def distrust_local_state(self, mt):
        """A store of ``mt`` failed to write (full disk, I/O error): drop its checkpoint so
        that the next start wipes the local stores and restores them from the changelog."""
        if mt.task.directory is None:
            return
        try:
            os.unlink(checkpoint_path(mt.task.directory))
        except FileNotFoundError:
            pass
        except OSError as e:
            log.error("task %s: cannot remove the checkpoint after a store failure: %s",
                      mt.task_id, e)
        mt.checkpoint_written = None


def _persist_unlogged(task):
    """Stores that write without a WAL keep recent writes in memtables only: flush them to
    SST files before a checkpoint claims them (as Kafka Streams flushes before checkpointing)."""
    for store in getattr(task, "stores", {}).values():
        backend = getattr(store, "backend", None)
        if getattr(backend, "disable_wal", False):
            backend.persist()
