"""KeyValueStore: typed access with a write-back cache in front of a bytes backend.

One source for both builds: run as is on the pure-Python path, compiled by Cython (pure-Python
mode, declarations in cstreams/_core/store.pxd) into cstreams._core.store.

The cache is keyed by serialized key and holds deserialized values (None: absent or deleted).
Writes mark keys dirty; flush() writes every dirty key to the backend in one write batch and
sends one changelog record per dirty key. Repeated writes to a key between flushes coalesce.

Transactional mode (``store.transactional = True``, set by the runtime under exactly-once):
the backend holds only committed state. flush() sends the changelog records (into the open
transaction) and keeps the serialized writes as pending; commit_pending() writes them in one
batch once the transaction committed, rewind() drops them (and the cache) when it aborted. The
cache never evicts a dirty entry in this mode, so reads see the transaction's own writes, and
range() overlays them on the backend instead of flushing.
"""

from __future__ import annotations

from cstreams.errors import SerdeError, StoreError

from .serde import Serde

_MISSING = object()


class KeyValueStore:
    def __init__(self, name, backend, key_serde, value_serde, cache_max_entries=100_000):
        self.name = name
        self.backend = backend
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.cache_max_entries = max(int(cache_max_entries), 0)
        self.changelog = None
        self._cache = {}
        self._dirty = {}
        self.transactional = False
        self._pending = []

    # --- single-key API ---------------------------------------------------------------------
    def _key_bytes(self, key):
        if key is None:
            raise StoreError(f"store {self.name!r}: keys cannot be None")
        ks = self.key_serde
        try:
            if isinstance(ks, Serde):
                serde = ks  # typed in the compiled build: a direct call
                return serde.serialize(key)
            return ks.serialize(key)
        except SerdeError as e:
            raise StoreError(f"store {self.name!r}: cannot serialize key {key!r}: {e}") from e

    def get(self, key):
        kb = self._key_bytes(key)
        v = self._cache.get(kb, _MISSING)
        if v is _MISSING:
            v = self._load(kb)
        return v

    def _load(self, kb):
        raw = self.backend.get(kb)
        v = None if raw is None else self.value_serde.deserialize(raw)
        self._cache[kb] = v
        if len(self._cache) > self.cache_max_entries:
            self._shrink()
        return v

    def put(self, key, value):
        kb = self._key_bytes(key)
        self._cache[kb] = value
        self._dirty[kb] = None
        if len(self._cache) > self.cache_max_entries:
            self._evict()

    def delete(self, key):
        """Delete ``key``; return its previous value (None if absent)."""
        old = self.get(key)
        self.put(key, None)
        return old

    # --- batch API --------------------------------------------------------------------------
    def keys_bytes(self, keys):
        try:
            kbs = self.key_serde.serialize_batch(keys)
        except SerdeError as e:
            raise StoreError(f"store {self.name!r}: cannot serialize key: {e}") from e
        if type(kbs) is not list:
            kbs = list(kbs)
        if None in kbs:
            raise StoreError(f"store {self.name!r}: keys cannot be None")
        return kbs

    def get_batch(self, keys):
        return self.get_batch_by_bytes(self.keys_bytes(keys))

    def get_batch_by_bytes(self, kbs):
        """Values for already-serialized keys, in order."""
        cache = self._cache
        out = []
        missing = []
        for i in range(len(kbs)):
            v = cache.get(kbs[i], _MISSING)
            if v is _MISSING:
                missing.append(i)
                v = None
            out.append(v)
        if missing:
            miss_keys = list(dict.fromkeys([kbs[i] for i in missing]))
            raws = self.backend.get_batch(miss_keys)
            de = self.value_serde.deserialize
            loaded = {kb: None if raw is None else de(raw) for kb, raw in zip(miss_keys, raws)}
            cache.update(loaded)
            for i in missing:
                out[i] = loaded[kbs[i]]
            if len(cache) > self.cache_max_entries:
                self._shrink()
        return out

    def put_batch(self, keys, values):
        if len(keys) != len(values):
            raise StoreError(
                f"store {self.name!r}: put_batch got {len(keys)} keys and {len(values)} values"
            )
        self.put_batch_by_bytes(self.keys_bytes(keys), values)

    def put_batch_by_bytes(self, kbs, values):
        """Write values for already-serialized keys (None deletes); later writes win."""
        cache = self._cache
        dirty = self._dirty
        if type(kbs) is list and type(values) is list:
            lkbs = kbs
            lvalues = values
            for i in range(min(len(lkbs), len(lvalues))):
                kb = lkbs[i]
                cache[kb] = lvalues[i]
                dirty[kb] = None
        else:
            for kb, v in zip(kbs, values):
                cache[kb] = v
                dirty[kb] = None
        if len(cache) > self.cache_max_entries:
            self._evict()

    def delete_batch(self, keys):
        kbs = self.keys_bytes(keys)
        self.put_batch_by_bytes(kbs, [None] * len(kbs))

    # --- scans ------------------------------------------------------------------------------
    def range(self, start=None, end=None):
        """(key, value) pairs with start <= key <= end by serialized-key order."""
        if self.transactional:
            yield from self._range_overlay(start, end)
            return
        self.flush()
        sb = None if start is None else self._key_bytes(start)
        eb = None if end is None else self._key_bytes(end)
        kde, vde = self.key_serde.deserialize, self.value_serde.deserialize
        for kb, vb in self.backend.range(sb, eb):
            yield kde(kb), vde(vb)

    def _range_overlay(self, start, end):
        # The backend merged with the writes not yet committed (pending, then dirty).
        sb = None if start is None else self._key_bytes(start)
        eb = None if end is None else self._key_bytes(end)
        kde, vde = self.key_serde.deserialize, self.value_serde.deserialize
        overlay = {}
        for kbs, vbs in self._pending:
            for kb, vb in zip(kbs, vbs):
                overlay[kb] = None if vb is None else vde(vb)
        cache = self._cache
        for kb in self._dirty:
            overlay[kb] = cache[kb]
        mine = sorted(kb for kb in overlay
                      if (sb is None or kb >= sb) and (eb is None or kb <= eb))
        i, n = 0, len(mine)
        for kb, vb in self.backend.range(sb, eb):
            while i < n and mine[i] < kb:
                v = overlay[mine[i]]
                if v is not None:
                    yield kde(mine[i]), v
                i += 1
            if i < n and mine[i] == kb:
                v = overlay[kb]
                i += 1
                if v is not None:
                    yield kde(kb), v
                continue
            yield kde(kb), vde(vb)
        while i < n:
            v = overlay[mine[i]]
            if v is not None:
                yield kde(mine[i]), v
            i += 1

    def all(self):
        return self.range(None, None)

    def approximate_num_entries(self):
        """The backend's estimate; in transactional mode writes not yet committed are not
        counted (flushing them would put uncommitted state in the backend)."""
        if not self.transactional:
            self.flush()
        return self.backend.count()

    # --- cache and lifecycle ----------------------------------------------------------------
    def _shrink(self):
        """Over the bound after reads: drop clean entries in insertion order (the first
        cached first, however recently read); flush only when the dirty ones alone pass the
        bound."""
        cache, dirty = self._cache, self._dirty
        excess = len(cache) - self.cache_max_entries // 2
        if excess > 0:
            for kb in [kb for kb in cache if kb not in dirty][:excess]:
                del cache[kb]
        if len(cache) > self.cache_max_entries:
            self._evict()

    def _evict(self):
        """Over the bound: flush, then drop the first-inserted half of the entries (insertion
        order, not recency of use). Transactional mode: drop only clean entries, in insertion
        order (a dirty one may not reach the backend before its transaction commits); the
        dirty ones stay until the commit."""
        if self.transactional:
            self._drop_clean()
            return
        self.flush()
        cache = self._cache
        drop = len(cache) - self.cache_max_entries // 2
        if drop >= len(cache):
            cache.clear()
            return
        for kb in list(cache)[:drop]:
            del cache[kb]

    def _drop_clean(self):
        cache, dirty = self._cache, self._dirty
        excess = len(cache) - self.cache_max_entries // 2
        if excess > 0:
            for kb in [kb for kb in cache if kb not in dirty][:excess]:
                del cache[kb]

    def flush(self):
        """Write every dirty key in one backend batch and send its changelog records.
        Returns the number of keys written."""
        dirty = self._dirty
        if not dirty:
            return 0
        kbs = list(dirty)
        cache = self._cache
        values = [cache[kb] for kb in kbs]
        try:
            vbs = self.value_serde.serialize_batch(values)
        except SerdeError as e:
            raise StoreError(f"store {self.name!r}: cannot serialize value: {e}") from e
        if self.transactional:
            dirty.clear()
            if self.changelog is not None:
                self.changelog.send(kbs, vbs)
            self._pending.append((kbs, vbs))
            return len(kbs)
        self.backend.write_batch(kbs, vbs)
        dirty.clear()
        if self.changelog is not None:
            self.changelog.send(kbs, vbs)
        return len(kbs)

    def dirty_count(self):
        return len(self._dirty)

    def discard_cache(self):
        """Forget cached values, unflushed and pending writes: reads see the backend again."""
        self._cache.clear()
        self._dirty.clear()
        self._pending = []

    def rewind(self):
        """Transactional mode, the transaction aborted: drop every write since the last
        commit_pending(); the backend holds the last committed state."""
        self.discard_cache()

    def pending_count(self):
        return sum(len(kbs) for kbs, _ in self._pending)

    def commit_pending(self):
        """Transactional mode, the transaction committed: write the flushed writes to the
        backend in one batch. Returns the number of records written."""
        pending = self._pending
        if not pending:
            return 0
        if len(pending) == 1:
            kbs, vbs = pending[0]
        else:
            kbs, vbs = [], []
            for k, v in pending:
                kbs += k
                vbs += v
        self.backend.write_batch(kbs, vbs)
        self._pending = []
        return len(kbs)

    def restore_batch(self, kbs, vbs):
        """Apply changelog records straight to the backend (bypassing cache and changelog)."""
        self.backend.write_batch(kbs, vbs)

    def close(self):
        self.backend.close()

    def __repr__(self):
        return f"<KeyValueStore {self.name!r} backend={type(self.backend).__name__}>"
