"""End-to-end throughput runner for workload W1 over a real (embedded Tansu) broker.

W1: an input topic with 8 partitions holding N records, key ``user-<i mod 10000>``, JSON value
``{"user": ..., "amount": i}``; count per key in a RocksDB store with changelog and produce
(key, count). The input is produced first, in large batches (the test broker serves about one
producer batch per partition per fetch, TESTING.md); then each variant runs as its own child
process (bench/e2e/*.py), reads the input from the beginning with its own consumer group and
writes its own output topic. The child measures its own steady state (CPU of all its threads
and wall time, from its first output to the moment its N-th output is acknowledged); this
runner verifies every output topic record by record and prints medians over the repeats.

Variants:
  floor         confluent-kafka consume + 5 Message fields + orjson.loads + produce of an
                8-byte value (explicit partition), no state, with cstreams' client settings
                (error-only delivery reports, no per-message offset store) and its GC tuning:
                the cost floor of the Python client (bench/e2e/floor.py)
  floor-before  the floor as it was before it matched cstreams (every delivery reported, the
                JSON value produced back, default GC)
  handwritten   a careful confluent-kafka + rocksdict batch loop doing W1
  cstreams      W1 as a cstreams topology (bench/e2e/w1_cstreams.py), at-least-once, on
                confluent-kafka's consume() (CSTREAMS_NATIVE_KAFKA=0, as every cstreams
                variant not named -native)
  cstreams-eos  the same with processing_guarantee="exactly_once_v2"
  cstreams-native, cstreams-native-eos
                the same two on the native data path (CSTREAMS_NATIVE_KAFKA=1: records taken
                from librdkafka in C and produced in C on a producer of cstreams' own,
                cstreams._core.native, issue 18)
  cstreams-no-gc, -no-produce, -no-keys, -no-checkpoint, cstreams-before
                cstreams at-least-once with one optimisation (all of them for "before")
                switched off in the worker (bench/e2e/ablate.py): each one's effect measured
                in the same run; not run unless named in --variants
  kstreams-papi, kstreams-papi-eos, kstreams-dsl, kstreams-dsl-eos
                W1 in Kafka Streams 4.3.1 (bench/kstreams, Java, built by Maven on first use):
                the Processor API (persistent store with changelog, no cache: every update
                produced, as cstreams) and the DSL (groupByKey().count() with its defaults,
                the record cache included: fewer output records), at-least-once and
                exactly_once_v2; the JVM's process CPU from /proc (bench/e2e/kstreams.py)
  cstreams-5ms, cstreams-100k
                cstreams at-least-once with max_poll_records=100000 and a 5 ms (resp. the
                default 100 ms) max_batch_latency_ms: adaptive batching at work

    python bench/e2e.py [--records 200000] [--repeat 3] [--variants floor,handwritten,...]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKERS = HERE / "e2e"

try:
    from cstreams.devbroker import DevBroker, create_topics
except ImportError:  # run from a checkout without an installed package
    sys.path.insert(0, str(ROOT))
    from cstreams.devbroker import DevBroker, create_topics

PARTITIONS = 8
DISTINCT_KEYS = 10_000

VARIANTS = {
    "floor": ("floor.py", []),
    "floor-before": ("floor.py", ["--before"]),
    "handwritten": ("handwritten.py", []),
    "cstreams": ("w1_cstreams.py", ["--guarantee", "at_least_once"]),
    "cstreams-eos": ("w1_cstreams.py", ["--guarantee", "exactly_once_v2"]),
    "cstreams-native": ("w1_cstreams.py", ["--guarantee", "at_least_once"]),
    "cstreams-native-eos": ("w1_cstreams.py", ["--guarantee", "exactly_once_v2"]),
    # Ablations (bench/e2e/ablate.py): cstreams at-least-once with one optimisation switched
    # off, or all of them ("before"); not run by default.
    "cstreams-no-gc": ("w1_cstreams.py", ["--ablate", "gc"]),
    "cstreams-no-produce": ("w1_cstreams.py", ["--ablate", "produce"]),
    "cstreams-no-keys": ("w1_cstreams.py", ["--ablate", "keys"]),
    "cstreams-no-checkpoint": ("w1_cstreams.py", ["--ablate", "checkpoint"]),
    "cstreams-before": ("w1_cstreams.py", ["--ablate", "gc,produce,keys,checkpoint"]),
    # Adaptive batching under a tight bound and a high ceiling: the poll size has to shrink.
    "cstreams-5ms": ("w1_cstreams.py", ["--max-batch-latency-ms", "5",
                                        "--max-poll-records", "100000"]),
    "cstreams-100k": ("w1_cstreams.py", ["--max-poll-records", "100000"]),
    # Kafka Streams (bench/kstreams), the JVM measured by the kstreams.py worker.
    "kstreams-papi": ("kstreams.py", ["--api", "papi"]),
    "kstreams-papi-eos": ("kstreams.py", ["--api", "papi", "--guarantee", "exactly_once_v2"]),
    "kstreams-dsl": ("kstreams.py", ["--api", "dsl"]),
    "kstreams-dsl-eos": ("kstreams.py", ["--api", "dsl", "--guarantee", "exactly_once_v2"]),
}
KSTREAMS = ("kstreams-papi", "kstreams-papi-eos", "kstreams-dsl", "kstreams-dsl-eos")
DEFAULT_VARIANTS = ("floor-before", "floor", "handwritten", "cstreams", "cstreams-eos",
                    "cstreams-native", "cstreams-native-eos")
COUNTING = {"handwritten", "cstreams", "cstreams-eos", "cstreams-native", "cstreams-native-eos",
            "cstreams-no-gc", "cstreams-no-produce",
            "cstreams-no-keys", "cstreams-no-checkpoint", "cstreams-before", "cstreams-5ms",
            "cstreams-100k", "kstreams-papi", "kstreams-papi-eos"}
# Counting variants whose output a record cache deduplicates per key between commits: each
# key's counts rise in offset order and end at the true count, with gaps.
DEDUPED = {"kstreams-dsl", "kstreams-dsl-eos"}


class InputInfo:
    """What the input holds: records per partition and the partition of every key."""

    def __init__(self, records: int) -> None:
        self.records = records
        self.per_partition: collections.Counter = collections.Counter()
        self.key_partition: dict[bytes, int] = {}

    def true_count(self, i: int) -> int:
        n = self.records
        return n // DISTINCT_KEYS + (1 if i < n % DISTINCT_KEYS else 0)


def produce_input(bootstrap: str, topic: str, records: int, linger_ms: int = 1000) -> InputInfo:
    """Produce W1's input in large batches; murmur2 partitioning, as Kafka's Java clients.

    The test broker serves about one producer batch per partition per fetch and ~0.5 s
    (TESTING.md): a long linger makes batches of thousands of records. (Kafka Streams still ran
    at ~2,000 records/s on it with 1 s: its pace comes from elsewhere, RESULTS.md.)"""
    import orjson
    from confluent_kafka import Producer

    info = InputInfo(records)
    errors: list = []

    def delivered(err, msg):
        if err is not None:
            errors.append(err)
            return
        p = msg.partition()
        info.per_partition[p] += 1
        info.key_partition[msg.key()] = p

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "linger.ms": linger_ms,
        "batch.size": 4_000_000,
        "batch.num.messages": 100_000,
        "queue.buffering.max.messages": max(100_000, records + 1000),
        "queue.buffering.max.kbytes": 2_000_000,
        "partitioner": "murmur2_random",
        "acks": "all",
    })
    dumps = orjson.dumps
    for i in range(records):
        user = f"user-{i % DISTINCT_KEYS}"
        producer.produce(topic, dumps({"user": user, "amount": i}), user.encode(),
                         on_delivery=delivered)
        if i % 50_000 == 49_999:
            producer.poll(0)
    left = producer.flush(120)
    if left or errors:
        raise RuntimeError(f"input not produced: {left} unacknowledged, errors {errors[:3]}")
    if sum(info.per_partition.values()) != records:
        raise RuntimeError(f"input: {sum(info.per_partition.values())} of {records} delivered")
    return info


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 120.0,
               read_committed: bool = False) -> dict[int, list[tuple[bytes, bytes]]]:
    """Every record of ``topic`` per partition, in offset order, read to partition EOF."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"w1-verify-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        "session.timeout.ms": 6000,
        "max.poll.interval.ms": 10000,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    records: dict[int, list] = {p: [] for p in range(PARTITIONS)}
    total = 0
    at_eof: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for m in consumer.consume(num_messages=10_000, timeout=1.0):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_eof.add(m.partition())
                        continue
                    raise RuntimeError(f"reading {topic}: {err}")
                at_eof.discard(m.partition())
                records[m.partition()].append((m.key(), m.value()))
                total += 1
            if len(at_eof) == PARTITIONS and total >= expected:
                break
    finally:
        consumer.close()
    return records


def verify(variant: str, records: dict[int, list], info: InputInfo) -> list[str]:
    """Problems found in one variant's output topic (empty: verified)."""
    problems: list[str] = []
    total = sum(len(v) for v in records.values())
    deduped = variant in DEDUPED
    if total != info.records and not (deduped and DISTINCT_KEYS <= total <= info.records):
        problems.append(f"{total} output records, expected {info.records}")
    if variant not in COUNTING and not deduped:
        for p, recs in records.items():
            if len(recs) != info.per_partition[p]:
                problems.append(f"partition {p}: {len(recs)} records, "
                                f"input has {info.per_partition[p]}")
            bad = sum(1 for k, _ in recs if info.key_partition.get(k) != p)
            if bad:
                problems.append(f"partition {p}: {bad} records whose key the input has elsewhere")
        return problems
    last: dict[bytes, int] = {}
    for p, recs in records.items():
        for offset, (key, value) in enumerate(recs):
            if info.key_partition.get(key) != p:
                problems.append(f"partition {p} offset {offset}: key {key!r} is in input "
                                f"partition {info.key_partition.get(key)}")
                break
            count = int.from_bytes(value, "big", signed=True)
            if count != last.get(key, 0) + 1 and not (deduped and count > last.get(key, 0)):
                problems.append(f"partition {p} offset {offset}: key {key!r} count {count} "
                                f"after {last.get(key, 0)}")
                break
            last[key] = count
    for i in range(DISTINCT_KEYS):
        key = f"user-{i}".encode()
        want = info.true_count(i)
        if want and last.get(key) != want:
            problems.append(f"key {key!r}: last count {last.get(key)}, expected {want}")
            break
    return problems


def run_variant(variant: str, rep: int, bootstrap: str, input_topic: str, info: InputInfo,
                workdir: Path, args: argparse.Namespace, profile_run: bool = False) -> dict:
    script, extra = VARIANTS[variant]
    name = f"{variant}-{'profile' if profile_run else rep}"
    group = f"w1-{name}-{uuid.uuid4().hex[:6]}"
    output = f"w1-out-{name}-{args.run_tag}"
    topics = [(output, PARTITIONS)]
    if variant == "handwritten":
        topics.append((f"{group}-counts-changelog", PARTITIONS, {"cleanup.policy": "compact"}))
    create_topics(bootstrap, topics)
    state_dir = workdir / "state" / name
    state_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, str(WORKERS / script),
        "--bootstrap", bootstrap, "--input", input_topic, "--output", output,
        "--records", str(info.records), "--group", group, "--state-dir", str(state_dir),
        "--commit-interval-ms", str(args.commit_interval_ms),
        "--timeout", str(args.timeout), "--warmup", str(args.warmup), *extra,
    ]
    profile = None
    if profile_run:
        profile = workdir / f"{name}.speedscope.json"
        cmd = ["py-spy", "record", "--native", "--rate", str(args.profile_rate),
               "--format", "speedscope", "-o", str(profile), "--", *cmd]
    env = dict(os.environ)
    if variant.startswith("cstreams"):
        # The data path: native only where the variant says so (issue 18).
        env["CSTREAMS_NATIVE_KAFKA"] = "1" if "-native" in variant else "0"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    out_path, err_path = workdir / f"{name}.out", workdir / f"{name}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=str(ROOT))
        try:
            rc = proc.wait(timeout=args.timeout + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = "timeout"
    result = None
    for line in out_path.read_text().splitlines():
        if line.startswith("W1RESULT "):
            result = json.loads(line[len("W1RESULT "):])
    if result is None or rc != 0:
        tail = "\n".join(err_path.read_text(errors="replace").splitlines()[-15:])
        return {"variant": variant, "rep": rep, "error": f"exit {rc}; stderr tail:\n{tail}"}
    result["worker_variant"] = result.get("variant")
    result["variant"] = variant      # the runner's name (ablations share one worker)
    result["rep"] = rep
    if profile is not None:
        result["profile"] = str(profile)
        result["profiled"] = True
    if result.get("unavailable"):
        return result
    # A deduplicated output holds at least one record per key and at most one per input record.
    expected = min(DISTINCT_KEYS, info.records) if variant in DEDUPED else info.records
    recs = read_topic(bootstrap, output, expected, read_committed=variant.endswith("eos"))
    result["output_records"] = sum(len(v) for v in recs.values())
    result["problems"] = verify(variant, recs, info)
    return result


def build_kstreams() -> None:
    """Build bench/kstreams with Maven (jars from Maven Central, output in its target/)."""
    project = HERE / "kstreams"
    stamp = project / "target" / ".built"
    sources = [project / "pom.xml", *(project / "src").rglob("*.java")]
    if stamp.exists() and all(f.stat().st_mtime <= stamp.stat().st_mtime for f in sources):
        return
    print(f"building {project} (mvn package)", flush=True)
    subprocess.run(["mvn", "-q", "-B", "-f", str(project / "pom.xml"), "package"], check=True)
    stamp.touch()


def _median_spread(xs: list[float]) -> tuple[float, float, float]:
    return statistics.median(xs), min(xs), max(xs)


def _fmt(xs: list[float], digits: int) -> str:
    med, lo, hi = _median_spread(xs)
    if len(xs) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


def table(results: list[dict], variants: list[str], records: int) -> str:
    floor_by_rep = {r["rep"]: r["cpu_s"] * 1e6 / _n(r)
                    for r in results if r["variant"] == "floor" and _ok(r)}
    floor_thread = {r["rep"]: r["thread_cpu_s"] * 1e6 / _n(r)
                    for r in results if r["variant"] == "floor" and _ok(r)
                    and r.get("thread_cpu_s")}
    header = ("variant", "measured records", "wall s", "records/s", "CPU us/record", "x floor",
              "loop-thread CPU us/record", "x floor (thread)", "final poll size",
              "batch latency p50 / p99 ms")
    rows = [header]
    for v in variants:
        rs = [r for r in results if r["variant"] == v]
        ok = [r for r in rs if _ok(r)]
        if not rs:
            continue
        if any(r.get("unavailable") for r in rs):
            rows.append((v, str(records), "not available yet", "", "", "", "", "", "", ""))
            continue
        if not ok:
            rows.append((v, str(records), "FAILED", "", "", "", "", "", "", ""))
            continue
        wall = [r["wall_s"] for r in ok]
        rate = [_n(r) / r["wall_s"] for r in ok]
        us = [r["cpu_s"] * 1e6 / _n(r) for r in ok]
        ratio = [r["cpu_s"] * 1e6 / _n(r) / floor_by_rep[r["rep"]]
                 for r in ok if r["rep"] in floor_by_rep]
        tus = [r["thread_cpu_s"] * 1e6 / _n(r) for r in ok if r.get("thread_cpu_s")]
        tratio = [r["thread_cpu_s"] * 1e6 / _n(r) / floor_thread[r["rep"]]
                  for r in ok if r.get("thread_cpu_s") and r["rep"] in floor_thread]
        sizes = [r["poll_size"] for r in ok if r.get("poll_size") is not None]
        lat = [(r["batch_latency_ms_p50"], r["batch_latency_ms_p99"]) for r in ok
               if r.get("batch_latency_ms_p50") is not None]
        rows.append((
            v + ("" if len(ok) == len(rs) else f" ({len(rs) - len(ok)} failed)"),
            _fmt([_n(r) for r in ok], 0), _fmt(wall, 2), _fmt(rate, 0), _fmt(us, 2),
            _fmt(ratio, 2) if ratio else "-",
            _fmt(tus, 2) if tus else "-",
            _fmt(tratio, 2) if tratio else "-",
            _fmt(sizes, 0) if sizes else "-",
            (f"{statistics.median(a for a, _ in lat):.1f} / "
             f"{statistics.median(b for _, b in lat):.1f}") if lat else "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _n(r: dict) -> int:
    """The records of the measured window: those handed out after the warm-up mark."""
    return r.get("measured_records") or r["records"]


def _ok(r: dict) -> bool:
    return "error" not in r and not r.get("unavailable") and not r.get("problems")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help="comma-separated subset of: " + ", ".join(VARIANTS))
    p.add_argument("--commit-interval-ms", type=int, default=1000,
                   help="commit interval of the stateful variants (default 1000)")
    p.add_argument("--timeout", type=float, default=300.0, help="per-variant timeout, seconds")
    p.add_argument("--workdir", default=None,
                   help="where the broker log, worker outputs and state go (default: a new "
                        "temp dir, kept)")
    p.add_argument("--json", default=None, help="also write every result to this file")
    p.add_argument("--profile", default="",
                   help="comma-separated variants to run once more, after the repeats, under "
                        "`py-spy record --native` (speedscope file in the workdir, hot spots "
                        "printed; timings distorted by the sampling, left out of the table)")
    p.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--warmup", type=int, default=None,
                   help="input records every variant hands out before its measured window "
                        "starts (default: a fifth of --records)")
    p.add_argument("--input-linger-ms", type=int, default=1000,
                   help="linger.ms of the producer that writes the input (default 1000: "
                        "batches of thousands of records per partition)")
    p.add_argument("--bootstrap", default=None,
                   help="run against this broker (e.g. an Apache Kafka cluster) instead of "
                        "starting the embedded Tansu broker; topic names get a run suffix")
    args = p.parse_args()
    if args.warmup is None:
        args.warmup = args.records // 5
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    args.profile = {v.strip() for v in args.profile.split(",") if v.strip()}
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")

    if any(v in KSTREAMS for v in variants):
        build_kstreams()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="cstreams-e2e-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"workdir {workdir} (broker log, worker stdout/stderr, state)", flush=True)
    broker = None if args.bootstrap else DevBroker(log_path=str(workdir / "broker.log"))
    args.run_tag = uuid.uuid4().hex[:6]
    results: list[dict] = []
    try:
        if broker is None:
            bootstrap = args.bootstrap
            print(f"broker {bootstrap} (external)", flush=True)
        else:
            broker.start()
            bootstrap = broker.bootstrap_servers
            print(f"broker {bootstrap} pid {broker.pid}", flush=True)
        input_topic = f"w1-input-{args.run_tag}"
        create_topics(bootstrap, [(input_topic, PARTITIONS)])
        t0 = time.perf_counter()
        info = produce_input(bootstrap, input_topic, args.records, args.input_linger_ms)
        print(f"input: {args.records} records in {time.perf_counter() - t0:.1f}s, "
              f"per partition {dict(sorted(info.per_partition.items()))}", flush=True)
        for rep in range(args.repeat):
            order = variants[rep % len(variants):] + variants[:rep % len(variants)]
            for v in order:
                r = run_variant(v, rep, bootstrap, input_topic, info, workdir, args)
                results.append(r)
                print(_describe(r), flush=True)
        for v in variants:
            if v in args.profile:
                r = run_variant(v, args.repeat, bootstrap, input_topic, info, workdir, args,
                                profile_run=True)
                results.append(r)
                print(_describe(r) + "  (under py-spy: not in the table)", flush=True)
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir / "state", ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    (workdir / "results.json").write_text(json.dumps(results, indent=1))
    print()
    print(f"W1, {args.records} records, {PARTITIONS} partitions, {DISTINCT_KEYS} keys, "
          f"commit interval {args.commit_interval_ms} ms, {args.repeat} repeat(s): "
          f"median [min-max]; CPU = user+sys of the worker process from the first batch "
          f"past the warm-up window ({args.warmup} input records) to the last acknowledged "
          f"output, per record handed out after that mark")
    print(table([r for r in results if not r.get("profiled")], variants, args.records))
    for r in results:
        if r.get("profile") and Path(r["profile"]).exists():
            sys.path.insert(0, str(WORKERS))
            from hotspots import summarize

            print(f"\npy-spy profile of {r['variant']} (rep {r['rep']}): {r['profile']}")
            print(summarize(r["profile"]))
    return 0 if all(_ok(r) or r.get("unavailable") for r in results) else 1


def _describe(r: dict) -> str:
    head = f"  rep {r['rep']} {r['variant']:<13}"
    if "error" in r:
        return f"{head} ERROR {r['error']}"
    if r.get("unavailable"):
        return f"{head} not available yet ({r['unavailable']})"
    us = r["cpu_s"] * 1e6 / _n(r)
    status = "verified" if not r["problems"] else "OUTPUT WRONG: " + "; ".join(r["problems"])
    batching = ""
    if r.get("poll_size") is not None:
        batching = (f"  poll size {r['poll_size']}, batch latency p50 "
                    f"{r['batch_latency_ms_p50']:.1f} / p99 {r['batch_latency_ms_p99']:.1f} / "
                    f"max {r['batch_latency_ms_max']:.1f} ms")
    if r.get("thread_cpu_s"):
        batching = (f"  loop thread {r['thread_cpu_s'] * 1e6 / _n(r):.2f} us/record"
                    + batching)
    if r.get("output_records") not in (None, r["records"]):
        status += f" ({r['output_records']} output records)"
    return (f"{head} wall {r['wall_s']:.2f}s  cpu {r['cpu_s']:.2f}s  {us:.2f} us/record  "
            f"(startup {r['startup_cpu_s']:.2f}s cpu)  {status}{batching}")


if __name__ == "__main__":
    sys.exit(main())
