"""The at-least-once commit protocol, in this order (a failure at any step stops it):

1. every running task flushes its stores: one write batch per store, changelog records sent;
2. both producers flush: every sink, dead-letter and changelog record is acknowledged, and a
   remembered delivery failure raises ProductionError;
3. the consumer commits synchronously, per partition, the offset after the last record
   processed;
4. every task with persistent logged stores writes its checkpoint file (next changelog offset
   per changelog partition, as acknowledged by the changelog producer).

Nothing is committed past unacknowledged output.
"""

from __future__ import annotations

import logging
import time

from cstreams import kafka
from cstreams.runtime.errors import CommitError

log = logging.getLogger("cstreams.commit")


class Committer:
    def __init__(self, consumer, task_manager, collector, changelog_producer, *,
                 flush_timeout=60.0):
        self.consumer = consumer
        self.tasks = task_manager
        self.collector = collector
        self.changelog_producer = changelog_producer
        self.flush_timeout = flush_timeout
        self.commits = 0
        self.last_latency_ms = 0.0
        self.total_latency_ms = 0.0

    def commit(self, reason="interval"):
        if self.tasks.failed:
            raise CommitError("refusing to commit after a failure")
        t0 = time.perf_counter()
        for mt in self.tasks.running():
            mt.task.flush_stores()
            mt.task.commit_requested = False
        self.changelog_producer.flush(self.flush_timeout)
        self.collector.flush(self.flush_timeout)
        offsets = self.tasks.pending_offsets()
        if offsets:
            tps = [kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            try:
                result = self.consumer.commit(offsets=tps, asynchronous=False)
            except kafka.KafkaException as e:
                raise CommitError(f"committing offsets failed: {e.args[0] if e.args else e}"
                                  ) from None
            for tp in result or ():
                if tp.error is not None:
                    raise CommitError(f"committing offset {tp.offset} of {tp.topic}-"
                                      f"{tp.partition} failed: {tp.error}")
            self.tasks.committed.update(offsets)
        self.tasks.write_checkpoints()
        ms = (time.perf_counter() - t0) * 1000.0
        self.commits += 1
        self.last_latency_ms = ms
        self.total_latency_ms += ms
        log.debug("commit (%s): %d partition(s) in %.1f ms", reason, len(offsets), ms)
