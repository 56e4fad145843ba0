"""The Streams DSL against hand-built Processor API topologies, in-process (no broker).

Each case drives real ``cstreams.internals.task.Task`` objects, as
bench/test_bench_inprocess.py does (source deserialization, processors, stores, sink
serialization and murmur2 partitioning; a collector and a changelog that only count), and
alternates rounds of the two topologies of a pair in the same run: round i of A, round i
of B, ... The figures are the median CPU microseconds per record of each and the median of
the per-round ratios.

Pairs (each side does the same work, every output verified equal before timing):
  w1         W1: JSON values, 10,000 distinct string keys, count per key in a RocksDB store with
             a changelog, forward (key, count) of every record to a sink.
             hand: source -> cs.processors.count -> sink
             dsl:  stream().group_by_key().count(cache=False).to_stream().to()
  w1_cached  hand as above; dsl with the default cache (count forwarded once per key per commit,
             i.e. per round here): less output, so not the same work; shown for what the cache
             saves.
  chain5     five stateless operators on int values (map_values, filter, map_values,
             filter_not, map_values), per-record functions
             hand: one hand-written BatchProcessor doing the five steps in one loop
             dsl:  five DSL operators (five batch processors)
  chain5_batch  the same five steps as DSL batch functions (batch=True) against the same hand
             processor.
  chain5_fused  the per-record chain with StreamsBuilder(fuse=True): one generated loop.
"""

from __future__ import annotations

import random
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

_rng = random.Random(13)
_KEYS = [f"user-{_rng.randrange(DISTINCT_KEYS):05d}".encode() for _ in range(ROUND_RECORDS)]
_JSON = [orjson.dumps({"user": k.decode(), "amount": _rng.randrange(1000)}) for k in _KEYS]
_INTS = [_rng.randrange(1_000_000).to_bytes(8, "big", signed=True) for _ in range(ROUND_RECORDS)]


class CountingCollector:
    def __init__(self):
        self.records = 0
        self.sample = []

    def partitions_for(self, topic):
        return 8

    def send_batch(self, topic, keys, values, timestamps, headers, partitions):
        self.records += len(keys)
        if len(self.sample) < 3:
            self.sample.append((list(keys[:50]), list(values[:50]), list(partitions[:50])))


class CountingChangelog:
    def __init__(self):
        self.records = 0

    def send(self, kbs, vbs):
        self.records += len(kbs)


def _batches(values):
    ts = [1_700_000_000_000 + i for i in range(ROUND_RECORDS)]
    return [(_KEYS[s:s + BATCH_RECORDS], values[s:s + BATCH_RECORDS], ts[s:s + BATCH_RECORDS],
             list(range(s, s + BATCH_RECORDS))) for s in range(0, ROUND_RECORDS, BATCH_RECORDS)]


# --- W1 ---------------------------------------------------------------------------------------
def w1_hand():
    t = cs.Topology()
    t.add_source("in", "in", key_serde=serde.STRING, value_serde=serde.JSON)
    t.add_store(stores.rocksdb("counts", key_serde=serde.STRING, value_serde=serde.INT64))
    t.add_processor("count", processors.count("counts"), parents="in", stores=["counts"])
    t.add_sink("out", "out", parents="count", key_serde=serde.STRING, value_serde=serde.INT64)
    return t


def w1_dsl(cache=False):
    b = cs.StreamsBuilder()
    (b.stream("in", key_serde=serde.STRING, value_serde=serde.JSON)
     .group_by_key().count(name="count", store_name="counts", cache=cache)
     .to_stream().to("out"))
    return b.build()


# --- five-operator chain ----------------------------------------------------------------------
def _f1(v):
    return v * 3


def _p2(k, v):
    return v % 7 != 0


def _f3(v):
    return v - 11


def _p4(k, v):
    return v > 2_900_000


def _f5(v):
    return v // 2


class ChainHand(cs.BatchProcessor):
    """The five steps in one loop."""

    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        keys, values, ts = [], [], []
        for k, v, t in zip(batch.keys, batch.values, batch.timestamps):
            v = _f1(v)
            if not _p2(k, v):
                continue
            v = _f3(v)
            if _p4(k, v):
                continue
            keys.append(k)
            values.append(_f5(v))
            ts.append(t)
        self.ctx.forward_batch(keys, values, ts)


def chain_hand():
    t = cs.Topology()
    t.add_source("in", "in", key_serde=serde.STRING, value_serde=serde.INT64)
    t.add_processor("chain", ChainHand, parents="in")
    t.add_sink("out", "out", parents="chain", key_serde=serde.STRING, value_serde=serde.INT64)
    return t


def chain_dsl(fuse=False):
    b = cs.StreamsBuilder(fuse=fuse)
    (b.stream("in", key_serde=serde.STRING, value_serde=serde.INT64)
     .map_values(_f1).filter(_p2).map_values(_f3).filter_not(_p4).map_values(_f5)
     .to("out", value_serde=serde.INT64))
    return b.build()


def chain_dsl_batch():
    b = cs.StreamsBuilder()
    (b.stream("in", key_serde=serde.STRING, value_serde=serde.INT64)
     .map_values(lambda vs: [_f1(v) for v in vs], batch=True)
     .filter(lambda ks, vs: [_p2(None, v) for v in vs], batch=True)
     .map_values(lambda vs: [_f3(v) for v in vs], batch=True)
     .filter_not(lambda ks, vs: [_p4(None, v) for v in vs], batch=True)
     .map_values(lambda vs: [_f5(v) for v in vs], batch=True)
     .to("out", value_serde=serde.INT64))
    return b.build()


# --- runner -----------------------------------------------------------------------------------
class _Side:
    def __init__(self, topology, state_dir, inputs):
        self.collector = CountingCollector()
        self.task = Task(topology, topology.subtopologies[0], 0, self.collector,
                         application_id="bench", state_dir=state_dir)
        self.task.init()
        self.changelog = CountingChangelog()
        for store in self.task.stores.values():
            store.changelog = self.changelog
        self.inputs = inputs
        self.cpu = []

    def round(self):
        RB = cs.RecordBatch
        task = self.task
        c0 = time.process_time()
        for keys, values, ts, offs in self.inputs:
            task.process(RB("in", 0, keys, values, ts, offs))
        task.flush_stores()     # the commit: store write batch, changelog, DSL caches
        self.cpu.append(time.process_time() - c0)


def _pair(benchmark, tmp_path, name, hand, dsl, inputs, same_output=True):
    a = _Side(hand, str(tmp_path / "hand"), inputs)
    b = _Side(dsl, str(tmp_path / "dsl"), inputs)
    a.round()                   # warm-up, and the outputs of one round compared
    b.round()
    if same_output:
        assert a.collector.sample == b.collector.sample
        assert a.collector.records == b.collector.records > 0
    a.cpu.clear()
    b.cpu.clear()

    def one_round():
        a.round()
        b.round()

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    a.task.close()
    b.task.close()
    med = sorted(x / y for x, y in zip(b.cpu, a.cpu))[len(a.cpu) // 2]

    def us(cpu):
        return round(sorted(cpu)[len(cpu) // 2] / ROUND_RECORDS * 1e6, 3)

    benchmark.extra_info.update(
        pair=name, implementation=cs.IMPLEMENTATION, records=ROUND_RECORDS,
        records_per_s=round(2 * ROUND_RECORDS / benchmark.stats.stats.median),
        hand_cpu_us_per_record=us(a.cpu), dsl_cpu_us_per_record=us(b.cpu),
        dsl_over_hand=round(med, 3),
        hand_out=a.collector.records, dsl_out=b.collector.records)
    print(f"\n{name}: hand {us(a.cpu):.3f} us/rec, dsl {us(b.cpu):.3f} us/rec, "
          f"dsl/hand {med:.3f} (median of {len(a.cpu)} per-round ratios), "
          f"outputs {a.collector.records} / {b.collector.records}")


@pytest.mark.parametrize("name", ["w1", "w1_cached"])
def test_w1_dsl_vs_hand(benchmark, tmp_path, name):
    _pair(benchmark, tmp_path, name, w1_hand(), w1_dsl(cache=name == "w1_cached"),
          _batches(_JSON), same_output=name == "w1")


@pytest.mark.parametrize("name", ["chain5", "chain5_batch", "chain5_fused"])
def test_chain5_dsl_vs_one_batch_processor(benchmark, tmp_path, name):
    dsl = {"chain5": chain_dsl, "chain5_batch": chain_dsl_batch,
           "chain5_fused": lambda: chain_dsl(fuse=True)}[name]()
    _pair(benchmark, tmp_path, name, chain_hand(), dsl, _batches(_INTS))
