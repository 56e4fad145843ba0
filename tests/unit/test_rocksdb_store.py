"""RocksDB backend and RocksDB-backed KeyValueStore: real RocksDB on disk, no mocks."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap

import pytest

import cstreams.stores as stores
from cstreams import serde
from cstreams.errors import ConfigurationError, StoreError
from cstreams.stores.memory import InMemoryBackend
from cstreams.stores.rocksdb_backend import RocksDBBackend

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def backend(tmp_path):
    b = RocksDBBackend(str(tmp_path / "db"))
    yield b
    b.close()


def _random_ops(rng, n_batches, keyspace):
    """Batches of (keys, values) with puts, deletes (None) and repeated keys in one batch."""
    keys = [rng.randbytes(rng.randint(0, 6)) for _ in range(keyspace)]
    keys += [b"", b"\x00", b"\xff", b"\xff\xff", b"a", b"a\x00", b"ab"]
    for _ in range(n_batches):
        ks = [rng.choice(keys) for _ in range(rng.randint(0, 60))]
        vs = [None if rng.random() < 0.3 else rng.randbytes(rng.randint(0, 20)) for _ in ks]
        yield ks, vs
    return keys


def _assert_same(rock, mem, rng, probe_keys):
    assert list(rock.range()) == list(mem.range())
    probes = probe_keys + [rng.randbytes(3) for _ in range(20)]
    assert rock.get_batch(probes) == mem.get_batch(probes)
    assert [rock.get(k) for k in probes] == [mem.get(k) for k in probes]
    for _ in range(30):
        a, b = rng.choice(probes), rng.choice(probes)
        for start, end in ((a, b), (min(a, b), max(a, b)), (None, a), (a, None), (a, a)):
            assert list(rock.range(start, end)) == list(mem.range(start, end)), (start, end)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_backend_matches_in_memory_backend(tmp_path, seed):
    rng = random.Random(seed)
    rock, mem = RocksDBBackend(str(tmp_path / "db")), InMemoryBackend()
    try:
        gen = _random_ops(rng, 200, 80)
        keys = None
        try:
            while True:
                ks, vs = next(gen)
                rock.write_batch(ks, vs)
                mem.write_batch(ks, vs)
        except StopIteration as stop:
            keys = stop.value
        _assert_same(rock, mem, rng, keys)
        # The estimate may count overwrites and tombstones until they are compacted away.
        assert rock.count() >= 0
        rock.compact()
        assert rock.count() == mem.count()
        _assert_same(rock, mem, rng, keys)
    finally:
        rock.close()


def test_write_batch_later_writes_win_and_none_deletes(backend):
    backend.write_batch([b"k", b"k", b"j"], [b"1", b"2", b"x"])
    assert backend.get(b"k") == b"2"
    backend.write_batch([b"k", b"j", b"missing"], [None, b"y", None])
    assert backend.get(b"k") is None
    assert backend.get_batch([b"k", b"j", b"missing", b"j"]) == [None, b"y", None, b"y"]
    backend.write_batch([], [])
    assert backend.get_batch([]) == []
    assert backend.get_batch((b"j",)) == [b"y"]  # any sequence, not only lists


@pytest.mark.parametrize("n", [255, 256, 257, 1000])
def test_get_batch_across_multi_get_chunks(backend, n):
    keys = [b"%05d" % i for i in range(n)]
    backend.write_batch(keys[::2], [k + b"v" for k in keys[::2]])
    probe = list(reversed(keys)) + [keys[0]]
    expected = [k + b"v" if int(k) % 2 == 0 else None for k in probe]
    assert backend.get_batch(probe) == expected
    assert backend.get_batch(tuple(probe)) == expected


def test_values_are_bytes_not_reencoded(backend):
    raw = bytes(range(256))
    backend.write_batch([b"\x00k", raw], [raw, b""])
    assert backend.get(b"\x00k") == raw
    assert backend.get(raw) == b""  # an empty value is a value, not a delete
    assert list(backend.range()) == [(raw, b""), (b"\x00k", raw)]  # \x00\x01.. < \x00k


def test_range_is_inclusive_in_bytes_order(backend):
    keys = [b"a", b"ab", b"b", b"b\x00", b"ba", b"c", b"\xff"]
    backend.write_batch(list(reversed(keys)), [k.upper() for k in reversed(keys)])
    assert [k for k, _ in backend.range()] == keys
    assert [k for k, _ in backend.range(b"ab", b"b\x00")] == [b"ab", b"b", b"b\x00"]
    assert [k for k, _ in backend.range(b"b", b"b")] == [b"b"]
    assert [k for k, _ in backend.range(b"aa", b"bz")] == [b"ab", b"b", b"b\x00", b"ba"]
    assert list(backend.range(b"c", b"a")) == []
    assert [k for k, _ in backend.range(None, b"ab")] == [b"a", b"ab"]
    assert [k for k, _ in backend.range(b"c", None)] == [b"c", b"\xff"]


def test_count_is_an_estimate_until_compaction(backend):
    backend.write_batch([b"%d" % i for i in range(1000)], [b"v"] * 1000)
    assert backend.count() == 1000
    backend.write_batch([b"%d" % i for i in range(500)], [None] * 500)
    backend.compact()
    assert backend.count() == 500


def test_key_may_exist(backend):
    backend.write_batch([b"here"], [b"1"])
    assert backend.key_may_exist(b"here") is True
    assert backend.key_may_exist(b"surely-not-here") is False


def test_data_survives_close_and_reopen(tmp_path):
    path = str(tmp_path / "db")
    b = RocksDBBackend(path)
    b.write_batch([b"k%d" % i for i in range(100)], [b"v%d" % i for i in range(100)])
    b.write_batch([b"k5"], [None])
    b.close()
    b.close()  # idempotent
    b = RocksDBBackend(path)
    try:
        assert b.get(b"k7") == b"v7"
        assert b.get(b"k5") is None
        assert len(list(b.range())) == 99
    finally:
        b.close()


def test_use_after_close_is_a_store_error(tmp_path):
    b = RocksDBBackend(str(tmp_path / "db"))
    b.close()
    with pytest.raises(StoreError, match="closed"):
        b.get(b"k")
    with pytest.raises(StoreError, match="closed"):
        b.write_batch([b"k"], [b"v"])


def test_second_open_in_this_process_is_a_store_error(tmp_path):
    path = str(tmp_path / "db")
    b = RocksDBBackend(path)
    try:
        with pytest.raises(StoreError, match="already open in this process") as ei:
            RocksDBBackend(path)
        assert path in str(ei.value)
    finally:
        b.close()
    RocksDBBackend(path).close()  # released by close()


def _run_holder(path):
    """A child process that opens ``path``, says so, and holds it until stdin closes."""
    code = textwrap.dedent(f"""
        import sys
        from cstreams.stores.rocksdb_backend import RocksDBBackend
        b = RocksDBBackend({path!r})
        b.write_batch([b"from-child"], [b"1"])
        print("open", flush=True)
        sys.stdin.read()
        b.close()
    """)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "open"
    return proc


def test_directory_held_by_another_process_is_a_clear_store_error(tmp_path):
    path = str(tmp_path / "db")
    proc = _run_holder(path)
    try:
        with pytest.raises(StoreError) as ei:
            RocksDBBackend(path)
        msg = str(ei.value)
        assert path in msg and "another process holds it" in msg
        with pytest.raises(StoreError, match="another process holds it"):
            RocksDBBackend.destroy(path)
        assert os.path.isdir(path)
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    b = RocksDBBackend(path)  # the child released it on exit
    try:
        assert b.get(b"from-child") == b"1"
    finally:
        b.close()


def test_destroy_wipes_the_directory(tmp_path):
    path = str(tmp_path / "db")
    b = RocksDBBackend(path)
    b.write_batch([b"k"], [b"v"])
    b.close()
    RocksDBBackend.destroy(path)
    assert not os.path.exists(path)
    RocksDBBackend.destroy(path)  # absent: nothing to do
    b = RocksDBBackend(path)
    try:
        assert b.get(b"k") is None
    finally:
        b.close()


def _write_then_sigkill(path, **options):
    code = textwrap.dedent(f"""
        import os, signal
        from cstreams.stores.rocksdb_backend import RocksDBBackend
        b = RocksDBBackend({path!r}, **{options!r})
        b.write_batch([b"k%d" % i for i in range(1000)], [b"v"] * 1000)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rc = subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode
    assert rc == -9


@pytest.mark.parametrize("disable_wal", [False, True])
def test_writes_survive_sigkill_only_with_the_wal(tmp_path, disable_wal):
    """Why the WAL is on by default: a process killed without close() keeps its writes;
    with the WAL off they are gone unless persist() ran (the changelog must cover them)."""
    path = str(tmp_path / "db")
    _write_then_sigkill(path, disable_wal=disable_wal)
    b = RocksDBBackend(path)
    try:
        found = sum(v is not None for v in b.get_batch([b"k%d" % i for i in range(1000)]))
        assert found == (0 if disable_wal else 1000)
    finally:
        b.close()


def test_unknown_option_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="write_bufer_size"):
        RocksDBBackend(str(tmp_path / "db"), write_bufer_size=1)


def test_wal_off_needs_persist_but_round_trips(tmp_path):
    path = str(tmp_path / "db")
    b = RocksDBBackend(path, disable_wal=True, compression="none")
    b.write_batch([b"k"], [b"v"])
    b.persist()
    b.close()
    b = RocksDBBackend(path)
    try:
        assert b.get(b"k") == b"v"
    finally:
        b.close()


# --- KeyValueStore on RocksDB (write-back cache in front) -------------------------------------

def _store(tmp_path, cache=100_000):
    spec = stores.rocksdb("s", key_serde=serde.STRING, value_serde=serde.INT64,
                          cache_max_entries=cache)
    return spec.build(str(tmp_path / "task" / "s"))


@pytest.mark.parametrize("cache", [0, 3, 100_000])
def test_store_values_survive_close_and_reopen(tmp_path, cache):
    s = _store(tmp_path, cache)
    s.put("a", 1)
    s.put_batch(["b", "c", "a"], [2, 3, 10])
    s.delete("c")
    assert s.get("a") == 10 and s.get("c") is None
    s.flush()
    s.close()
    s = _store(tmp_path, cache)
    try:
        assert s.get_batch(["a", "b", "c", "zz"]) == [10, 2, None, None]
        assert list(s.all()) == [("a", 10), ("b", 2)]
    finally:
        s.close()


def test_store_unflushed_writes_reach_rocksdb_in_one_flush(tmp_path):
    s = _store(tmp_path)
    try:
        s.put_batch([f"k{i}" for i in range(100)], list(range(100)))
        assert s.backend.get(b"k1") is None  # still only in the cache
        assert s.flush() == 100
        assert s.backend.get(b"k1") == (1).to_bytes(8, "big", signed=True)
        assert s.flush() == 0
    finally:
        s.close()


def test_store_delete_batch_and_range_order(tmp_path):
    s = _store(tmp_path)
    try:
        names = ["pear", "apple", "fig", "banana", "cherry", "date"]
        s.put_batch(names, list(range(len(names))))
        s.delete_batch(["fig", "nothing"])
        assert [k for k, _ in s.all()] == sorted(n for n in names if n != "fig")
        assert list(s.range("b", "cz")) == [("banana", 3), ("cherry", 4)]
        assert s.approximate_num_entries() >= 0  # an estimate until compaction
        s.backend.compact()
        assert s.approximate_num_entries() == 5
    finally:
        s.close()


def test_store_restore_batch_bypasses_the_cache(tmp_path):
    s = _store(tmp_path)
    try:
        kbs = [serde.STRING.serialize(f"k{i}") for i in range(10)]
        vbs = [serde.INT64.serialize(i) for i in range(10)]
        vbs[3] = None
        s.restore_batch(kbs, vbs)
        assert s.dirty_count() == 0
        assert s.get_batch(["k2", "k3", "k9"]) == [2, None, 9]
    finally:
        s.close()


def test_store_spec_needs_a_directory():
    with pytest.raises(ValueError, match="needs a directory"):
        stores.rocksdb("s").build(None)


def test_store_factory_still_works_after_the_backend_module_is_imported(tmp_path):
    import cstreams.stores.rocksdb_backend  # noqa: F401

    spec = stores.rocksdb("again", key_serde=serde.STRING, value_serde=serde.INT64)
    assert isinstance(spec, stores.RocksDBStoreSpec) and spec.name == "again"
    s = spec.build(str(tmp_path / "again"))
    s.close()
    assert isinstance(stores.rocksdb("third"), stores.RocksDBStoreSpec)
