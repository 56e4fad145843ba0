"""StreamThread: the poll loop of one app instance.

    consume(poll size) -> group by partition (one RecordBatch each, offset order)
    -> the partition's task processes the whole batch -> wall-clock punctuation
    -> commit on the interval (or when a processor asked)

A batch of a single-input task is processed at once. A task with more than one input (a
join, a merge) buffers its batches in a PartitionGroup, which releases them lowest next
timestamp first after each poll; a partition past the buffer bound is paused until it
drains. Partitions are also paused while their task restores its stores. Global stores are
restored before the group is joined and kept current between polls.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

from cstreams import _impl
from cstreams._impl import grouping, record
from cstreams.errors import CStreamsError, TaskMigratedError
from cstreams.internals import kafka
from cstreams.runtime import topics
from cstreams.runtime.batching import PollSizeController
from cstreams.runtime.changelog import ChangelogProducer
from cstreams.runtime.collector import RecordCollector
from cstreams.runtime.commit import Committer, TransactionalCommitter
from cstreams.runtime.global_state import GlobalStateUpdater
from cstreams.runtime.metrics import Metrics
from cstreams.runtime.restore import StoreRestorer
from cstreams.runtime.task_manager import TaskManager
from cstreams.runtime.transaction import TransactionalProducer

log = logging.getLogger("cstreams")

# Why the stream thread tunes the cyclic GC while it runs: in the W1 profile the GC took ~13%
# of the thread's samples. A poll allocates tens of thousands of GC-tracked objects (consumed
# Messages, decoded JSON dicts, batch lists) that reference counting frees within the same
# loop iteration, yet every 700 net allocations (the default gen0 threshold) start a young
# collection over them, and the older generations re-walk every long-lived object (store
# caches, topology, the imported modules). gc.freeze() at the start of the loop moves what
# start-up built into the permanent generation, never scanned again; a gen0 threshold of
# 100,000 makes collections a few per second instead of tens per poll. Cycles are still
# collected (they are rare on the hot path: no record object refers back to its batch).
# The settings are process-wide: the first running loop sets them, the last one to stop
# restores the thresholds it found and unfreezes.
GC_GEN0_THRESHOLD = 100_000
_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved = None


def _gc_tune():
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(_gc_saved[0], GC_GEN0_THRESHOLD), *_gc_saved[1:])
        _gc_users += 1


def _gc_restore():
    global _gc_users
    with _gc_lock:
        _gc_users -= 1
        if _gc_users == 0 and _gc_saved is not None:
            gc.set_threshold(*_gc_saved)
            gc.unfreeze()


class StreamThread:
    def __init__(self, app):
        self.app = app
        self.stop_event = threading.Event()
        self.started_event = threading.Event()
        self.error = None
        self.consumer = None
        self.native = None          # NativeConsumerQueue when the native data path is used
        self.collector = None
        self.changelog_producer = None
        self.restorer = None
        self.tasks = None
        self.committer = None
        self.transaction = None
        self.global_state = None
        self.metrics = Metrics(app.application_id, app.progress_interval_ms / 1000.0)
        self.poll_size = PollSizeController(app.max_batch_latency_ms, app.max_poll_records)
        self._group_messages = grouping.group_messages

    # --- startup --------------------------------------------------------------------------
    def _startup(self):
        app = self.app
        confs = app.client_configs
        admin = kafka.make_admin(confs["admin"])
        md = topics.fetch_metadata(admin, app.bootstrap_servers, app.metadata_timeout_s)
        internal = topics.internal_topic_specs(app.topology, md)
        if internal:
            topics.ensure_changelogs(admin, internal, md, what="internal",
                                     replication_factor=app.changelog_replication_factor,
                                     timeout=app.metadata_timeout_s)
            md = topics.fetch_metadata(admin, app.bootstrap_servers, app.metadata_timeout_s)
        counts = topics.source_partitions(app.topology, md)
        out_topics = set(app.topology.sink_topics())
        dlq = getattr(app.error_handler_obj, "topic", None)
        if dlq:
            out_topics.add(dlq)
        out_counts = topics.check_output_topics(sorted(out_topics), md)
        specs = topics.changelog_specs(app.topology, app.application_id, counts)
        topics.ensure_changelogs(admin, specs, md,
                                 replication_factor=app.changelog_replication_factor,
                                 timeout=app.metadata_timeout_s)
        eos = app.exactly_once
        if eos:
            # Before anything is restored: fences this instance's previous producer and
            # aborts the transaction it may have left open on the changelogs.
            self.transaction = TransactionalProducer(confs["producer"],
                                                     timeout=app.flush_timeout_s)
            self.transaction.init()
            self.collector = RecordCollector(None, transaction=self.transaction)
            self.changelog_producer = ChangelogProducer(None, transaction=self.transaction)
        else:
            self.collector = RecordCollector(
                confs["producer"], production_error_handler=app.production_error_handler)
            self.changelog_producer = ChangelogProducer(confs["changelog.producer"])
        self.collector.set_partition_counts(out_counts)
        self.restorer = StoreRestorer(confs["restore.consumer"])
        if app.topology.global_stores:
            # Restored in full before the group is joined: no task runs without them.
            self.global_state = GlobalStateUpdater(app.topology, app.application_id,
                                                   app.state_dir, confs["restore.consumer"])
            self.global_state.start(md, timeout=max(app.metadata_timeout_s, 300))
        self.tasks = TaskManager(
            app.topology, app.application_id, state_dir=app.state_dir,
            error_handler=app.error_handler, collector=self.collector,
            changelog_producer=self.changelog_producer, restorer=self.restorer,
            exactly_once=eos, cooperative=getattr(app, "cooperative", False),
        )
        if self.global_state is not None:
            self.tasks.global_stores = self.global_state.stores
        self.tasks.max_task_idle_ms = app.max_task_idle_ms
        self.tasks.buffered_records_per_partition = app.buffered_records_per_partition
        self.consumer = kafka.make_consumer(confs["consumer"])
        self.tasks.consumer = self.consumer
        self._native_data_path()
        if eos:
            self.committer = TransactionalCommitter(self.consumer, self.tasks, self.transaction)
            self.tasks.abort = self.committer.abort
        else:
            self.committer = Committer(self.consumer, self.tasks, self.collector,
                                       self.changelog_producer,
                                       flush_timeout=app.flush_timeout_s)
            self.committer.async_interval = getattr(app, "cooperative", False)
        self.tasks.commit = self.committer.commit
        subscription = list(app.topology.source_topics())
        for sub in app.topology.subtopologies:
            subscription += ["^" + p.pattern for p in sub.patterns]
        self.consumer.subscribe(subscription, on_assign=self.tasks.on_assign,
                                on_revoke=self.tasks.on_revoke, on_lost=self.tasks.on_lost)
        log.info("%s: started (%s), subscribed to %s, state in %s", app.application_id,
                 app.processing_guarantee, ", ".join(subscription), app.state_dir)

    def _native_data_path(self):
        """Take the consumer's records through cstreams._core.native when the selector says
        so; confluent-kafka's consumer keeps everything else."""
        native = _impl.native_kafka()
        if native is None:
            _impl.log_data_path(log)
            return
        try:
            self.native = native.NativeConsumerQueue(self.consumer, record.RecordBatch,
                                                     self.app.max_poll_records)
        except native.NativeUnavailable as e:
            _impl.native_unavailable(native, str(e))
            _impl.log_data_path(log, str(e))
            return
        self.tasks.route = self.native.route
        self.tasks.unroute = self.native.forget
        _impl.log_data_path(log)

    def _poll(self, max_records, timeout):
        """One poll: (batches, errors, records). Errors are (topic, partition, offset,
        code, reason, fatal) tuples."""
        native = self.native
        if native is None:
            msgs = self.consumer.consume(num_messages=max_records, timeout=timeout)
            if not msgs:
                return (), (), 0
            batches, errors = self._group_messages(msgs)
            return batches, [_error_of(m) for m in errors], len(msgs)
        # Records wait on the native queue; the consumer queue is served with no wait right
        # after (rebalance callbacks, client errors, max.poll.interval.ms liveness). Batches
        # of a partition revoked in between are dropped by TaskManager.process.
        batches, errors = native.consume_batches(max_records, timeout)
        moved = self.tasks.moved
        moved.clear()
        msgs = self.consumer.consume(num_messages=max_records, timeout=0)
        if moved and batches:
            # A callback just now assigned or sought these partitions back (a lost
            # partition's abort rewinds the tasks kept): their batches taken above precede
            # that and are dropped; librdkafka fetches them again from the new position.
            batches = [b for b in batches if (b.topic, b.partition) not in moved]
        errors = [e + (False,) for e in errors]
        n = sum(len(b.offsets) for b in batches) + len(errors)
        if msgs:
            more, more_errors = self._group_messages(msgs)
            batches = list(batches) + list(more)
            errors += [_error_of(m) for m in more_errors]
            n += len(msgs)
        return batches, errors, n

    # --- loop -----------------------------------------------------------------------------
    def run(self):
        try:
            try:
                self._startup()
            finally:
                self.started_event.set()
            _gc_tune()
            try:
                self._loop()
            finally:
                _gc_restore()
        except BaseException as e:  # noqa: BLE001 - surfaced by App.run()/close()
            self.error = e
            if self.tasks is not None:
                self.tasks.failed = True
            if isinstance(e, CStreamsError):
                log.error("%s: stopping on error: %s", self.app.application_id, e)
            else:
                log.exception("%s: stopping on an unexpected error", self.app.application_id)
        self._shutdown(clean=self.error is None)

    def _loop(self):
        while True:
            try:
                return self._stream_loop()
            except TaskMigratedError as e:
                self._task_migrated(e)

    def _task_migrated(self, e):
        """The broker fenced the producer after a transaction timeout (Kafka Streams: task
        migrated): replace the producer, close every task without a commit and create it
        again from what the broker holds. A failure here stops the instance.

        Nothing in memory is trusted: the last transaction's outcome is unknown here (the
        broker may have committed it, EndTxn logged before the fault, although the call
        failed), so rewinding to the offsets this instance last saw committed would process
        that transaction's input again over state without it. The new tasks restore their
        stores from the changelogs (read_committed) and the consumer resumes at the group's
        committed offsets, both of which include such a transaction or not, together."""
        log.warning("%s: %s; producer replaced, tasks closed without a commit and created "
                    "again from the changelogs and the committed offsets",
                    self.app.application_id, e)
        self.transaction.reset()
        self.collector.producer = self.transaction.producer
        self.changelog_producer.producer = self.transaction.producer
        consumer, tasks = self.consumer, self.tasks
        parts = [kafka.TopicPartition(tp.topic, tp.partition) for tp in consumer.assignment()]
        tasks.close_all(clean=False)     # uncommitted store writes are dropped, not flushed
        tasks.consumed.clear()
        tasks.committed.clear()
        tasks.rewind_to.clear()
        if parts:
            # Assigned again without offsets: positions come from the group's commits.
            if tasks.cooperative:
                consumer.incremental_unassign(parts)
            else:
                consumer.unassign()
            tasks.on_assign(consumer, parts)
        self.metrics.tasks_migrated += 1

    def _stream_loop(self):
        app = self.app
        poll = self._poll
        poll_size = self.poll_size
        max_records = poll_size.size
        poll_timeout = app.poll_timeout_ms / 1000.0
        commit_interval = app.commit_interval_ms / 1000.0
        next_commit = time.monotonic() + commit_interval
        tasks = self.tasks
        metrics = self.metrics
        clock = time.perf_counter
        global_state = self.global_state
        if self.transaction is not None:
            poll_producers = self.collector.poll     # one producer carries everything
        else:
            def poll_producers():
                self.collector.poll()
                self.changelog_producer.poll()
        while not self.stop_event.is_set():
            restoring = self.restorer.active
            if restoring:
                for task, offsets in self.restorer.step(timeout=0.05):
                    tasks.restored(task, offsets)
            if global_state is not None:
                global_state.poll()
            batches, errors, polled = poll(max_records, 0 if restoring else poll_timeout)
            if polled:
                t0 = clock()
                if errors:
                    self._consumer_errors(errors)
                for batch in batches:
                    metrics.records_in += tasks.process(batch)
                    metrics.batches_in += 1
                max_records = poll_size.observe(polled, clock() - t0)
            batches = errors = None
            if tasks.grouped:
                metrics.records_in += tasks.process_buffered(int(time.time() * 1000))
            poll_producers()
            now_ms = int(time.time() * 1000)
            for mt in tasks.running():
                mt.task.punctuate_wall_clock(now_ms)
            now = time.monotonic()
            if now >= next_commit or tasks.commit_requested():
                self.committer.commit("interval")
                next_commit = time.monotonic() + commit_interval
            metrics.maybe_sample_lag(now, self)
            metrics.maybe_report(now, self)

    def _consumer_errors(self, errors):
        for topic, partition, offset, code, reason, fatal in errors:
            if code == kafka.PARTITION_EOF:
                continue
            where = "" if topic is None else f" on {topic}-{partition} at offset {offset}"
            if fatal or code in (kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,
                                 kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED):
                raise CStreamsError(f"consumer error{where}: {reason}")
            log.warning("consumer%s: %s", where, reason)

    # --- shutdown -------------------------------------------------------------------------
    def _shutdown(self, clean):
        """Clean: commit, then leave the group (its revocation closes the tasks). Unclean:
        close tasks and clients without committing anything."""
        if clean and self.tasks is not None:
            try:
                self.committer.commit("close")
            except BaseException as e:  # noqa: BLE001
                log.error("%s: final commit failed: %s", self.app.application_id, e)
                self.error = e
                self.tasks.failed = True
        if self.tasks is not None and not clean:
            self.tasks.failed = True
        if self.native is not None:
            # Before the consumer's close: librdkafka's destroy waits for the queue's refs.
            self.tasks.route = self.tasks.unroute = None
            self.native.close()
        if self.consumer is not None:
            try:
                self.consumer.close()
            except Exception as e:  # noqa: BLE001
                # The revocation commit runs inside close(): surface its failure.
                if self.error is None:
                    self.error = e
                log.warning("consumer close: %s", e)
        if self.tasks is not None:
            self.tasks.close_all(clean=self.error is None)
        if self.transaction is not None:
            # Nothing uncommitted may survive: abort what a failure left open.
            self.transaction.close()
        if self.global_state is not None:
            self.global_state.close()
        for client in (self.restorer, self.collector, self.changelog_producer):
            if client is not None:
                try:
                    client.close() if client is self.restorer else client.close(
                        5.0 if self.error is None else 0)
                except Exception:  # noqa: BLE001
                    log.debug("client close failed", exc_info=True)
        log.info("%s: stopped%s", self.app.application_id,
                 "" if self.error is None else f" with error: {self.error}")

    def stop(self):
        self.stop_event.set()


def _error_of(m):
    """A confluent-kafka error Message as the (topic, partition, offset, code, reason,
    fatal) tuple the stream loop handles for both data paths."""
    err = m.error()
    return (m.topic(), m.partition(), m.offset(), err.code(), err.str(), err.fatal())
