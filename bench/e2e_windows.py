"""W2 end to end over the embedded broker: windowed counts against the client floor, same run.

W2 (issue 14): N records (default 200,000; the issue's figure is 1,000,000), 10,000 keys,
JSON values {"user", "amount"}, event timestamps (the Kafka timestamps) spread over one hour
with up to 5 s of disorder, 8 partitions (murmur2 by key). Cases: tumbling 1-minute count,
hopping 5-minute windows advancing by 1 minute, session count with a 30 s gap; emit final or
update; grace 5 s (the disorder bound: no record is late, so every count is checked exactly).

Each round runs bench/e2e/floor.py (the floor as in W1: consume, read fields, orjson.loads,
produce with explicit partitions) and then each case through bench/e2e's cstreams worker with
the W2 topology (bench/windows_e2e/w2_cstreams.py), each a child process measuring its own
CPU (bench/e2e/_common.py's probe). The runner verifies every case's output: final: each
closed window once with its exact count; update: the last value of every window exact.

    python bench/e2e_windows.py [--records 200000] [--repeat 3] [--cases tumbling,hopping]
                                [--emits final,update]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from cstreams.devbroker import DevBroker, create_topics  # noqa: E402

PARTITIONS = 8
KEYS = 10_000
HOUR = 3_600_000
DISORDER_MS = 5_000
GRACE_MS = 5_000
BASE_TS = 1_700_000_000_000
WINDOWS = {"tumbling": (60_000, 60_000), "hopping": (300_000, 60_000)}
GAP_MS = 30_000


def produce_input(bootstrap, topic, n, seed=14):
    """W2's input; returns [(key, timestamp)] in production order and the partition of each
    key (from the delivery reports)."""
    import orjson
    from confluent_kafka import Producer

    rng = random.Random(seed)
    key_partition = {}
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(err)
        else:
            key_partition[msg.key()] = msg.partition()

    producer = Producer({
        "bootstrap.servers": bootstrap, "linger.ms": 100, "batch.size": 4_000_000,
        "batch.num.messages": 100_000, "queue.buffering.max.messages": max(100_000, n + 1000),
        "queue.buffering.max.kbytes": 2_000_000, "partitioner": "murmur2_random", "acks": "all",
    })
    records = []
    for i in range(n):
        user = f"user-{rng.randrange(KEYS):05d}"
        ts = BASE_TS + i * HOUR // n - rng.randrange(DISORDER_MS)
        producer.produce(topic, orjson.dumps({"user": user, "amount": i}), user.encode(),
                         timestamp=ts, on_delivery=delivered)
        records.append((user, ts))
        if i % 50_000 == 49_999:
            producer.poll(0)
    if producer.flush(120) or errors:
        raise RuntimeError(f"input not produced: {errors[:3]}")
    return records, key_partition


def truth(case, records):
    """{(key, start, end): count} of every window of the input."""
    out = collections.Counter()
    if case == "session":
        by_key = collections.defaultdict(list)
        for k, ts in records:
            by_key[k].append(ts)
        for k, tss in by_key.items():
            tss.sort()
            start = prev = tss[0]
            n = 1
            for t in tss[1:]:
                if t - prev > GAP_MS:
                    out[(k, start, prev)] = n
                    start, n = t, 0
                prev = t
                n += 1
            out[(k, start, prev)] = n
        return out
    size, adv = WINDOWS[case]
    for k, ts in records:
        s = (max(0, ts - size + adv) // adv) * adv
        while s <= ts:
            out[(k, s, s + size)] += 1
            s += adv
    return out


def stream_times(records, key_partition):
    st = collections.defaultdict(int)
    for k, ts in records:
        p = key_partition[k.encode()]
        st[p] = max(st[p], ts)
    return st


def read_all(bootstrap, topic, timeout=180.0, idle=5.0):
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"w2-verify-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    out = []
    eof = set()
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            for m in c.consume(10_000, 0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise RuntimeError(m.error())
                eof.discard(m.partition())
                out.append((m.key(), m.value()))
                last = time.monotonic()
            if len(eof) == PARTITIONS and time.monotonic() - last > idle:
                break
    finally:
        c.close()
    return out


def decode_key(case, kb):
    if case == "session":
        end, start = struct.unpack(">qq", kb[-16:])
        return kb[:-16].decode(), start, end
    start = struct.unpack(">q", kb[-8:])[0]
    return kb[:-8].decode(), start, start + WINDOWS[case][0]


def verify(case, emit, out, records, key_partition):
    want = truth(case, records)
    st = stream_times(records, key_partition)
    problems = []
    if emit == "final":
        seen = collections.Counter()
        for kb, vb in out:
            w = decode_key(case, kb)
            seen[w] += 1
            v = struct.unpack(">q", vb)[0]
            if want.get(w) != v:
                problems.append(f"window {w}: count {v}, expected {want.get(w)}")
                break
        dup = [w for w, c in seen.items() if c > 1]
        if dup:
            problems.append(f"{len(dup)} windows emitted twice, e.g. {dup[0]}")
        extra = GAP_MS if case == "session" else 0
        for w in want:
            closed = w[2] + extra + GRACE_MS <= st[key_partition[w[0].encode()]] - (
                1 if case == "session" else 0)
            if closed and w not in seen:
                problems.append(f"closed window {w} never emitted")
                break
    else:
        last = {}
        for kb, vb in out:
            last[decode_key(case, kb)] = None if vb is None else struct.unpack(">q", vb)[0]
        live = {w: v for w, v in last.items() if v is not None}
        if live != dict(want):
            diff = [w for w in set(live) | set(want) if live.get(w) != want.get(w)]
            problems.append(f"{len(diff)} windows differ from the input's, e.g. {diff[:2]}")
    return problems


def run_worker(script, name, bootstrap, input_topic, n, workdir, env_extra, timeout):
    group = f"w2-{name}-{uuid.uuid4().hex[:6]}"
    output = f"w2-out-{name}-{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, [(output, PARTITIONS)])
    state = workdir / "state" / name
    state.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(script), "--bootstrap", bootstrap, "--input", input_topic,
           "--output", output, "--records", str(n), "--group", group, "--state-dir",
           str(state), "--timeout", str(timeout)]
    env = {**os.environ, **env_extra,
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), str(HERE / "e2e"),
                                                     os.environ.get("PYTHONPATH", "")) if p)}
    out_path, err_path = workdir / f"{name}.out", workdir / f"{name}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        rc = subprocess.run(cmd, stdout=out, stderr=err, env=env, cwd=str(ROOT),
                            timeout=timeout + 60).returncode
    for line in out_path.read_text().splitlines():
        if line.startswith("W1RESULT "):
            res = json.loads(line[len("W1RESULT "):])
            res["output"] = output
            return res
    tail = "\n".join(err_path.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"{name}: exit {rc}\n{tail}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default="tumbling,hopping,session")
    ap.add_argument("--emits", default="final,update")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    emits = [e for e in args.emits.split(",") if e]
    workdir = Path(tempfile.mkdtemp(prefix="cstreams-w2-"))
    results = collections.defaultdict(list)
    with DevBroker() as broker:
        bootstrap = broker.bootstrap_servers
        topic = f"w2-in-{uuid.uuid4().hex[:6]}"
        create_topics(bootstrap, [(topic, PARTITIONS)])
        print(f"producing {args.records:,} records ...", flush=True)
        records, key_partition = produce_input(bootstrap, topic, args.records)
        for rep in range(args.repeat):
            floor = run_worker(HERE / "e2e" / "floor.py", f"floor-{rep}", bootstrap, topic,
                               args.records, workdir, {}, args.timeout)
            fcpu = floor["cpu_s"] / args.records * 1e6
            results["floor"].append(fcpu)
            print(f"round {rep}: floor {fcpu:.2f} CPU-us/record", flush=True)
            for case in cases:
                for emit in emits:
                    name = f"{case}-{emit}"
                    res = run_worker(HERE / "windows_e2e" / "w2_cstreams.py", f"{name}-{rep}",
                                     bootstrap, topic, args.records, workdir,
                                     {"W2_CASE": case, "W2_EMIT": emit}, args.timeout)
                    out = read_all(bootstrap, res["output"])
                    problems = verify(case, emit, out, records, key_partition)
                    if problems:
                        raise SystemExit(f"{name} round {rep}: output wrong: {problems}")
                    cpu = res["cpu_s"] / args.records * 1e6
                    results[name].append(cpu)
                    results[name + "/ratio"].append(cpu / fcpu)
                    print(f"round {rep}: {name}: {cpu:.2f} CPU-us/record, {cpu / fcpu:.2f}x "
                          f"floor, {len(out):,} outputs verified ({res.get('implementation')})",
                          flush=True)
    print(f"\nW2 end to end, {args.records:,} records, median of {args.repeat} rounds "
          f"(CPU-us per input record; ratio to the floor of the same round):")
    print(f"  floor: {statistics.median(results['floor']):.2f}")
    for case in cases:
        for emit in emits:
            name = f"{case}-{emit}"
            print(f"  {name:<16} {statistics.median(results[name]):7.2f}   "
                  f"{statistics.median(results[name + '/ratio']):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
