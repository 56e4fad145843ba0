"""Window and session stores on the key-value backends (RocksDB, in-memory).

Layout: time first. A window store keys each (key, window) as ``start (8 bytes, big-endian)
+ key bytes``; a session store as ``end + start + key bytes``. Byte order is then time order,
so retention drops every expired window with one range delete from the beginning of the
keyspace, a whole time segment at a time (never key by key), and closing windows is a range
scan. Timestamps are never negative here (negative ones go to the error handler first), so
every data key starts with a byte below 0x80 and the store's metadata (stream time, the final
emission mark) lives under ``META_KEY``, after all of them.

In front of the bytes sits an ordinary KeyValueStore (its write-back cache, changelog,
transactional mode, restoration) over the composite keys, so a window store flushes, logs,
checkpoints and restores like a key-value store. The changelog carries the composite keys;
its topic is ``compact,delete`` with a retention of the store's plus a day (Kafka Streams'
``windowstore.changelog.additional.retention.ms``), so it stays bounded too.
"""

from __future__ import annotations

import bisect
import struct

import orjson

from cstreams._impl import serde as _serde
from cstreams._impl import store as _store
from cstreams.errors import StoreError, TopologyError
from cstreams.stores import (
    DEFAULT_CACHE_MAX_ENTRIES,
    InMemoryStoreSpec,
    RocksDBStoreSpec,
    StoreSpec,
)
from cstreams.windows import Windowed

META_KEY = b"\xff\xffcstreams-window-meta"
DATA_END = b"\x80"   # every data key is below it (times are >= 0)
CHANGELOG_ADDITIONAL_RETENTION_MS = 24 * 3600 * 1000
_T = struct.Struct(">q")
_TT = struct.Struct(">qq")
_MAX_T = (1 << 63) - 1


def segment_interval(retention_ms):
    """Kafka Streams' default: half the retention, at least a minute."""
    return max(retention_ms // 2, 60_000)


class _TimeOrderedStore:
    """What a window store and a session store share: the key-value store underneath, its
    runtime interface (flush, changelog, transactions, restoration), metadata and retention
    by whole segments."""

    def __init__(self, name, kv, key_serde, value_serde, retention_ms):
        self.name = name
        self.kv = kv
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.retention_ms = int(retention_ms)
        self.segment_interval_ms = segment_interval(self.retention_ms)
        self._meta = None
        self._meta_dirty = False
        self._dropped_below = 0        # every key < this time prefix is gone (or going)
        self._deferred_drop = None     # the range delete waits for the flush or the commit

    # --- runtime interface (as KeyValueStore) -------------------------------------------------
    @property
    def backend(self):
        return self.kv.backend

    @property
    def changelog(self):
        return self.kv.changelog

    @changelog.setter
    def changelog(self, writer):
        self.kv.changelog = writer

    @property
    def transactional(self):
        return self.kv.transactional

    @transactional.setter
    def transactional(self, on):
        self.kv.transactional = on

    def flush(self):
        n = self.kv.flush()
        if self._meta_dirty:
            self._meta_dirty = False
            kbs, vbs = [META_KEY], [orjson.dumps(self._meta)]
            if self.kv.transactional:
                self.kv._pending.append((kbs, vbs))
            else:
                self.kv.backend.write_batch(kbs, vbs)
            if self.kv.changelog is not None:
                self.kv.changelog.send(kbs, vbs)
            n += 1
        if not self.kv.transactional:
            self._drop_deferred()
        return n

    def _drop_deferred(self):
        if self._deferred_drop is not None:
            bound, self._deferred_drop = self._deferred_drop, None
            self.kv.backend.delete_range(b"", bound)

    def commit_pending(self):
        n = self.kv.commit_pending()
        self._drop_deferred()
        return n

    def rewind(self):
        self.kv.rewind()
        self._meta = None
        self._meta_dirty = False
        self._deferred_drop = None
        self._dropped_below = 0
        self._invalidate()

    def discard_cache(self):
        self.kv.discard_cache()
        self._meta = None
        self._meta_dirty = False
        self._invalidate()

    def pending_count(self):
        return self.kv.pending_count()

    def dirty_count(self):
        return self.kv.dirty_count() + (1 if self._meta_dirty else 0)

    def restore_batch(self, kbs, vbs):
        self.kv.restore_batch(kbs, vbs)
        self._meta = None
        self._invalidate()

    def close(self):
        self.kv.close()

    def _invalidate(self):
        pass

    # --- metadata ---------------------------------------------------------------------------
    def meta(self, name, default=None):
        """A value the store keeps for its processor (stream time, emission marks): flushed,
        logged and restored with the windows it describes."""
        if self._meta is None:
            raw = self.kv.backend.get(META_KEY)
            if self.kv.transactional:
                for kbs, vbs in self.kv._pending:
                    for kb, vb in zip(kbs, vbs):
                        if kb == META_KEY:
                            raw = vb
            self._meta = {} if raw is None else orjson.loads(raw)
        return self._meta.get(name, default)

    def set_meta(self, name, value):
        self.meta(name)
        if self._meta.get(name) != value:
            self._meta[name] = value
            self._meta_dirty = True

    # --- retention --------------------------------------------------------------------------
    def expire(self, stream_time):
        """Drop what retention no longer keeps at ``stream_time``: whenever the cutoff enters
        a new segment, every key of the segments before it goes in one range delete (the
        store keeps between ``retention`` and ``retention + segment interval`` of time)."""
        cutoff = stream_time - self.retention_ms
        seg = self.segment_interval_ms
        bound_t = (cutoff // seg) * seg
        if bound_t <= self._dropped_below:
            return 0
        self._dropped_below = bound_t
        bound = _T.pack(bound_t)
        kv = self.kv
        cache, dirty = kv._cache, kv._dirty
        gone = [kb for kb in cache if kb < bound]
        for kb in gone:
            del cache[kb]
            dirty.pop(kb, None)
        # The range delete waits for the flush (the commit, under exactly-once): until the
        # input offsets are committed, a restart must find the windows it replays into.
        self._deferred_drop = bound
        self._on_drop(bound_t)
        return len(gone)

    def _on_drop(self, bound_t):
        pass

    def _scan(self, lo, hi):
        """(composite key, value) with lo <= key < hi in byte order, cache included.

        Never flushes: the store reaches the backend only when the runtime flushes it before
        committing offsets. A flush here (final emission scans every batch) would put the
        backend ahead of the committed input, and a restart after a crash would fold the
        replayed records in twice."""
        if hi <= lo:
            return
        kv = self.kv
        if kv.transactional:
            for kb, v in kv.range(lo, hi):      # overlays, never flushes, in this mode
                if kb < hi:
                    yield kb, v
            return
        cache = kv._cache
        mine = sorted([kb for kb in kv._dirty if lo <= kb < hi])
        vde = kv.value_serde.deserialize
        i, n = 0, len(mine)
        for kb, vb in kv.backend.range(lo, hi):
            if kb >= hi:
                break
            while i < n and mine[i] < kb:
                v = cache.get(mine[i])
                if v is not None:
                    yield mine[i], v
                i += 1
            if i < n and mine[i] == kb:
                v = cache.get(kb)
                i += 1
                if v is not None:
                    yield kb, v
                continue
            yield kb, vde(vb)
        while i < n:
            v = cache.get(mine[i])
            if v is not None:
                yield mine[i], v
            i += 1

    def approximate_num_entries(self):
        return self.kv.approximate_num_entries()


class WindowStore(_TimeOrderedStore):
    """Values per (key, window start) for windows of one size.

    User API (typed keys and values): put, fetch, fetch_range, fetch_all, all and the batch
    forms put_batch and fetch_batch. ``fetch(key, start)`` reads one window;
    ``fetch(key, time_from, time_to)`` the windows of ``key`` starting in [from, to]."""

    kind = "window"

    def __init__(self, name, kv, key_serde, value_serde, retention_ms, window_size_ms):
        super().__init__(name, kv, key_serde, value_serde, retention_ms)
        self.window_size_ms = int(window_size_ms)

    # --- composite keys ---------------------------------------------------------------------
    def _kb(self, key):
        if key is None:
            raise StoreError(f"window store {self.name!r}: keys cannot be None")
        return self.key_serde.serialize(key)

    @staticmethod
    def _check_time(t, what="window start"):
        if t < 0:
            raise StoreError(f"window store: {what} must be >= 0, got {t}")

    def _expired_before(self):
        return self._dropped_below

    # --- writes -----------------------------------------------------------------------------
    def put(self, key, window_start, value):
        """Write (None deletes) the value of ``key``'s window starting at ``window_start``."""
        self._check_time(window_start)
        self.kv.put_batch_by_bytes([_T.pack(window_start) + self._kb(key)], [value])

    def put_batch(self, keys, window_starts, values):
        kbs = self.key_serde.serialize_batch(keys)
        if None in kbs or len(kbs) != len(window_starts) or len(kbs) != len(values):
            raise StoreError(f"window store {self.name!r}: put_batch needs as many keys (none "
                             f"None), window starts and values")
        pack = _T.pack
        self.kv.put_batch_by_bytes([pack(s) + kb for s, kb in zip(window_starts, kbs)], values)

    # --- reads ------------------------------------------------------------------------------
    def fetch(self, key, time_from, time_to=None):
        """One window's value (``time_to`` omitted) or [(start, value)] of the windows of
        ``key`` whose start is in [time_from, time_to], oldest first."""
        kb = self._kb(key)
        if time_to is None:
            if time_from < self._dropped_below:
                return None
            return self.kv.get_batch_by_bytes([_T.pack(time_from) + kb])[0]
        out = []
        unpack = _T.unpack_from
        for ck, v in self._scan(_T.pack(max(time_from, self._dropped_below, 0)),
                                _T.pack(min(time_to, _MAX_T - 1) + 1)):
            if ck[8:] == kb:
                out.append((unpack(ck)[0], v))
        return out

    def fetch_batch(self, keys, window_starts):
        """Values of (keys[i], window_starts[i]), in order (None where absent)."""
        kbs = self.key_serde.serialize_batch(keys)
        pack = _T.pack
        return self.kv.get_batch_by_bytes([pack(s) + kb for s, kb in zip(window_starts, kbs)])

    def fetch_range(self, key_from, key_to, time_from, time_to):
        """[(Windowed, value)] for keys in [key_from, key_to] (serialized byte order; None
        leaves a side open) and window starts in [time_from, time_to], by start then key."""
        lo = None if key_from is None else self._kb(key_from)
        hi = None if key_to is None else self._kb(key_to)
        return self._fetch(lo, hi, time_from, time_to)

    def _fetch(self, lo, hi, time_from, time_to):
        out = []
        kde = self.key_serde.deserialize
        size = self.window_size_ms
        unpack = _T.unpack_from
        for ck, v in self._scan(_T.pack(max(time_from, self._dropped_below, 0)),
                                _T.pack(min(time_to, _MAX_T - 1) + 1)):
            kb = ck[8:]
            if (lo is None or kb >= lo) and (hi is None or kb <= hi):
                s = unpack(ck)[0]
                out.append((Windowed(kde(kb), s, s + size), v))
        return out

    def fetch_all(self, time_from, time_to):
        """[(Windowed, value)] of every key's windows starting in [time_from, time_to]."""
        return self._fetch(None, None, time_from, time_to)

    def all(self):
        """[(Windowed, value)] of every window still retained, by start then key."""
        return self._fetch(None, None, 0, _MAX_T - 1)

    def __repr__(self):
        return f"<WindowStore {self.name!r} backend={type(self.kv.backend).__name__}>"


class SessionStore(_TimeOrderedStore):
    """Sessions per key: values per (key, [start, end]).

    An in-memory index (key bytes -> sorted [start, end] pairs) answers find_sessions without
    a scan; it is built from the store on first use and after a restoration, and kept in step
    with every put."""

    kind = "session"

    def __init__(self, name, kv, key_serde, value_serde, retention_ms):
        super().__init__(name, kv, key_serde, value_serde, retention_ms)
        self._index = None

    def _invalidate(self):
        self._index = None

    def _on_drop(self, bound_t):
        index = self._index
        if index is None:
            return
        for kb in list(index):
            live = [w for w in index[kb] if w[1] >= bound_t]
            if live:
                index[kb] = live
            else:
                del index[kb]

    @staticmethod
    def composite(kb, start, end):
        return _TT.pack(end, start) + kb

    def index(self):
        if self._index is None:
            index = {}
            unpack = _TT.unpack_from
            for ck, v in self._scan(_T.pack(self._dropped_below), DATA_END):
                if v is None:
                    continue
                end, start = unpack(ck)
                index.setdefault(ck[16:], []).append((start, end))
            for ws in index.values():
                ws.sort()
            self._index = index
        return self._index

    def _kb(self, key):
        if key is None:
            raise StoreError(f"session store {self.name!r}: keys cannot be None")
        return self.key_serde.serialize(key)

    # --- bytes-level API (the session aggregation uses it) ------------------------------------
    def sessions_of(self, kb, earliest_end, latest_start):
        """[(start, end)] of ``kb``'s sessions with end >= earliest_end and start <=
        latest_start, oldest first."""
        ws = self.index().get(kb)
        if not ws:
            return []
        floor = max(earliest_end, self._dropped_below)
        return [w for w in ws if w[1] >= floor and w[0] <= latest_start]

    def put_bytes(self, kb, start, end, value):
        """Write (None removes) a session by serialized key."""
        index = self.index()
        ws = index.get(kb)
        w = (start, end)
        if value is None:
            if ws and w in ws:
                ws.remove(w)
                if not ws:
                    del index[kb]
        else:
            if ws is None:
                index[kb] = [w]
            elif w not in ws:
                bisect.insort(ws, w)
        self.kv.put_batch_by_bytes([_TT.pack(end, start) + kb], [value])

    def get_bytes(self, items):
        """Values of [(kb, start, end)] in order."""
        pack = _TT.pack
        return self.kv.get_batch_by_bytes([pack(e, s) + kb for kb, s, e in items])

    # --- user API ---------------------------------------------------------------------------
    def put(self, key, start, end, value):
        if start < 0 or end < start:
            raise StoreError(f"session store {self.name!r}: bad session [{start}, {end}]")
        self.put_bytes(self._kb(key), start, end, value)

    def remove(self, key, start, end):
        self.put_bytes(self._kb(key), start, end, None)

    def fetch_session(self, key, start, end):
        return self.get_bytes([(self._kb(key), start, end)])[0]

    def find_sessions(self, key, earliest_end, latest_start):
        """[(Windowed, value)] of ``key``'s sessions with end >= earliest_end and start <=
        latest_start (Kafka Streams' findSessions), oldest first."""
        kb = self._kb(key)
        ws = self.sessions_of(kb, earliest_end, latest_start)
        vals = self.get_bytes([(kb, s, e) for s, e in ws])
        return [(Windowed(key, s, e), v) for (s, e), v in zip(ws, vals) if v is not None]

    def fetch(self, key):
        """Every retained session of ``key``."""
        return self.find_sessions(key, 0, _MAX_T)

    def all(self):
        """[(Windowed, value)] of every retained session, by end then start then key."""
        kde = self.key_serde.deserialize
        unpack = _TT.unpack_from
        out = []
        for ck, v in self._scan(_T.pack(self._dropped_below), DATA_END):
            end, start = unpack(ck)
            out.append((Windowed(kde(ck[16:]), start, end), v))
        return out

    def __repr__(self):
        return f"<SessionStore {self.name!r} backend={type(self.kv.backend).__name__}>"


# --- specifications ---------------------------------------------------------------------------
class _TimeOrderedStoreSpec(StoreSpec):
    store_class: type = _TimeOrderedStore

    def __init__(self, name, key_serde, value_serde, retention_ms, *, persistent, logging,
                 cache_max_entries, changelog_config, options=None):
        super().__init__(name, key_serde, value_serde, logging, cache_max_entries, None)
        if retention_ms is None or retention_ms <= 0:
            raise TopologyError(f"store {name!r}: retention must be > 0 ms, got "
                                f"{retention_ms!r}")
        self.retention_ms = int(retention_ms)
        self.persistent = persistent
        self.options = dict(options or {})
        self.kind = ("rocksdb-" if persistent else "in-memory-") + self.store_class.kind
        self.changelog_config = {
            "cleanup.policy": "compact,delete",
            "retention.ms": self.retention_ms + CHANGELOG_ADDITIONAL_RETENTION_MS,
            **dict(changelog_config or {}),
        }

    def open_backend(self, directory):
        if self.persistent:
            return RocksDBStoreSpec.open_backend(self, directory)
        return InMemoryStoreSpec.open_backend(self, directory)

    def _kv(self, directory):
        return _store.KeyValueStore(self.name, self.open_backend(directory), _serde.BYTES,
                                    self.value_serde, self.cache_max_entries)


class WindowStoreSpec(_TimeOrderedStoreSpec):
    store_class = WindowStore

    def __init__(self, name, key_serde, value_serde, retention_ms, window_size_ms, **kw):
        if window_size_ms is None or window_size_ms <= 0:
            raise TopologyError(f"window store {name!r}: window size must be > 0 ms")
        if retention_ms is not None and retention_ms < window_size_ms:
            raise TopologyError(
                f"window store {name!r}: retention ({retention_ms} ms) must be at least the "
                f"window size ({window_size_ms} ms)")
        super().__init__(name, key_serde, value_serde, retention_ms, **kw)
        self.window_size_ms = int(window_size_ms)

    def build(self, directory=None):
        return WindowStore(self.name, self._kv(directory), self.key_serde, self.value_serde,
                           self.retention_ms, self.window_size_ms)


class SessionStoreSpec(_TimeOrderedStoreSpec):
    store_class = SessionStore

    def build(self, directory=None):
        return SessionStore(self.name, self._kv(directory), self.key_serde, self.value_serde,
                            self.retention_ms)


def _window_spec(persistent, name, key_serde, value_serde, retention_ms, window_size_ms,
                 logging, cache_max_entries, changelog_config, options=None):
    return WindowStoreSpec(name, key_serde, value_serde, retention_ms, window_size_ms,
                           persistent=persistent, logging=logging,
                           cache_max_entries=cache_max_entries,
                           changelog_config=changelog_config, options=options)


def rocksdb_window(name, key_serde=None, value_serde=None, *, retention_ms, window_size_ms,
                   logging=True, cache_max_entries=DEFAULT_CACHE_MAX_ENTRIES,
                   changelog_config=None, options=None):
    """A persistent window store (RocksDB)."""
    return _window_spec(True, name, key_serde, value_serde, retention_ms, window_size_ms,
                        logging, cache_max_entries, changelog_config, options)


def in_memory_window(name, key_serde=None, value_serde=None, *, retention_ms, window_size_ms,
                     logging=True, cache_max_entries=DEFAULT_CACHE_MAX_ENTRIES,
                     changelog_config=None):
    """An in-memory window store (restored from its changelog on every start)."""
    return _window_spec(False, name, key_serde, value_serde, retention_ms, window_size_ms,
                        logging, cache_max_entries, changelog_config)


def rocksdb_session(name, key_serde=None, value_serde=None, *, retention_ms, logging=True,
                    cache_max_entries=DEFAULT_CACHE_MAX_ENTRIES, changelog_config=None,
                    options=None):
    """A persistent session store (RocksDB)."""
    return SessionStoreSpec(name, key_serde, value_serde, retention_ms, persistent=True,
                            logging=logging, cache_max_entries=cache_max_entries,
                            changelog_config=changelog_config, options=options)


def in_memory_session(name, key_serde=None, value_serde=None, *, retention_ms, logging=True,
                      cache_max_entries=DEFAULT_CACHE_MAX_ENTRIES, changelog_config=None):
    """An in-memory session store."""
    return SessionStoreSpec(name, key_serde, value_serde, retention_ms, persistent=False,
                            logging=logging, cache_max_entries=cache_max_entries,
                            changelog_config=changelog_config)


__all__ = ["META_KEY", "SessionStore", "SessionStoreSpec", "WindowStore", "WindowStoreSpec",
           "in_memory_session", "in_memory_window", "rocksdb_session", "rocksdb_window"]
