"""The same per-key aggregation as a Cython BatchProcessor, a Python BatchProcessor and a Python
per-record Processor, measured in one run through a real ``cstreams.internals.task.Task``.

Aggregation: running sum of int64 values per string key (10,000 distinct keys), kept in a store,
forwarding (key, sum) per record to a sink. The Cython variant is
examples/cython_count/sum_per_key.pyx, compiled at bench time into a temporary directory with
the example's setup.py against the cstreams being benchmarked (skipped if it does not build).
Driven as bench/test_bench_inprocess.py drives a Task: a collector that only counts, a round of
ROUND_RECORDS records in batches of BATCH_RECORDS ending with the commit's store flush.

Every variant pays the same source deserialization (STRING keys, INT64 values) and sink
serialization + murmur2 partitioning; the variants differ only in the processor. The floor
variant forwards its input unchanged (no store): what remains above it is the processor's cost.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cstreams as cs
from cstreams import serde, stores
from cstreams.internals.task import Task

BATCH_RECORDS = 10_000
ROUND_RECORDS = 100_000
ROUNDS = 9
DISTINCT_KEYS = 10_000
PARTITIONS = 8
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cython_count"

HAVE_ROCKSDB = importlib.util.find_spec("cstreams.stores.rocksdb_backend") is not None

_rng = random.Random(5)
_KEYS = [f"user-{_rng.randrange(DISTINCT_KEYS):05d}" for _ in range(ROUND_RECORDS)]
_AMOUNTS = [_rng.randrange(1_000) for _ in range(ROUND_RECORDS)]
_KEY_BYTES = [k.encode() for k in _KEYS]
_VALUE_BYTES = [struct.pack(">q", a) for a in _AMOUNTS]
_ROUND_SUM = {}
for _k, _a in zip(_KEYS, _AMOUNTS):
    _ROUND_SUM[_k] = _ROUND_SUM.get(_k, 0) + _a


# --- the Cython module, built now -----------------------------------------------------------


@pytest.fixture(scope="module")
def sum_per_key(tmp_path_factory):
    if cs.IMPLEMENTATION != "compiled":
        pytest.skip("the Cython processor needs the compiled core (CSTREAMS_NO_EXTENSIONS set "
                    "or the core not built)")
    try:
        import Cython  # noqa: F401
    except ImportError:
        pytest.skip("Cython is not installed: cannot build examples/cython_count")
    build = tmp_path_factory.mktemp("cython-bench")
    for name in ("setup.py", "sum_per_key.pyx"):
        shutil.copy2(EXAMPLE / name, build / name)
    env = dict(os.environ)
    # The child builds against the cstreams this process benchmarks.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(cs.__file__).resolve().parents[1])] + sys.path[1:])
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                          cwd=build, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"examples/cython_count did not build: {proc.stderr[-2000:]}")
    spec = importlib.util.spec_from_file_location(
        "sum_per_key", next(build.glob("sum_per_key*.so")))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the Python twins -----------------------------------------------------------------------


class SumBatch(cs.BatchProcessor):
    """What a Python user writes with the batch API: the same work as SumPerKey."""

    def init(self, ctx):
        self.ctx = ctx
        self.store = ctx.get_store("sums")

    def process_batch(self, batch):
        keys, values = batch.keys, batch.values
        distinct = list(dict.fromkeys(keys))
        running = {k: 0 if s is None else s
                   for k, s in zip(distinct, self.store.get_batch(distinct))}
        out = []
        append = out.append
        for k, v in zip(keys, values):
            s = running[k] + v
            running[k] = s
            append(s)
        self.store.put_batch(distinct, [running[k] for k in distinct])
        self.ctx.forward_batch(keys, out, like=batch)


class ForwardOnly(cs.BatchProcessor):
    """The fixed cost every variant pays (source, dispatch, sink): forwards the input as is."""

    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        self.ctx.forward_batch(batch.keys, batch.values, like=batch)


class SumEach(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx
        self.store = ctx.get_store("sums")

    def process(self, record):
        s = (self.store.get(record.key) or 0) + record.value
        self.store.put(record.key, s)
        self.ctx.forward(record.key, s)


# --- the runner -----------------------------------------------------------------------------


class CountingCollector:
    def __init__(self):
        self.records = 0

    def partitions_for(self, topic):
        return PARTITIONS

    def send_batch(self, topic, keys, values, timestamps, headers, partitions):
        self.records += len(keys)


def _topology(processor, backend):
    t = cs.Topology()
    t.add_source("in", "in", key_serde=serde.STRING, value_serde=serde.INT64)
    make = stores.in_memory if backend == "memory" else stores.rocksdb
    t.add_store(make("sums", key_serde=serde.STRING, value_serde=serde.INT64, logging=False))
    t.add_processor("sum", processor, parents="in", stores=["sums"])
    t.add_sink("out", "out", parents="sum", key_serde=serde.STRING, value_serde=serde.INT64)
    return t


def _inputs():
    ts = [1_700_000_000_000 + i for i in range(BATCH_RECORDS)]
    return [(_KEY_BYTES[s:s + BATCH_RECORDS], _VALUE_BYTES[s:s + BATCH_RECORDS], ts,
             list(range(s, s + BATCH_RECORDS)))
            for s in range(0, ROUND_RECORDS, BATCH_RECORDS)]


def _run(benchmark, tmp_path, processor, path, backend):
    topology = _topology(processor, backend)
    collector = CountingCollector()
    task = Task(topology, topology.subtopologies[0], 0, collector, application_id="bench",
                state_dir=str(tmp_path / "state"))
    task.init()
    inputs = _inputs()
    RB = cs.RecordBatch
    cpu = []

    def one_round():
        c0 = time.process_time()
        for keys, values, ts, offs in inputs:
            task.process(RB("in", 0, keys, values, ts, offs))
        task.flush_stores()
        cpu.append(time.process_time() - c0)

    one_round()  # warm-up
    collector.records = 0
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)

    # Same result whatever the variant: every record reached the sink, every key's sum is its
    # round sum times the rounds run (warm-up included).
    # (--benchmark-disable runs one round, not ROUNDS.)
    assert collector.records == (len(cpu) - 1) * ROUND_RECORDS
    store = task.stores["sums"]
    for k in list(_ROUND_SUM)[:500]:
        assert store.get(k) == (None if path == "floor" else _ROUND_SUM[k] * len(cpu))
    task.close()

    if benchmark.stats is None:  # --benchmark-disable
        return
    stats = benchmark.stats.stats
    cpu_sorted = sorted(cpu[1:])
    benchmark.extra_info.update(
        workload=f"cython_sum_{backend}",
        path=path,
        implementation=cs.IMPLEMENTATION,
        records=ROUND_RECORDS,
        batch_records=BATCH_RECORDS,
        records_per_s=round(ROUND_RECORDS / stats.median),
        us_per_record=round(stats.median / ROUND_RECORDS * 1e6, 3),
        us_per_record_min=round(stats.min / ROUND_RECORDS * 1e6, 3),
        us_per_record_max=round(stats.max / ROUND_RECORDS * 1e6, 3),
        us_per_record_iqr=round(stats.iqr / ROUND_RECORDS * 1e6, 3),
        cpu_us_per_record=round(cpu_sorted[len(cpu_sorted) // 2] / ROUND_RECORDS * 1e6, 3),
    )


BACKENDS = ["memory"] + (["rocksdb"] if HAVE_ROCKSDB else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_sum_cython(benchmark, tmp_path, sum_per_key, backend):
    benchmark.group = f"cython-sum-{backend}"
    _run(benchmark, tmp_path, sum_per_key.SumPerKey, "cython", backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sum_python_batch(benchmark, tmp_path, backend):
    benchmark.group = f"cython-sum-{backend}"
    _run(benchmark, tmp_path, SumBatch, "batch", backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sum_python_per_record(benchmark, tmp_path, backend):
    benchmark.group = f"cython-sum-{backend}"
    _run(benchmark, tmp_path, SumEach, "per_record", backend)


@pytest.mark.parametrize("backend", ["memory"])
def test_sum_floor_forward_only(benchmark, tmp_path, backend):
    benchmark.group = f"cython-sum-{backend}"
    _run(benchmark, tmp_path, ForwardOnly, "floor", backend)
