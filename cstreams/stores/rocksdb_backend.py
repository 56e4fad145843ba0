"""RocksDB bytes backend (rocksdict): the only module of cstreams that imports the binding.

Same interface as InMemoryBackend: get, get_batch, write_batch (None deletes), range (inclusive,
bytes order), count (approximate), close. Keys and values are bytes end to end: the database
is opened with ``Options(raw_mode=True)`` and written with ``WriteBatch(raw_mode=True)``;
without raw mode rocksdict pickles or re-encodes every key and value.

Write-ahead log. Kafka Streams opens its stores with the WAL off (``setDisableWAL(true)``)
because the changelog topic is the durable copy, and flushes the memtables to SST files before
it writes the ``.checkpoint`` file. cstreams keeps the WAL ON by default:
- the commit protocol writes the checkpoint without forcing a memtable flush, so with the WAL
  off a SIGKILL after a commit would lose writes the checkpoint claims are on disk, and the
  restore would start past them: silent state loss;
- a store with ``logging=False`` has no changelog at all.
The WAL is a sequential append in the page cache (no fsync per write: a process crash loses
nothing, only a machine crash may lose the unsynced tail, which the changelog then covers).
``disable_wal=True`` is for changelog-backed stores: the runtime calls ``persist()`` (a
memtable flush) on such a store before every checkpoint it writes
(TaskManager.write_checkpoints), so a checkpoint never claims writes that are only in memory;
``bench/test_bench_store.py`` measures both.
"""

from __future__ import annotations

import os
import shutil

import rocksdict

from cstreams.errors import ConfigurationError, StoreError, StoreIOError

_ESTIMATE_NUM_KEYS = "rocksdb.estimate-num-keys"
_MULTI_GET_CHUNK = 256

# Kafka Streams' defaults (RocksDBStore): 16 MiB write buffers, 3 of them.
DEFAULT_OPTIONS = {
    "write_buffer_size": 16 * 1024 * 1024,
    "max_write_buffer_number": 3,
    "block_cache_size": 32 * 1024 * 1024,
    "compression": "lz4",
    "disable_wal": False,
    "max_background_jobs": 2,
}

_COMPRESSION = {
    "none": rocksdict.DBCompressionType.none,
    "lz4": rocksdict.DBCompressionType.lz4,
    "snappy": rocksdict.DBCompressionType.snappy,
    "zlib": rocksdict.DBCompressionType.zlib,
}


def _options(path, settings):
    unknown = set(settings) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"RocksDB store at {path}: unknown option(s) {sorted(unknown)}; "
            f"known: {sorted(DEFAULT_OPTIONS)}"
        )
    s = {**DEFAULT_OPTIONS, **settings}
    if s["compression"] not in _COMPRESSION:
        raise ConfigurationError(
            f"RocksDB store at {path}: compression {s['compression']!r} is not one of "
            f"{sorted(_COMPRESSION)}"
        )
    opts = rocksdict.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.set_write_buffer_size(int(s["write_buffer_size"]))
    opts.set_max_write_buffer_number(int(s["max_write_buffer_number"]))
    opts.set_max_background_jobs(int(s["max_background_jobs"]))
    opts.set_compression_type(_COMPRESSION[s["compression"]]())
    # Every open rotates the info LOG; without a bound, task migrations pile up LOG.old files.
    opts.set_keep_log_file_num(2)
    table = rocksdict.BlockBasedOptions()
    table.set_block_cache(rocksdict.Cache(int(s["block_cache_size"])))
    opts.set_block_based_table_factory(table)
    return opts, bool(s["disable_wal"])


def _open_error(path, exc):
    """A StoreError for a failed open; RocksDB's LOCK file tells who holds the directory."""
    text = str(exc)
    if "lock hold by current process" in text:
        return StoreError(
            f"RocksDB store at {path} is already open in this process (its LOCK file is "
            f"held); close the other store first: {text}"
        )
    if "LOCK" in text and ("While lock file" in text or "Resource temporarily unavailable" in text):
        return StoreError(
            f"RocksDB store at {path} is locked: another process holds it open (RocksDB LOCK "
            f"file); is another instance with the same application_id and state_dir "
            f"running? ({text})"
        )
    return StoreError(f"RocksDB store at {path} could not be opened: {text}")


class _Closed:
    """Stands in for the database after close(): any use is a clear StoreError, and the hot
    paths pay nothing for the check."""

    def __init__(self, path):
        self._path = path

    def __getattr__(self, name):
        raise StoreIOError(f"RocksDB store {os.path.basename(self._path)!r} at {self._path} "
                           f"is closed")


class RocksDBBackend:
    """Bytes key-value backend on one RocksDB database directory."""

    def __init__(self, path, **options):
        self.path = os.fspath(path)
        self._what = f"RocksDB store {os.path.basename(self.path)!r} at {self.path}"
        self._closed = True
        self._db = _Closed(self.path)
        opts, disable_wal = _options(self.path, options)
        self.disable_wal = disable_wal
        write_opt = rocksdict.WriteOptions()
        # A property in rocksdict 0.3.29, although its .pyi stub declares a method.
        write_opt.disable_wal = disable_wal
        try:
            db = rocksdict.Rdict(self.path, opts)
        except Exception as e:  # rocksdict raises a bare Exception carrying RocksDB's status
            raise _open_error(self.path, e) from None
        db.set_write_options(write_opt)
        self._db = db
        self._closed = False

    # --- reads ------------------------------------------------------------------------------
    def get(self, kb):
        return self._db.get(kb)

    def get_batch(self, kbs):
        """RocksDB MultiGet (rocksdict's get() with a list: batched_multi_get_cf), in chunks
        of _MULTI_GET_CHUNK keys: one MultiGet of 100,000 random keys was measured ~2x slower
        per key than a loop of gets, chunks of 256 ~1.2-1.5x faster than the loop."""
        n = len(kbs)
        if n == 0:
            return []
        get = self._db.get
        try:
            if n <= _MULTI_GET_CHUNK:
                return get(kbs if type(kbs) is list else list(kbs))
            out = []
            for i in range(0, n, _MULTI_GET_CHUNK):
                out += get(list(kbs[i:i + _MULTI_GET_CHUNK]))
            return out
        except StoreError:
            raise
        except Exception as e:
            raise StoreIOError(f"{self._what}: multi-get failed: {e}") from e

    def range(self, start=None, end=None):
        """(kb, vb) with start <= kb <= end in bytes order; None leaves a side unbounded."""
        if start is not None and end is not None and start > end:
            return
        read_opt = None
        if end is not None:
            # The smallest key greater than ``end`` is end + b"\x00": an exclusive upper bound
            # that makes the scan inclusive of ``end`` and lets RocksDB stop by itself.
            read_opt = rocksdict.ReadOptions()
            read_opt.set_iterate_upper_bound(end + b"\x00")
        yield from self._db.items(from_key=start, read_opt=read_opt)

    def key_may_exist(self, kb):
        """False means certainly absent (bloom filter / memtable); True means maybe."""
        return self._db.key_may_exist(kb)

    def count(self):
        """Approximate number of keys (RocksDB's ``rocksdb.estimate-num-keys``): exact after a
        full compaction, otherwise overwrites and deletes not yet compacted skew it."""
        n = self._db.property_int_value(_ESTIMATE_NUM_KEYS)
        return 0 if n is None else int(n)

    # --- writes -----------------------------------------------------------------------------
    def write_batch(self, kbs, vbs):
        """Apply puts (and deletes where the value is None) atomically in one WriteBatch."""
        if not kbs:
            return
        wb = rocksdict.WriteBatch(raw_mode=True)
        put = wb.put
        delete = wb.delete
        for kb, vb in zip(kbs, vbs):
            if vb is None:
                delete(kb)
            else:
                put(kb, vb)
        try:
            self._db.write(wb)
        except StoreError:
            raise
        except Exception as e:
            raise StoreIOError(f"{self._what}: write of {len(kbs)} records failed: {e}") from e

    # --- durability and maintenance ----------------------------------------------------------
    def persist(self):
        """Flush the memtables to SST files (needed before a checkpoint when the WAL is off)."""
        try:
            self._db.flush(True)
        except StoreError:
            raise
        except Exception as e:
            raise StoreIOError(f"{self._what}: flushing the memtables failed: {e}") from e

    def compact(self):
        """Full manual compaction: drops tombstones and overwritten versions."""
        self._db.flush(True)
        # Force the bottommost level to be rewritten: a trivial move into it would keep the
        # tombstones (and the key estimate would keep counting them).
        opt = rocksdict.CompactOptions()
        opt.set_bottommost_level_compaction(rocksdict.BottommostLevelCompaction.force())
        self._db.compact_range(None, None, opt)

    def close(self):
        """Flush and close; idempotent. Live range() iterators keep RocksDB open until they
        are exhausted or collected."""
        if self._closed:
            return
        self._closed = True
        db, self._db = self._db, _Closed(self.path)
        try:
            db.close()
        except Exception as e:
            raise StoreIOError(f"{self._what}: close failed: {e}") from e

    @staticmethod
    def destroy(path):
        """Delete a store directory and everything in it (the store must be closed)."""
        path = os.fspath(path)
        if not os.path.exists(path):
            return
        try:
            rocksdict.Rdict.destroy(path, rocksdict.Options(raw_mode=True))
        except Exception as e:
            raise _open_error(path, e) from None
        shutil.rmtree(path, ignore_errors=True)

    def __repr__(self):
        state = "closed" if self._closed else "open"
        return f"<RocksDBBackend {self.path} {state}>"


__all__ = ["DEFAULT_OPTIONS", "RocksDBBackend"]
