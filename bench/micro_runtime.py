"""Micro-benchmarks of the runtime optimisations of issue 7, each against the code path it
replaced, in one process (no broker): smaller and steadier effects than the end-to-end runs
can resolve on a shared 2-vCPU machine.

  produce      100,000 records into a real confluent-kafka Producer's local queue (nothing is
               sent: the broker address is unreachable): the compiled produce_batch (positional
               arguments, C loop) vs the Python loop with timestamp= of before
  gc           W1's consume-side allocation pattern (10,000 GC-tracked "messages" + an
               orjson dict each per poll, all freed by the end of the poll) with the default
               GC thresholds vs gc.freeze() + gen0 100,000, with a 10,000-key store cache and
               ~150,000 other long-lived objects alive, as in the W1 worker
  keys         a cstreams Task doing W1's count (STRING keys, JSON values, in-memory store,
               sink STRING/INT64) with and without the reuse of consumed key bytes
  checkpoint   writing (fsync'd, atomically replaced) 8 checkpoint files, as one commit did

    python bench/micro_runtime.py [--repeat 7]

Prints, per case, the median over the repeats and the min-max, in us per record (per commit
for checkpoint).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

N = 100_000


def _median(xs):
    return statistics.median(xs), min(xs), max(xs)


def _interleaved(cases, repeat, setup=None):
    """{name: fn} -> {name: [CPU seconds per run]}; the cases alternate run by run (so a
    drift of the machine hits them alike), each after a full collection."""
    out = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            if setup is not None:
                setup(name)
            gc.collect()
            t0 = time.process_time()
            fn()
            out[name].append(time.process_time() - t0)
    return out


# --- produce -------------------------------------------------------------------------------


def _old_send(producer, topic, keys, values, timestamps, partitions):
    produce = producer.produce
    n = len(keys)
    start = i = 0
    while start < n:
        try:
            for i in range(start, n):
                produce(topic, values[i], keys[i], partitions[i], timestamp=timestamps[i])
            start = n
        except BufferError:
            start = i
            producer.poll(0.05)


def bench_produce(repeat):
    from confluent_kafka import Producer

    from cstreams._impl import produce as impl

    keys = [f"user-{i % 10_000}".encode() for i in range(N)]
    values = [(i).to_bytes(8, "big") for i in range(N)]
    ts = [1_700_000_000_000 + i for i in range(N)]
    parts = [i % 8 for i in range(N)]

    def fresh():
        return Producer({"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": 600_000,
                         "queue.buffering.max.messages": 2_000_000,
                         "queue.buffering.max.kbytes": 4_000_000, "log_level": 0})

    cases = {"python loop, timestamp= kwarg (before)":
             lambda p: _old_send(p, "out", keys, values, ts, parts),
             f"produce_batch ({impl.__name__.split('.')[1]})":
             lambda p: impl.produce_batch(p, "out", keys=keys, values=values, partitions=parts,
                                          timestamps=ts)}
    results = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            p = fresh()
            gc.collect()
            t0 = time.process_time()
            fn(p)
            results[name].append(time.process_time() - t0)
            p.purge()
            del p
    return results


# --- gc --------------------------------------------------------------------------------------


class _Msg:
    # GC-tracked like confluent_kafka.Message (which supports the cyclic GC).
    __slots__ = ("k", "v", "t", "o")

    def __init__(self, k, v, t, o):
        self.k, self.v, self.t, self.o = k, v, t, o


def bench_gc(repeat):
    import orjson

    values = [orjson.dumps({"user": f"user-{i % 10_000}", "amount": i}) for i in range(10_000)]
    keys = [f"user-{i % 10_000}".encode() for i in range(10_000)]
    # long-lived objects of a running worker: a store cache, imported modules, the topology
    long_lived = [{"k": i, "v": [i]} for i in range(150_000)]
    cache = {k: i for i, k in enumerate(keys)}

    def polls():
        loads = orjson.loads
        for _ in range(N // 10_000):
            msgs = [_Msg(keys[i], values[i], (1, i), i) for i in range(10_000)]
            decoded = [loads(m.v) for m in msgs]
            for d in decoded:
                cache[d["user"]] = d["amount"]
            del msgs, decoded

    saved = gc.get_threshold()

    def setup(name):
        if name.startswith("default"):
            gc.unfreeze()
            gc.set_threshold(*saved)
        else:
            gc.freeze()
            gc.set_threshold(100_000, saved[1], saved[2])
    try:
        return _interleaved({"default thresholds (before)": polls,
                             "gc.freeze() + gen0 100,000": polls}, repeat, setup)
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)
        del long_lived


# --- keys ------------------------------------------------------------------------------------


def bench_keys(repeat):
    import orjson

    import cstreams as cs
    from cstreams import processors, serde, stores
    from cstreams.internals.task import Task

    class Collector:
        def partitions_for(self, topic):
            return 8

        def send_batch(self, *args):
            pass

    def topology():
        t = cs.Topology()
        t.add_source("in", "in", key_serde=serde.STRING, value_serde=serde.JSON)
        t.add_store(stores.in_memory("counts", key_serde=serde.STRING, value_serde=serde.INT64))
        t.add_processor("count", processors.count("counts"), parents="in", stores=["counts"])
        t.add_sink("out", "out", parents="count", key_serde=serde.STRING,
                   value_serde=serde.INT64)
        return t

    keys = [f"user-{i % 10_000}".encode() for i in range(N)]
    values = [orjson.dumps({"user": k.decode(), "amount": i}) for i, k in enumerate(keys)]
    batches = [(keys[s:s + 10_000], values[s:s + 10_000], list(range(s, s + 10_000)))
               for s in range(0, N, 10_000)]

    class NoReuseTask(Task):
        # The source's record of the consumed key bytes is dropped: keys are serialized again.
        _key_origin = property(lambda self: None, lambda self, value: None)

    def make(cls):
        topo = topology()
        task = cls(topo, topo.subtopologies[0], 0, Collector())
        task.init()

        def one():
            for k, v, offs in batches:
                task.process(cs.RecordBatch("in", 0, k, v, offs, offs))
            task.flush_stores()
        one()
        return one
    return _interleaved({"serialize keys again (before)": make(NoReuseTask),
                         "reuse consumed key bytes": make(Task)}, repeat)


# --- checkpoint ------------------------------------------------------------------------------


def bench_checkpoint(repeat):
    from cstreams.internals.state.checkpoint import write_checkpoint

    root = tempfile.mkdtemp(prefix="cstreams-ckpt-")
    dirs = [os.path.join(root, f"0_{p}") for p in range(8)]

    def commit():
        for p, d in enumerate(dirs):
            write_checkpoint(d, {("app-counts-changelog", p): 12345})
    xs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        c0 = time.process_time()
        commit()
        xs.append((time.process_time() - c0, time.perf_counter() - t0))
    return {"8 checkpoint files (one commit)": xs}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--cases", default="produce,gc,keys,checkpoint")
    args = p.parse_args()
    from cstreams import IMPLEMENTATION
    print(f"cstreams core: {IMPLEMENTATION}; {args.repeat} repeats; median [min-max]")
    for case in args.cases.split(","):
        res = globals()[f"bench_{case}"](args.repeat)
        for name, xs in res.items():
            if case == "checkpoint":
                cpu = _median([x[0] * 1e3 for x in xs])
                wall = _median([x[1] * 1e3 for x in xs])
                print(f"{case:<10} {name:<44} CPU {cpu[0]:.2f} ms [{cpu[1]:.2f}-{cpu[2]:.2f}], "
                      f"wall {wall[0]:.2f} ms [{wall[1]:.2f}-{wall[2]:.2f}] per commit")
            else:
                m, lo, hi = _median([x * 1e6 / N for x in xs])
                print(f"{case:<10} {name:<44} {m:.3f} us/record [{lo:.3f}-{hi:.3f}]")


if __name__ == "__main__":
    main()
