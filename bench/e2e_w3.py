"""W3 end to end over the broker: orders joined to a customers table, against the client
floor of the same run.

W3: 100,000 customers (key ``cust-<i>``, JSON ``{"name": ..., "tier": ...}``) produced
first, then N orders (key: a random customer, JSON ``{"order": i, "amount": ...}``), both
topics with 8 partitions (murmur2, so co-partitioned). Each variant runs as its own child
process with its own consumer group and output topic, reading both topics from the start:

  floor         confluent-kafka consume of both topics + 5 Message fields + orjson.loads,
                every order produced unchanged (bench/w3_e2e/floor_w3.py)
  cstreams      the DSL stream-table join, at-least-once (bench/w3_e2e/w3_cstreams.py)
  cstreams-eos  the same under exactly_once_v2

The worker measures its CPU (user+sys, all threads) from its first consumed record to the
commit covering every order; the table load (the customers) is inside that window for every
variant. This runner checks every output record: every order exactly once (floor: its value;
cstreams: enriched with its customer's name), and prints medians per variant (bench/e2e.py's
table: CPU us per order and the ratio to the floor of the same repeat).

    python bench/e2e_w3.py [--orders 200000] [--customers 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import e2e  # noqa: E402
from e2e import PARTITIONS, DevBroker, create_topics, read_topic  # noqa: E402

WORKERS = HERE / "w3_e2e"
VARIANTS = {
    "floor": ("floor_w3.py", []),
    "cstreams": ("w3_cstreams.py", ["--guarantee", "at_least_once"]),
    "cstreams-eos": ("w3_cstreams.py", ["--guarantee", "exactly_once_v2"]),
}


def produce_input(bootstrap, customers_topic, orders_topic, customers, orders, seed=3):
    """Customers first, then orders; returns {order id: (customer key, customer name)}."""
    import orjson
    from confluent_kafka import Producer

    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(err)

    producer = Producer({
        "bootstrap.servers": bootstrap, "linger.ms": 100, "batch.size": 4_000_000,
        "batch.num.messages": 100_000,
        "queue.buffering.max.messages": max(100_000, customers + orders + 1000),
        "queue.buffering.max.kbytes": 2_000_000, "partitioner": "murmur2_random",
        "acks": "all",
    })
    dumps = orjson.dumps
    for i in range(customers):
        producer.produce(customers_topic, dumps({"name": f"customer {i}", "tier": i % 3}),
                         f"cust-{i}".encode(), on_delivery=delivered)
        if i % 50_000 == 49_999:
            producer.poll(0)
    if producer.flush(120) or errors:
        raise RuntimeError(f"customers not produced: {errors[:3]}")
    rng = random.Random(seed)
    expected = {}
    for i in range(orders):
        c = rng.randrange(customers)
        producer.produce(orders_topic, dumps({"order": i, "amount": rng.randrange(1, 10_000)}),
                         f"cust-{c}".encode(), on_delivery=delivered)
        expected[i] = (f"cust-{c}".encode(), f"customer {c}")
        if i % 50_000 == 49_999:
            producer.poll(0)
    if producer.flush(120) or errors:
        raise RuntimeError(f"orders not produced: {errors[:3]}")
    return expected


def verify(variant, records, expected):
    import orjson

    problems = []
    seen = {}
    for recs in records.values():
        for key, value in recs:
            v = orjson.loads(value)
            order = v["order"]
            seen[order] = seen.get(order, 0) + 1
            want_key, want_name = expected.get(order, (None, None))
            if key != want_key:
                problems.append(f"order {order}: key {key!r}, expected {want_key!r}")
            elif variant != "floor" and v.get("name") != want_name:
                problems.append(f"order {order}: name {v.get('name')!r}, expected "
                                f"{want_name!r}")
            if problems:
                return problems
    missing = len(expected) - len(seen)
    dupes = sum(n - 1 for n in seen.values())
    if missing:
        problems.append(f"{missing} orders missing from the output")
    if dupes:
        problems.append(f"{dupes} duplicate outputs")
    return problems


def run_variant(variant, rep, bootstrap, topics, customers, expected, workdir, args):
    script, extra = VARIANTS[variant]
    name = f"{variant}-{rep}"
    group = f"w3-{name}-{uuid.uuid4().hex[:6]}"
    output = f"w3-out-{name}"
    create_topics(bootstrap, [(output, PARTITIONS)])
    state_dir = workdir / "state" / name
    state_dir.mkdir(parents=True, exist_ok=True)
    inputs = ",".join(topics) + ("" if variant == "floor" else f",{customers}")
    cmd = [sys.executable, str(WORKERS / script), "--bootstrap", bootstrap, "--input", inputs,
           "--output", output, "--records", str(len(expected)), "--group", group,
           "--state-dir", str(state_dir), "--commit-interval-ms", str(args.commit_interval_ms),
           "--timeout", str(args.timeout), *extra]
    out_path, err_path = workdir / f"{name}.out", workdir / f"{name}.err"
    env = dict(__import__("os").environ)
    env["PYTHONPATH"] = str(HERE.parent)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=str(HERE.parent))
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
    result["variant"], result["rep"] = variant, rep
    recs = read_topic(bootstrap, output, len(expected),
                      read_committed=variant.endswith("eos"))
    result["problems"] = verify(variant, recs, expected)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=200_000)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--variants", default="floor,cstreams,cstreams-eos")
    p.add_argument("--commit-interval-ms", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--workdir", default=None)
    args = p.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="cstreams-w3-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"workdir {workdir}", flush=True)
    broker = DevBroker(log_path=str(workdir / "broker.log"))
    results = []
    try:
        broker.start()
        bootstrap = broker.bootstrap_servers
        topics = ("w3-customers", "w3-orders")
        create_topics(bootstrap, [(t, PARTITIONS) for t in topics])
        t0 = time.perf_counter()
        expected = produce_input(bootstrap, *topics, args.customers, args.orders)
        print(f"input: {args.customers} customers, {args.orders} orders in "
              f"{time.perf_counter() - t0:.1f}s", flush=True)
        for rep in range(args.repeat):
            order = variants[rep % len(variants):] + variants[:rep % len(variants)]
            for v in order:
                r = run_variant(v, rep, bootstrap, topics, args.customers, expected, workdir,
                                args)
                results.append(r)
                print(f"  rep {rep} {v}: " + (r.get("error") or (
                    f"cpu {r['cpu_s']:.2f}s, {r['cpu_s'] * 1e6 / r['records']:.2f} us/order, "
                    f"{'verified' if not r['problems'] else r['problems']}")), flush=True)
    finally:
        broker.stop()
        shutil.rmtree(workdir / "state", ignore_errors=True)
    (workdir / "results.json").write_text(json.dumps(results, indent=1))
    print()
    print(f"W3, {args.orders} orders joined to {args.customers} customers, {PARTITIONS} "
          f"partitions, commit interval {args.commit_interval_ms} ms, {args.repeat} "
          f"repeat(s): median [min-max]; CPU per order = user+sys of the worker process, "
          f"first consumed record to the commit covering every order (table load included)")
    print(e2e.table(results, variants, args.orders))
    return 0 if all(e2e._ok(r) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
