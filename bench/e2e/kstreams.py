"""Variants kstreams-*: W1 in Kafka Streams (bench/kstreams, Java), measured like the others.

This worker starts the JVM (``java -cp bench/kstreams/target/classes:.../dependency/*
cstreams.bench.W1``, default JVM flags) as its child and reports the JVM's figures, not its
own. The JVM's consumer interceptor (bench/kstreams/.../Probe.java, one call per poll) prints
its process CPU (utime + stime of /proc/self/stat, all threads) at the first poll, at the first
poll that starts past the warm-up window (the same rule as the Python workers: the window also
keeps JIT compilation out of the measured CPU) and at the poll that hands out the N-th input
record. The last mark, the N-th output acknowledged, is taken here: this process polls the
group's committed offsets of the input topic (OffsetFetch, every 20 ms; at-least-once: Kafka
Streams commits them after flushing its producer; exactly_once_v2: with the transaction) and
reads the JVM's /proc/PID/stat as soon as they cover all N records. Polling from here costs the
JVM nothing; the mark is late by at most one poll interval, in which the JVM is idle but for
its background threads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import CONSUMER_GROUP_SETTINGS, emit, parse_args
from confluent_kafka import Consumer, TopicPartition

PROJECT = Path(__file__).resolve().parents[1] / "kstreams"
CLASSES = PROJECT / "target" / "classes"
JARS = PROJECT / "target" / "dependency"
TICK = os.sysconf("SC_CLK_TCK")


def classpath() -> str | None:
    if not (CLASSES / "cstreams" / "bench" / "W1.class").exists() or not JARS.is_dir():
        return None
    return f"{CLASSES}{os.pathsep}{JARS}/*"


def proc_cpu(pid: int) -> float:
    """utime + stime of the whole process, seconds (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def max_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Marks:
    """The W1PROBE lines of the JVM's stdout, by name: (handed out before, wall s, cpu s)."""

    def __init__(self, stream) -> None:
        self.marks: dict[str, tuple[int, float, float]] = {}
        self.started = threading.Event()
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if line.startswith("W1STARTED"):
                self.started.set()
            elif line.startswith("W1PROBE "):
                _, what, handed, nanos, utime, stime = line.split()
                self.marks[what] = (int(handed), int(nanos) / 1e9,
                                    (int(utime) + int(stime)) / TICK)


def main() -> None:
    args = parse_args(__doc__)
    variant = f"kstreams-{args.api}" + ("" if args.guarantee == "at_least_once" else "-eos")
    cp = classpath()
    if cp is None:
        emit({"variant": variant,
              "unavailable": f"{PROJECT} not built (mvn -q -f {PROJECT}/pom.xml package)"})
        return
    if not 0 <= args.warmup <= args.records // 2:
        raise SystemExit(f"--warmup {args.warmup}: must be between 0 and half of {args.records}")
    cmd = ["java", "-cp", cp, "cstreams.bench.W1", "--api", args.api,
           "--bootstrap", args.bootstrap, "--input", args.input, "--output", args.output,
           "--group", args.group, "--state-dir", args.state_dir, "--records", str(args.records),
           "--warmup", str(args.warmup), "--commit-interval-ms", str(args.commit_interval_ms),
           "--guarantee", args.guarantee]
    watcher = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                        "enable.auto.commit": False, **CONSUMER_GROUP_SETTINGS})
    md = watcher.list_topics(args.input, timeout=10)
    partitions = [TopicPartition(args.input, p) for p in md.topics[args.input].partitions]
    jvm = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=str(PROJECT))
    marks = Marks(jvm.stdout)
    acked = None
    try:
        deadline = time.monotonic() + args.timeout
        while acked is None:
            if jvm.poll() is not None:
                raise SystemExit(f"{variant}: the JVM exited with {jvm.returncode} "
                                 f"(marks {sorted(marks.marks)})")
            if time.monotonic() > deadline:
                raise SystemExit(f"{variant}: timed out, marks {marks.marks}")
            if "consumed" in marks.marks:
                try:
                    done = sum(max(tp.offset, 0) for tp in
                               watcher.committed(partitions, timeout=5))
                except Exception as exc:  # noqa: BLE001 - transient coordinator errors
                    print(f"committed(): {exc}", file=sys.stderr)
                    done = 0
                if done >= args.records:
                    acked = (time.monotonic_ns() / 1e9, proc_cpu(jvm.pid))
                    break
            time.sleep(0.02)
        rss = max_rss_kb(jvm.pid)
        total = proc_cpu(jvm.pid)
    finally:
        watcher.close()
        if jvm.poll() is None:
            jvm.send_signal(signal.SIGTERM)
            try:
                jvm.wait(60)
            except subprocess.TimeoutExpired:
                jvm.kill()
                jvm.wait()
        marks.thread.join(5)
    warm_at, warm_wall, warm_cpu = marks.marks["warm"]
    _, consumed_wall, consumed_cpu = marks.marks["consumed"]
    _, first_wall, first_cpu = marks.marks["first"]
    emit({
        "variant": variant,
        "records": args.records,
        "measured_records": args.records - warm_at,
        "warmup_records": warm_at,
        "wall_s": consumed_wall - warm_wall,
        "cpu_s": acked[1] - warm_cpu,
        "thread_cpu_s": None,
        "ack_wall_s": acked[0] - warm_wall,
        "processing_cpu_s": consumed_cpu - warm_cpu,
        "startup_cpu_s": first_cpu,
        "total_cpu_s": total,
        "max_rss_kb": rss,
        "pid": jvm.pid,
        "commit_interval_ms": args.commit_interval_ms,
        "implementation": "kafka-streams (JVM)",
        "marks": marks.marks,
    })


if __name__ == "__main__":
    main()
