"""Store benchmarks (issue 4): per-record against batch writes, get against get_batch, and the
changelog restoration rate, on the RocksDB store (real RocksDB on disk).

Each test records ``records`` (per round), ``records_per_s`` and ``us_per_record`` (from the
median round) in extra_info. Pairs to compare in one run: ``*_per_record`` vs ``*_batch``.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil

import pytest

from cstreams import serde, stores
from cstreams.stores.rocksdb_backend import RocksDBBackend

N = 100_000
RESTORE_RECORDS = 1_000_000
RESTORE_CHUNK = 10_000

_rng = random.Random(4)
KEYS = [_rng.randbytes(16) for _ in range(N)]
VALUES = [_rng.randbytes(8) for _ in range(N)]
_dirs = itertools.count()


def _report(benchmark, records):
    median = benchmark.stats.stats.median
    benchmark.extra_info["records"] = records
    benchmark.extra_info["records_per_s"] = round(records / median)
    benchmark.extra_info["us_per_record"] = round(median / records * 1e6, 3)


@pytest.fixture
def fresh_dir(tmp_path):
    def make():
        return str(tmp_path / f"s{next(_dirs)}")
    return make


def _store(directory, cache=stores.DEFAULT_CACHE_MAX_ENTRIES):
    spec = stores.rocksdb("bench", key_serde=serde.BYTES, value_serde=serde.BYTES,
                          cache_max_entries=cache)
    return spec.build(directory)


@pytest.fixture
def store(fresh_dir):
    s = _store(fresh_dir(), cache=N)
    yield s
    s.close()


@pytest.fixture
def loaded_backend(fresh_dir):
    b = RocksDBBackend(fresh_dir())
    b.write_batch(KEYS, VALUES)
    b.compact()  # reads come from SST files and the block cache, as after a restore
    yield b
    b.close()


# --- KeyValueStore writes: put per record vs put_batch, both flushed once -----------------------

@pytest.mark.benchmark(group="store-write")
def test_store_put_per_record(benchmark, store):
    def run():
        put = store.put
        for k, v in zip(KEYS, VALUES):
            put(k, v)
        store.flush()
    benchmark(run)
    _report(benchmark, N)


@pytest.mark.benchmark(group="store-write")
def test_store_put_batch(benchmark, store):
    def run():
        store.put_batch(KEYS, VALUES)
        store.flush()
    benchmark(run)
    _report(benchmark, N)


# The same two without the flush: what the cache side costs before RocksDB does its part.
@pytest.mark.benchmark(group="store-write-cache-only")
def test_store_put_per_record_cache_only(benchmark, store):
    def run():
        put = store.put
        for k, v in zip(KEYS, VALUES):
            put(k, v)
    benchmark(run)
    store.discard_cache()
    _report(benchmark, N)


@pytest.mark.benchmark(group="store-write-cache-only")
def test_store_put_batch_cache_only(benchmark, store):
    benchmark(store.put_batch, KEYS, VALUES)
    store.discard_cache()
    _report(benchmark, N)


# --- backend writes: one write per key vs one WriteBatch; WAL on vs off -------------------------

@pytest.mark.benchmark(group="backend-write")
def test_backend_write_per_record(benchmark, fresh_dir):
    b = RocksDBBackend(fresh_dir())

    def run():
        write = b.write_batch
        for k, v in zip(KEYS, VALUES):
            write((k,), (v,))
    try:
        benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    finally:
        b.close()
    _report(benchmark, N)


@pytest.mark.parametrize("wal", ["wal_on", "wal_off"])
@pytest.mark.benchmark(group="backend-write")
def test_backend_write_batch(benchmark, fresh_dir, wal):
    b = RocksDBBackend(fresh_dir(), disable_wal=(wal == "wal_off"))
    try:
        benchmark.pedantic(lambda: b.write_batch(KEYS, VALUES), rounds=10, warmup_rounds=1)
    finally:
        b.close()
    _report(benchmark, N)


# --- reads: get loop vs get_batch, store warm / cold cache, and the bare backend ----------------

@pytest.mark.benchmark(group="store-read-warm")
def test_store_get_per_record_warm(benchmark, store):
    store.put_batch(KEYS, VALUES)
    store.flush()

    def run():
        get = store.get
        for k in KEYS:
            get(k)
    benchmark(run)
    _report(benchmark, N)


@pytest.mark.benchmark(group="store-read-warm")
def test_store_get_batch_warm(benchmark, store):
    store.put_batch(KEYS, VALUES)
    store.flush()
    benchmark(store.get_batch, KEYS)
    _report(benchmark, N)


@pytest.mark.benchmark(group="store-read-cold")
def test_store_get_per_record_cold(benchmark, store):
    store.put_batch(KEYS, VALUES)
    store.flush()
    store.backend.compact()

    def run():
        get = store.get
        for k in KEYS:
            get(k)
    # discard_cache() before every round: each get misses the cache and reads RocksDB.
    benchmark.pedantic(run, setup=store.discard_cache, rounds=5, warmup_rounds=1)
    _report(benchmark, N)


@pytest.mark.benchmark(group="store-read-cold")
def test_store_get_batch_cold(benchmark, store):
    store.put_batch(KEYS, VALUES)
    store.flush()
    store.backend.compact()
    benchmark.pedantic(store.get_batch, args=(KEYS,), setup=store.discard_cache, rounds=5,
                       warmup_rounds=1)
    _report(benchmark, N)


@pytest.mark.benchmark(group="backend-read")
def test_backend_get_per_record(benchmark, loaded_backend):
    def run():
        get = loaded_backend.get
        for k in KEYS:
            get(k)
    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    _report(benchmark, N)


@pytest.mark.benchmark(group="backend-read")
def test_backend_get_batch(benchmark, loaded_backend):
    benchmark.pedantic(loaded_backend.get_batch, args=(KEYS,), rounds=5, warmup_rounds=1)
    _report(benchmark, N)


# --- restoration: a changelog of 1,000,000 records applied with restore_batch -------------------

def _changelog():
    rng = random.Random(5)
    # 1M records over 200k keys (compaction has not removed every overwrite), 1% tombstones.
    keys = [rng.randbytes(16) for _ in range(RESTORE_RECORDS // 5)]
    kbs = [keys[rng.randrange(len(keys))] for _ in range(RESTORE_RECORDS)]
    vbs = [None if rng.random() < 0.01 else rng.randbytes(8) for _ in range(RESTORE_RECORDS)]
    return [(kbs[i:i + RESTORE_CHUNK], vbs[i:i + RESTORE_CHUNK])
            for i in range(0, RESTORE_RECORDS, RESTORE_CHUNK)]


@pytest.mark.benchmark(group="restore")
def test_restore_changelog(benchmark, fresh_dir):
    chunks = _changelog()
    opened = []

    def setup():
        for s in opened:
            s.close()
            shutil.rmtree(s.backend.path, ignore_errors=True)
        opened[:] = [_store(fresh_dir())]
        return (opened[0],), {}

    def run(s):
        restore = s.restore_batch
        for kbs, vbs in chunks:
            restore(kbs, vbs)

    try:
        benchmark.pedantic(run, setup=setup, rounds=3, warmup_rounds=0)
    finally:
        for s in opened:
            s.close()
    _report(benchmark, RESTORE_RECORDS)
    benchmark.extra_info["chunk"] = RESTORE_CHUNK
    assert os.path.isdir(opened[0].backend.path)
