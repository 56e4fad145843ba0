"""Worker processes on this machine: a CPU-bound topology at --processes 1 and 2, same run.

Topology (``topology()`` below, run by ``cstreams run ... --processes N``): BYTES source ->
a per-record Python transform (an FNV-1a hash over the value, ROUNDS passes: several
microseconds of Python per record, measured and printed) -> BYTES sink. No state: the cost is
the transform plus the engine's per-record work.

For each N the runner starts the CLI supervisor on a fresh application id (the input is read
from the beginning, each run writes its own output topic) and scrapes its metrics endpoint
every 0.1 s. Steady state is the span from the first scrape where the workers' records_in is
above 0 to the first where their records_out reached every input record; records/s is the
input over that span, CPU per record the CPU (user+system, /proc) the worker processes spent
over it divided by the input. The broker's CPU over the same span is reported too: it runs
on the same two cores; and the time the workers' threads were runnable but waiting for a CPU
(/proc schedstat) per second of the span, which is what other load on the machine costs.
Every output is read back and checked (count and hash sum).

    python bench/workers_scaling.py [--records 300000] [--partitions 4] [--processes 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ROUNDS = int(os.environ.get("CSTREAMS_BENCH_ROUNDS", "1"))
VALUE_BYTES = 32


def transform(value):
    """FNV-1a over the value, ROUNDS times: pure Python, a few microseconds."""
    h = 2166136261
    for _ in range(ROUNDS):
        for b in value:
            h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h.to_bytes(4, "big")


def topology():
    import cstreams as cs
    from cstreams.processors import MapValuesProcessor

    t = cs.Topology()
    t.add_source("in", topics=[os.environ["BENCH_IN"]], key_serde=cs.serde.BYTES,
                 value_serde=cs.serde.BYTES)
    t.add_processor("transform", lambda: MapValuesProcessor(transform), parents=["in"])
    t.add_sink("out", topic=os.environ["BENCH_OUT"], parents=["transform"],
               key_serde=cs.serde.BYTES, value_serde=cs.serde.BYTES)
    return t


def value_of(i):
    return f"{i:0{VALUE_BYTES}d}".encode()


def transform_cost_us(n=20_000):
    vals = [value_of(i) for i in range(n)]
    t0 = time.process_time()
    for v in vals:
        transform(v)
    return (time.process_time() - t0) / n * 1e6


def produce_input(bootstrap, topic, records):
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 100, "batch.size": 4_000_000,
                  "batch.num.messages": 100_000,
                  "queue.buffering.max.messages": max(100_000, records + 1000),
                  "queue.buffering.max.kbytes": 2_000_000, "partitioner": "murmur2_random"})
    for i in range(records):
        p.produce(topic, value_of(i), f"k{i}".encode())
        if i % 50_000 == 49_999:
            p.poll(0)
    if p.flush(120):
        raise RuntimeError("input not produced")


def read_output(bootstrap, topic, partitions, expected, timeout=180):
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex}",
                  "enable.partition.eof": True, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    n, total, eof = 0, 0, set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (n >= expected and len(eof) == partitions):
        for m in c.consume(10_000, 0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise RuntimeError(m.error())
            eof.discard(m.partition())
            n += 1
            total += int.from_bytes(m.value(), "big")
    c.close()
    return n, total


def proc_cpu(pid):
    """user+system CPU seconds of a live process (and its waited-for children), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def runqueue_wait(pid):
    """Seconds the threads of a live process spent runnable but waiting for a CPU
    (/proc/PID/task/*/schedstat, second field): what other load on the cores costs it."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def scrape(port):
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        body = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            # A supervisor labels each worker; a single process (N=1) is worker "0".
            if set(s.labels) <= {"application_id", "worker"}:
                out.setdefault(s.name, {})[s.labels.get("worker", "0")] = s.value
    return out


def run_once(broker, in_topic, partitions, records, processes, workdir):
    from cstreams.devbroker import create_topics, free_port

    out_topic = f"bench-out-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap_servers, [(out_topic, partitions)])
    port = free_port()
    env = dict(os.environ, BENCH_IN=in_topic, BENCH_OUT=out_topic,
               PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH",
                                                                                 "")]))
    args = [sys.executable, "-m", "cstreams", "run", "workers_scaling:topology",
            "--application-id", f"bench-workers-{uuid.uuid4().hex[:8]}",
            "--bootstrap-servers", broker.bootstrap_servers,
            "--state-dir", str(workdir / f"state-{processes}"), "--processes", str(processes),
            "--metrics-port", str(port), "--metrics-host", "127.0.0.1",
            "--progress-interval-ms", "600000", "--log-level", "WARNING",
            "--config", "session.timeout.ms=6000", "--config", "max.poll.interval.ms=10000",
            "--config", "queue.buffering.max.messages=1000000"]
    log = open(workdir / f"run-{processes}.log", "w")
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        start = end = None
        deadline = time.monotonic() + 600
        while end is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"run N={processes} failed: "
                                   f"{(workdir / f'run-{processes}.log').read_text()[-2000:]}")
            try:
                s = scrape(port)
            except OSError:
                time.sleep(0.1)
                continue
            pids = s.get("cstreams_pid", {}) if processes > 1 else {"0": proc.pid}
            rin = sum(s.get("cstreams_records_in_total", {}).values())
            rout = sum(s.get("cstreams_records_out_total", {}).values())
            now = time.monotonic()
            if start is None and rin > 0 and len(pids) == processes:
                start = (now, rin, {w: proc_cpu(int(p)) for w, p in pids.items()},
                         proc_cpu(broker.pid),
                         sum(runqueue_wait(int(p)) for p in pids.values()))
            elif start is not None and rout >= records:
                end = (now, {w: proc_cpu(int(p)) for w, p in pids.items()},
                       proc_cpu(broker.pid), s,
                       sum(runqueue_wait(int(p)) for p in pids.values()))
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
        log.close()
    t0, in0, cpu0, b0, rq0 = start
    t1, cpu1, b1, s, rq1 = end
    if set(cpu0) != set(cpu1):
        raise RuntimeError("a worker restarted during the measurement")
    n = records - in0          # records processed inside the measured span
    if n < records // 2:
        raise RuntimeError(f"N={processes}: the span missed most records ({n}): use more")
    secs = t1 - t0
    workers_cpu = sum(cpu1[w] - cpu0[w] for w in cpu1)
    per_worker = {w: int(v) for w, v in s["cstreams_records_in_total"].items()}
    got, total = read_output(broker.bootstrap_servers, out_topic, partitions, records)
    return {"processes": processes, "loadavg_1min": os.getloadavg()[0],
            "records_in_span": n, "seconds": secs,
            "records_per_s": n / secs, "cpu_us_per_record": workers_cpu / n * 1e6,
            "broker_cpu_us_per_record": (b1 - b0) / n * 1e6,
            "cpu_util_workers": workers_cpu / secs, "runqueue_wait_s": rq1 - rq0,
            "per_worker_records": per_worker,
            "output_records": got, "output_hash_sum": total, "exit_code": code}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--processes", default="1,2")
    args = ap.parse_args(argv)
    from cstreams._impl import IMPLEMENTATION
    from cstreams.devbroker import DevBroker, create_topics

    cost = transform_cost_us()
    expected_sum = sum(int.from_bytes(transform(value_of(i)), "big")
                       for i in range(args.records))
    workdir = Path(tempfile.mkdtemp(prefix="cstreams-bench-workers-"))
    with DevBroker() as broker:
        in_topic = f"bench-in-{uuid.uuid4().hex[:8]}"
        create_topics(broker.bootstrap_servers, [(in_topic, args.partitions)])
        produce_input(broker.bootstrap_servers, in_topic, args.records)
        results = []
        for n in (int(x) for x in args.processes.split(",")):
            r = run_once(broker, in_topic, args.partitions, args.records, n, workdir)
            ok = (r["output_records"] == args.records and r["output_hash_sum"] == expected_sum
                  and r["exit_code"] == 0)
            r["verified"] = ok
            results.append(r)
            print(json.dumps(r), flush=True)
            if not ok:
                raise SystemExit(f"N={n}: output not verified: {r}")
    base = results[0]["records_per_s"]
    print(f"\ncore: {IMPLEMENTATION}; transform alone: {cost:.1f} us/record (ROUNDS={ROUNDS}); "
          f"{args.records} records, {args.partitions} partitions, {os.cpu_count()} CPUs; "
          f"load average at the end of each run: "
          + ", ".join(f"{r['loadavg_1min']:.1f}" for r in results))
    print(f"{'N':>3} {'records/s':>10} {'speedup':>8} {'CPU us/rec':>11} "
          f"{'broker us/rec':>14} {'worker CPU util':>16} {'waiting for a CPU':>18}  "
          f"records per worker")
    for r in results:
        print(f"{r['processes']:>3} {r['records_per_s']:>10.0f} "
              f"{r['records_per_s'] / base:>7.2f}x {r['cpu_us_per_record']:>11.1f} "
              f"{r['broker_cpu_us_per_record']:>14.1f} {r['cpu_util_workers']:>16.2f} "
              f"{r['runqueue_wait_s'] / r['seconds']:>17.2f}s/s  "
              f"{r['per_worker_records']}")


if __name__ == "__main__":
    main()
