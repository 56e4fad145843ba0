"""The HTTP endpoint of an instance: Prometheus metrics and health probes.

    App(..., metrics_port=9090)            or   cstreams run ... --metrics-port 9090
    GET /metrics        Prometheus text format (prometheus-client), from the same snapshot
                        as App.metrics(): every figure scraped is one metrics() reports
    GET /health/live    see cstreams.health
    GET /health/ready

A supervisor of worker processes (cstreams.workers) serves ONE endpoint for all its workers:
each worker publishes its metrics() snapshot to a file in the supervisor's status directory
twice a second, and the supervisor's collector exports every worker's figures with a
``worker`` label (the equivalent of prometheus-client's multiprocess mode, without its
per-process files of live values). Counters restart from 0 when a worker restarts, which
Prometheus' rate() reads as a counter reset.

Families (label ``application_id`` on all; ``worker`` under a supervisor):
  cstreams_records_in_total, _records_out_total, _batches_in_total, _records_skipped_total,
  _records_dead_lettered_total, _records_restored_total, _commits_total, ... (the counters of
  metrics()); gauges for the rest (commit latency, poll size, batch latency p50/p99/max,
  average batch size, readiness);
  cstreams_task_<counter>_total{task} (records_in, records_skipped, records_dead_lettered,
  records_late, ... as the task counts them), cstreams_task_running{task};
  cstreams_task_restored_records{task} while a task restores;
  cstreams_node_records_total{task,node}, cstreams_node_batches_total{task,node};
  cstreams_consumer_lag{topic,partition} (high watermark - committed offset),
  cstreams_consumer_position, cstreams_committed_offset, cstreams_high_watermark.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger("cstreams.metrics")

PREFIX = "cstreams_"

# Top-level keys of metrics() that only grow; every other number is a gauge.
COUNTERS = frozenset((
    "records_in", "batches_in", "records_out", "changelog_records_out", "records_restored",
    "records_skipped", "records_dead_lettered", "production_failures_ignored", "commits",
    "transactions_aborted",
))
PARTITION_GAUGES = (("lag", "consumer_lag", "high watermark - committed offset (>= 0)"),
                    ("position", "consumer_position", "next offset to process"),
                    ("committed", "committed_offset", "last committed offset"),
                    ("high_watermark", "high_watermark", "cached high watermark"))


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Families:
    """Metric families being built, one per name, samples from every source."""

    def __init__(self, base_labels):
        self.base_labels = list(base_labels)
        self.families = {}

    def add(self, kind, name, help_text, labels, values, value):
        fam = self.families.get(name)
        if fam is None:
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            fam = self.families[name] = cls(PREFIX + name, help_text,
                                            labels=self.base_labels + list(labels))
        fam.add_metric([str(v) for v in values], value)


def add_snapshot(fams, snap, label_values):
    """Add one instance's metrics() snapshot under ``label_values`` (for fams.base_labels)."""
    lv = list(label_values)
    for key, value in snap.items():
        if _number(value):
            fams.add("counter" if key in COUNTERS else "gauge", key, f"metrics()[{key!r}]",
                     (), lv, value)
    if snap.get("batches_in"):
        fams.add("gauge", "batch_size_avg", "records per batch since start", (), lv,
                 snap["records_in"] / snap["batches_in"])
    if "ready" in snap:
        fams.add("gauge", "ready", "1 when ready (see /health/ready)", (), lv,
                 1 if snap["ready"] else 0)
    for task_id, t in sorted(snap.get("tasks", {}).items()):
        for key, value in sorted(t.items()):
            if _number(value):
                fams.add("counter", f"task_{key}", f"per-task {key}", ("task",),
                         lv + [task_id], value)
        fams.add("gauge", "task_running", "1 when the task runs (0: restoring or closed)",
                 ("task",), lv + [task_id], 1 if t.get("state") == "running" else 0)
        for node, counts in sorted(t.get("nodes", {}).items()):
            for key, value in sorted(counts.items()):
                if _number(value):
                    fams.add("counter", f"node_{key}", f"per-node {key}", ("task", "node"),
                             lv + [task_id, node], value)
    for task_id, n in sorted(snap.get("restoring", {}).items()):
        fams.add("gauge", "task_restored_records", "records restored so far (restoring tasks)",
                 ("task",), lv + [task_id], n)
    for p in snap.get("partitions", ()):
        for key, name, help_text in PARTITION_GAUGES:
            if p.get(key) is not None:
                fams.add("gauge", name, help_text, ("topic", "partition"),
                         lv + [p["topic"], p["partition"]], p[key])


class SnapshotCollector:
    """A prometheus-client collector over ``sources()``: [(label values, snapshot)]."""

    def __init__(self, label_names, sources, extra=None):
        self.label_names = tuple(label_names)
        self.sources = sources
        self.extra = extra          # extra(fams): a supervisor's own figures

    def collect(self):
        fams = _Families(self.label_names)
        for label_values, snap in self.sources():
            add_snapshot(fams, snap, label_values)
        if self.extra is not None:
            self.extra(fams)
        return list(fams.families.values())


class MetricsServer:
    """/metrics, /health/live and /health/ready on (host, port) in a daemon thread.
    ``health()`` -> {"live": bool, "ready": bool, ...}. Port 0 picks a free port."""

    def __init__(self, collector, health, host="0.0.0.0", port=0):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.health = health
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                server._answer(self)

            def log_message(self, fmt, *args):
                log.debug("http: " + fmt, *args)

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="cstreams-metrics-http", daemon=True)
        self._thread.start()
        log.info("metrics and health on http://%s:%d (/metrics, /health/live, /health/ready)",
                 host, self.port)

    def _answer(self, req):
        path = req.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                body, ctype, code = generate_latest(self.registry), CONTENT_TYPE_LATEST, 200
            elif path in ("/health/live", "/health/ready"):
                h = self.health()
                ok = h["live"] if path.endswith("live") else h["ready"]
                body, ctype = json.dumps(h).encode(), "application/json"
                code = 200 if ok else 503
            else:
                body, ctype, code = b"not found\n", "text/plain", 404
        except Exception as e:  # noqa: BLE001 - a scrape must not kill the server
            log.exception("serving %s failed", path)
            body, ctype, code = f"error: {e}\n".encode(), "text/plain", 500
        req.send_response(code)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def close_in_child(self):
        """After fork(): drop the inherited listening socket, leave the parent's server be."""
        try:
            self._httpd.socket.close()
        except OSError:
            pass

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
