"""Changelog restoration rate over the test broker: a changelog partition of N records
(default 1,000,000: 100,000 distinct 16-byte keys, 8-byte values, as a count store's
changelog) is restored into a fresh RocksDB store by the runtime's StoreRestorer, which reads
to partition EOF in batches and applies each batch with one WriteBatch.

    python bench/restore.py [--records 1000000] [--repeat 3]

Prints records/s and CPU microseconds per record (process user+sys) per run, and the median.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cstreams as cs  # noqa: E402
from cstreams.devbroker import DevBroker  # noqa: E402
from cstreams.internals.kafka import make_producer  # noqa: E402
from cstreams.runtime.restore import StoreRestorer  # noqa: E402


class _Task:
    def __init__(self, task_id):
        self.task_id = task_id


def produce_changelog(bootstrap, topic, n, distinct):
    rng = random.Random(11)
    keys = [rng.randbytes(16) for _ in range(distinct)]
    p = make_producer({"bootstrap.servers": bootstrap, "linger.ms": 100,
                       "batch.size": 4_000_000, "batch.num.messages": 100_000,
                       "queue.buffering.max.messages": 2_000_000,
                       "compression.type": "none"})
    for i in range(n):
        while True:
            try:
                p.produce(topic, i.to_bytes(8, "big"), keys[i % distinct], 0)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(120) == 0
    return {keys[i % distinct]: i for i in range(max(0, n - distinct), n)}


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def restore_once(bootstrap, topic, directory, expected):
    spec = cs.stores.rocksdb("counts", key_serde=cs.serde.BYTES, value_serde=cs.serde.BYTES)
    store = spec.build(directory)
    restorer = StoreRestorer({"bootstrap.servers": bootstrap, "group.id": "bench-restore",
                              "enable.auto.commit": False, "enable.auto.offset.store": False,
                              "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    try:
        t0, c0 = time.perf_counter(), cpu()
        restorer.add(_Task("0_0"), [(store, topic, 0, None)])
        done = []
        while not done:
            done = restorer.step(timeout=1.0)
        wall, used = time.perf_counter() - t0, cpu() - c0
        n = restorer.records_restored
        sample = list(expected.items())[:1000]
        got = store.backend.get_batch([k for k, _ in sample])
        assert got == [v.to_bytes(8, "big") for _, v in sample], "restored values differ"
        return n, wall, used
    finally:
        restorer.close()
        store.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--distinct", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cstreams-restore-bench-")
    broker = DevBroker(log_path=os.path.join(work, "broker.log")).start()
    try:
        topic = "bench-counts-changelog"
        broker.create_topics([(topic, 1, {"cleanup.policy": "compact"})])
        t0 = time.perf_counter()
        expected = produce_changelog(broker.bootstrap_servers, topic, args.records,
                                     args.distinct)
        print(f"produced {args.records} changelog records in {time.perf_counter() - t0:.1f} s")
        rates, cpus = [], []
        for i in range(args.repeat):
            n, wall, used = restore_once(broker.bootstrap_servers, topic,
                                         os.path.join(work, f"store-{i}"), expected)
            assert n == args.records, f"restored {n} of {args.records}"
            rates.append(n / wall)
            cpus.append(used / n * 1e6)
            print(f"run {i + 1}: {n} records in {wall:.2f} s = {n / wall:,.0f} records/s, "
                  f"{used / n * 1e6:.2f} CPU us/record")
        print(f"median: {statistics.median(rates):,.0f} records/s "
              f"[{min(rates):,.0f}-{max(rates):,.0f}], {statistics.median(cpus):.2f} CPU "
              f"us/record [{min(cpus):.2f}-{max(cpus):.2f}] ({cs.IMPLEMENTATION} core)")
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
