"""Counters of a running app: a snapshot dict and the periodic progress line.

Consumer lag per partition is sampled by the poll thread itself (``maybe_sample_lag``) and
published in the snapshot: confluent-kafka's get_watermark_offsets called from another thread
(a metrics scrape) stalled behind the poll loop. The high watermark is the cached one (updated
by every fetch, no request to the broker); some brokers report it below the real end of the
log (TESTING.md: the test broker does), so a lag is never below 0 and may read low there.
"""

from __future__ import annotations

import collections
import logging
import time

from cstreams import health
from cstreams.internals import kafka

log = logging.getLogger("cstreams.progress")

LAG_INTERVAL_S = 1.0


class Metrics:
    def __init__(self, application_id, progress_interval_s):
        self.application_id = application_id
        self.progress_interval_s = progress_interval_s
        self.records_in = 0
        self.batches_in = 0
        self.tasks_migrated = 0     # fenced producers replaced after a transaction timeout
        self.started = time.monotonic()
        self._last = (self.started, 0, 0)
        self._next_progress = self.started + progress_interval_s if progress_interval_s else None
        self.lag_interval_s = LAG_INTERVAL_S
        self._next_lag = self.started
        # [{"topic", "partition", "position", "committed", "high_watermark", "lag"}]
        self.partitions = []

    def maybe_sample_lag(self, now, thread):
        """Poll thread only: refresh ``partitions`` from the cached high watermarks."""
        if now < self._next_lag:
            return
        self._next_lag = now + self.lag_interval_s
        tasks = thread.tasks
        out = []
        for topic, partition in sorted(tasks.by_partition):
            tp = (topic, partition)
            position = tasks.consumed.get(tp)
            committed = tasks.committed.get(tp)
            try:
                _, high = thread.consumer.get_watermark_offsets(
                    kafka.TopicPartition(topic, partition), cached=True)
            except Exception:  # noqa: BLE001 - no fetch answered yet
                high = None
            if high is not None and high < 0:
                high = None
            base = committed if committed is not None else position
            lag = None if high is None or base is None else max(high - base, 0)
            out.append({"topic": topic, "partition": partition, "position": position,
                        "committed": committed, "high_watermark": high, "lag": lag})
        self.partitions = out

    def maybe_report(self, now, thread):
        if self._next_progress is None or now < self._next_progress:
            return
        self._next_progress = now + self.progress_interval_s
        t0, in0, out0 = self._last
        out = thread.collector.sent
        secs = max(now - t0, 1e-6)
        self._last = (now, self.records_in, out)
        lag = self.lag(thread)
        p50, p99, _ = thread.poll_size.latency_ms()
        log.info(
            "%s: in %.0f records/s, out %.0f records/s, lag %s, tasks %d running / %d, "
            "commits %d (last %.1f ms), restored %d, poll size %d, batch latency p50 %.1f ms "
            "p99 %.1f ms",
            self.application_id, (self.records_in - in0) / secs, (out - out0) / secs,
            "?" if lag is None else lag, len(thread.tasks.running()), len(thread.tasks.tasks),
            thread.committer.commits, thread.committer.last_latency_ms,
            thread.restorer.records_restored, thread.poll_size.size, p50, p99,
        )

    def lag(self, thread):
        """Sum of the last sampled per-partition lags, or None when none is known."""
        lags = [p["lag"] for p in self.partitions if p["lag"] is not None]
        return sum(lags) if lags else None

    def snapshot(self, thread):
        for _ in range(5):  # the loop thread may change the dicts while we copy them
            try:
                return self._snapshot(thread)
            except RuntimeError:
                time.sleep(0.001)
        return self._snapshot(thread)

    def _snapshot(self, thread):
        tasks = {}
        closed_nodes = thread.tasks.closed_node_metrics
        for tid, m in list(thread.tasks.closed_task_metrics.items()):
            tasks[tid] = dict(m, state="closed", nodes={
                name: dict(c) for name, c in closed_nodes.get(tid, {}).items()})
        for mt in list(thread.tasks.tasks.values()):
            m = collections.Counter(thread.tasks.closed_task_metrics.get(mt.task_id, {}))
            m.update(mt.task.metrics)
            nodes = {name: collections.Counter(c)
                     for name, c in closed_nodes.get(mt.task_id, {}).items()}
            for n in mt.task.nodes:
                nodes.setdefault(n.name, collections.Counter()).update(
                    records=n.records, batches=n.batches)
            tasks[mt.task_id] = dict(m, state=mt.state,
                                     nodes={name: dict(c) for name, c in nodes.items()})
        c = thread.committer
        p50, p99, worst = thread.poll_size.latency_ms()
        return {
            "application_id": self.application_id,
            "uptime_s": time.monotonic() - self.started,
            "records_in": self.records_in,
            "batches_in": self.batches_in,
            "records_out": thread.collector.sent,
            "changelog_records_out": thread.changelog_producer.sent,
            "records_restored": thread.restorer.records_restored,
            "records_skipped": sum(t.get("records_skipped", 0) for t in tasks.values()),
            "records_dead_lettered": sum(t.get("records_dead_lettered", 0)
                                         for t in tasks.values()),
            "production_failures_ignored": thread.collector.ignored_failures,
            "commits": c.commits,
            "transactions_aborted": getattr(c, "aborts", 0),
            "tasks_migrated": self.tasks_migrated,
            "commits_failed": getattr(c, "commits_failed", 0),
            "commit_latency_ms_last": c.last_latency_ms,
            "commit_latency_ms_avg": c.total_latency_ms / c.commits if c.commits else 0.0,
            "poll_size": thread.poll_size.size,
            "batch_latency_ms_p50": p50,
            "batch_latency_ms_p99": p99,
            "batch_latency_ms_max": worst,
            "max_batch_latency_ms": thread.poll_size.max_latency_ms,
            "tasks": tasks,
            "restoring": thread.restorer.progress(),
            "partitions": [dict(p) for p in self.partitions],
            **health.status(thread),
        }
