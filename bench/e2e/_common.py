"""Shared by the W1 worker processes: arguments, client settings, the steady-state probe.

Each worker is its own process so that its CPU time (user + sys, all threads, read with
getrusage(RUSAGE_SELF): the utime + stime of /proc/self/stat at microsecond resolution) is the
variant's alone. The probe samples CPU and wall time at the start of the first batch that
begins past the warm-up window (``--warmup`` input records, the same for every variant; 0: the
first batch) and once the N-th output is acknowledged, and the worker prints the result as one
JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

# Fast group joins on the test broker (TESTING.md): part of every variant.
CONSUMER_GROUP_SETTINGS = {
    "session.timeout.ms": 6000,
    "max.poll.interval.ms": 10000,
}

# Producer settings shared by every variant, so that they differ only in their processing.
# The queue bound is raised because every variant produces as fast as it consumes.
PRODUCER_SETTINGS = {
    "queue.buffering.max.messages": 1_000_000,
}

CONSUME_BATCH = 10_000


def tune_gc() -> None:
    """The stream thread's garbage-collector settings (cstreams.runtime.stream_thread), for a
    worker loop that must not pay for a collector cstreams does not run."""
    import gc

    from cstreams.runtime.stream_thread import GC_GEN0_THRESHOLD

    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], GC_GEN0_THRESHOLD), *threshold[1:])


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--records", type=int, required=True, help="records expected on the input")
    p.add_argument("--group", required=True, help="consumer group / application id")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--commit-interval-ms", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=300.0,
                   help="give up if the N-th output is not acknowledged by then (seconds)")
    p.add_argument("--guarantee", default="at_least_once",
                   choices=["at_least_once", "exactly_once_v2"])
    p.add_argument("--max-batch-latency-ms", type=float, default=None,
                   help="cstreams worker only: App(max_batch_latency_ms=...)")
    p.add_argument("--max-poll-records", type=int, default=None,
                   help="cstreams worker only: App(max_poll_records=...)")
    p.add_argument("--ablate", default="",
                   help="cstreams worker only: comma-separated optimisations to switch off "
                        "(bench/e2e/ablate.py)")
    p.add_argument("--warmup", type=int, default=0,
                   help="input records handed out before the measured window starts")
    p.add_argument("--api", default="papi", choices=["papi", "dsl"],
                   help="Kafka Streams worker only: W1 in the Processor API or the DSL")
    p.add_argument("--before", action="store_true",
                   help="floor worker only: the floor as it was before it matched cstreams' "
                        "client settings (bench/e2e/floor.py)")
    return p.parse_args()


def consumer_config(args: argparse.Namespace, **extra) -> dict:
    cfg = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **CONSUMER_GROUP_SETTINGS,
    }
    cfg.update(extra)
    return cfg


def producer_config(args: argparse.Namespace, **extra) -> dict:
    cfg = {"bootstrap.servers": args.bootstrap, **PRODUCER_SETTINGS}
    cfg.update(extra)
    return cfg


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class SteadyStateProbe:
    """Samples (wall, cpu) at process start, at the start of the first batch past the warm-up
    window, once the N-th input record has been processed (its output handed to the producer)
    and once the N-th output is acknowledged (flushed; for the stateful variants: its offsets
    committed).

    CPU per record is taken from the warm-up mark to last acknowledged output, divided by the
    records handed out after the mark (``measured_records``); records/s over the same records
    from the mark to N-th record processed, so that the wait for the next commit tick of the
    committing variants does not count as processing time.
    """

    def __init__(self, records: int, warmup: int = 0) -> None:
        if not 0 <= warmup <= records // 2:
            raise SystemExit(f"--warmup {warmup}: must be between 0 and half of {records}")
        self.records = records
        self.warmup = warmup
        self.start = (time.perf_counter(), cpu_seconds())
        self.first: tuple[float, float] | None = None
        self.processed: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None
        self.warmed_at = 0

    def first_output(self, consumed: int = 0) -> None:
        """Call at the start of each consumed batch with the input records handed out before
        it: the first call at or past the warm-up window takes the sample."""
        if self.first is None and consumed >= self.warmup:
            self.first = (time.perf_counter(), cpu_seconds())
            self.warmed_at = consumed
            # CPU of the thread that runs the processing loop (the caller, in every worker):
            # librdkafka's own threads left out, so less noisy than the process figure.
            self.first_thread = time.thread_time()

    def processed_all(self) -> None:
        if self.processed is None:
            self.processed = (time.perf_counter(), cpu_seconds())

    def last_output(self) -> None:
        if self.last is None:
            self.last = (time.perf_counter(), cpu_seconds())
            self.last_thread = time.thread_time()

    def report(self, variant: str, **extra) -> dict:
        if self.first is None or self.last is None or self.processed is None:
            raise RuntimeError(f"{variant}: the probe missed the first or the last output")
        wall = self.processed[0] - self.first[0]
        cpu = self.last[1] - self.first[1]
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out = {
            "variant": variant,
            "records": self.records,
            "measured_records": self.records - self.warmed_at,
            "warmup_records": self.warmed_at,
            "wall_s": wall,
            "cpu_s": cpu,
            "thread_cpu_s": self.last_thread - self.first_thread,
            "ack_wall_s": self.last[0] - self.first[0],
            "processing_cpu_s": self.processed[1] - self.first[1],
            "startup_wall_s": self.first[0] - self.start[0],
            "startup_cpu_s": self.first[1] - self.start[1],
            "total_cpu_s": ru.ru_utime + ru.ru_stime,
            "max_rss_kb": ru.ru_maxrss,
            "pid": os.getpid(),
        }
        out.update(extra)
        return out


def emit(result: dict) -> None:
    sys.stdout.write("W1RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
