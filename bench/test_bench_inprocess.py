"""In-process benchmarks (no broker): the batch path against the per-record path, same run.

Every case drives a real ``cstreams.internals.task.Task`` (source deserialization, processor,
stores, sink serialization and murmur2 partitioning) with a collector that only counts what it is
handed. A round is ROUND_RECORDS records in batches of BATCH_RECORDS, ending with the commit's
store flush (one write batch per store), as the runtime does on commit.

Workloads, each run three ways doing the same work:
  batch             a BatchProcessor, input batches of BATCH_RECORDS records
  per_record        a plain Processor (ctx.forward / store.get / store.put per record) inside
                    the same batches: the compiled batch flow around a per-record processor
  record_at_a_time  the same plain Processor, fed one record per input batch: each record
                    travels alone through source deserialization, processor, store and sink,
                    as in a per-record engine (Kafka Streams' StreamTask.process), on this
                    engine

Workloads:
  transform   parse an int from a string value and multiply it, sink as int64
  count_mem   count per string key in an in-memory store, forward (key, count)
  store_put   write every record into a store: put_batch vs a put loop (in-memory and RocksDB)
  sink        forward JSON records unchanged to a sink: serialization + partitioning
  count_rocks count per bytes key in a RocksDB store with a changelog (DESIGN's 2M rec/s case)

extra_info holds records, records_per_s (median wall round), us_per_record (median wall) and
cpu_us_per_record (median process CPU); bench/conftest.py prints the batch/per-record table.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time

import orjson
import pytest

import cstreams as cs
from cstreams import processors, serde, stores
from cstreams.internals.task import Task

BATCH_RECORDS = 10_000
ROUND_RECORDS = 100_000
ROUNDS = 7
DISTINCT_KEYS = 10_000
PARTITIONS = 8



def _rocksdb_missing():
    """Why the RocksDB store cannot be built here (None when it can)."""
    if not hasattr(stores, "rocksdb"):
        return "cstreams.stores has no rocksdb() store factory"
    directory = tempfile.mkdtemp(prefix="cstreams-bench-probe-")
    try:
        stores.rocksdb("probe").build(os.path.join(directory, "probe")).close()
    except Exception as e:  # noqa: BLE001 - any failure means: skip, with its reason
        return f"the RocksDB store backend is not available: {type(e).__name__}: {e}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return None


ROCKSDB_MISSING = _rocksdb_missing()
needs_rocksdb = pytest.mark.skipif(ROCKSDB_MISSING is not None, reason=str(ROCKSDB_MISSING))

_rng = random.Random(7)
_STR_KEYS = [f"user-{_rng.randrange(DISTINCT_KEYS):05d}" for _ in range(ROUND_RECORDS)]
_BYTES_KEYS = [k.encode() for k in _STR_KEYS]
_RANDOM_KEYS = [_rng.randbytes(16) for _ in range(ROUND_RECORDS)]
_DIGITS = [str(_rng.randrange(1_000_000)).encode() for _ in range(ROUND_RECORDS)]
_JSON = [orjson.dumps({"user": k, "amount": _rng.randrange(1000)}) for k in _STR_KEYS]
_VALUES8 = [_rng.randbytes(8) for _ in range(ROUND_RECORDS)]


class CountingCollector:
    """The record collector's interface; accepts the lists and counts them."""

    def __init__(self):
        self.records = 0
        self.sends = 0

    def partitions_for(self, topic):
        return PARTITIONS

    def send_batch(self, topic, keys, values, timestamps, headers, partitions):
        self.records += len(keys)
        self.sends += 1


class CountingChangelog:
    def __init__(self):
        self.records = 0

    def send(self, kbs, vbs):
        self.records += len(kbs)


def _raw_batches(topic, keys, values, batch_records=BATCH_RECORDS):
    """Raw (bytes) input batches of one partition (columns, built before the rounds)."""
    ts = [1_700_000_000_000 + i for i in range(ROUND_RECORDS)]
    out = []
    for start in range(0, ROUND_RECORDS, batch_records):
        sl = slice(start, start + batch_records)
        out.append((keys[sl], values[sl], ts[sl], list(range(start, start + batch_records))))
    return out


def _inputs(path, keys, values):
    return _raw_batches("in", keys, values, 1 if path == "record_at_a_time" else BATCH_RECORDS)


# --- processors: batch and per-record twins of each workload --------------------------------


class TransformBatch(cs.BatchProcessor):
    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        self.ctx.forward_batch(batch.keys, [int(v) * 3 for v in batch.values], like=batch)


class TransformEach(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx

    def process(self, record):
        self.ctx.forward(record.key, int(record.value) * 3)


class CountEach(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx
        self.store = ctx.get_store("counts")

    def process(self, record):
        c = (self.store.get(record.key) or 0) + 1
        self.store.put(record.key, c)
        self.ctx.forward(record.key, c)


class PutBatch(cs.BatchProcessor):
    def init(self, ctx):
        self.store = ctx.get_store("kv")

    def process_batch(self, batch):
        self.store.put_batch(batch.keys, batch.values)


class PutEach(cs.Processor):
    def init(self, ctx):
        self.store = ctx.get_store("kv")

    def process(self, record):
        self.store.put(record.key, record.value)


class ForwardBatch(cs.BatchProcessor):
    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        self.ctx.forward_batch(batch.keys, batch.values, like=batch)


class ForwardEach(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx

    def process(self, record):
        self.ctx.forward(record.key, record.value)


# --- topologies -----------------------------------------------------------------------------


def _transform(path):
    t = cs.Topology()
    t.add_source("in", "in", key_serde=serde.STRING, value_serde=serde.STRING)
    t.add_processor("p", TransformBatch if path == "batch" else TransformEach, parents="in")
    t.add_sink("out", "out", parents="p", key_serde=serde.STRING, value_serde=serde.INT64)
    return t, _inputs(path, _BYTES_KEYS, _DIGITS)


def _count_mem(path):
    t = cs.Topology()
    t.add_source("in", "in", key_serde=serde.STRING, value_serde=serde.BYTES)
    t.add_store(stores.in_memory("counts", key_serde=serde.STRING, value_serde=serde.INT64))
    t.add_processor("p", processors.count("counts") if path == "batch" else CountEach,
                    parents="in", stores=["counts"])
    t.add_sink("out", "out", parents="p", key_serde=serde.STRING, value_serde=serde.INT64)
    return t, _inputs(path, _BYTES_KEYS, _VALUES8)


def _store_put(path, backend):
    t = cs.Topology()
    t.add_source("in", "in", key_serde=serde.BYTES, value_serde=serde.BYTES)
    make = stores.in_memory if backend == "memory" else stores.rocksdb
    t.add_store(make("kv", key_serde=serde.BYTES, value_serde=serde.BYTES))
    t.add_processor("p", PutBatch if path == "batch" else PutEach, parents="in", stores=["kv"])
    return t, _inputs(path, _RANDOM_KEYS, _VALUES8)


def _sink(path):
    t = cs.Topology()
    t.add_source("in", "in", key_serde=serde.STRING, value_serde=serde.JSON)
    t.add_processor("p", ForwardBatch if path == "batch" else ForwardEach, parents="in")
    t.add_sink("out", "out", parents="p", key_serde=serde.STRING, value_serde=serde.JSON)
    return t, _inputs(path, _BYTES_KEYS, _JSON)


def _count_rocks(path):
    t = cs.Topology()
    t.add_source("in", "in", key_serde=serde.BYTES, value_serde=serde.BYTES)
    t.add_store(stores.rocksdb("counts", key_serde=serde.BYTES, value_serde=serde.INT64))
    t.add_processor("p", processors.count("counts") if path == "batch" else CountEach,
                    parents="in", stores=["counts"])
    t.add_sink("out", "out", parents="p", key_serde=serde.BYTES, value_serde=serde.INT64)
    return t, _inputs(path, _BYTES_KEYS, _VALUES8)


# --- the runner -----------------------------------------------------------------------------


def _run(benchmark, tmp_path, workload, path, topology, inputs, expect_out=True):
    collector = CountingCollector()
    sub = topology.subtopologies[0]
    task = Task(topology, sub, 0, collector, application_id="bench",
                state_dir=str(tmp_path / "state"))
    task.init()
    changelog = CountingChangelog()
    for store in task.stores.values():
        store.changelog = changelog
    RB = cs.RecordBatch
    cpu = []

    def one_round():
        c0 = time.process_time()
        for keys, values, ts, offs in inputs:
            task.process(RB("in", 0, keys, values, ts, offs))
        task.flush_stores()
        cpu.append(time.process_time() - c0)

    one_round()  # warm-up: caches, store files, code paths
    collector.records = 0
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    task.close()

    # The work was done: every record reached the sink (or the store).
    if expect_out:
        assert collector.records == ROUNDS * ROUND_RECORDS
    else:
        assert changelog.records > 0

    stats = benchmark.stats.stats
    cpu_sorted = sorted(cpu[1:])
    cpu_median = cpu_sorted[len(cpu_sorted) // 2]
    benchmark.extra_info.update(
        workload=workload,
        path=path,
        implementation=cs.IMPLEMENTATION,
        records=ROUND_RECORDS,
        batch_records=BATCH_RECORDS,
        records_per_s=round(ROUND_RECORDS / stats.median),
        us_per_record=round(stats.median / ROUND_RECORDS * 1e6, 3),
        us_per_record_min=round(stats.min / ROUND_RECORDS * 1e6, 3),
        us_per_record_max=round(stats.max / ROUND_RECORDS * 1e6, 3),
        cpu_us_per_record=round(cpu_median / ROUND_RECORDS * 1e6, 3),
    )


PATHS = ["batch", "per_record", "record_at_a_time"]


@pytest.mark.parametrize("path", PATHS)
def test_transform(benchmark, tmp_path, path):
    _run(benchmark, tmp_path, "transform", path, *_transform(path))


@pytest.mark.parametrize("path", PATHS)
def test_count_mem(benchmark, tmp_path, path):
    _run(benchmark, tmp_path, "count_mem", path, *_count_mem(path))


@pytest.mark.parametrize("path", PATHS)
def test_store_put_memory(benchmark, tmp_path, path):
    _run(benchmark, tmp_path, "store_put_memory", path, *_store_put(path, "memory"),
         expect_out=False)


@needs_rocksdb
@pytest.mark.parametrize("path", PATHS)
def test_store_put_rocksdb(benchmark, tmp_path, path):
    _run(benchmark, tmp_path, "store_put_rocksdb", path, *_store_put(path, "rocksdb"),
         expect_out=False)


@pytest.mark.parametrize("path", PATHS)
def test_sink(benchmark, tmp_path, path):
    _run(benchmark, tmp_path, "sink", path, *_sink(path))


@needs_rocksdb
@pytest.mark.parametrize("path", PATHS)
def test_count_rocksdb(benchmark, tmp_path, path):
    _run(benchmark, tmp_path, "count_rocksdb", path, *_count_rocks(path))
