"""KeyValueStore: typed access with a write-back cache in front of a bytes backend
(compiled twin of cstreams._pure.store).

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

cimport cython
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem, PyDict_Size
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject

from cstreams.errors import SerdeError, StoreError

from cstreams._core.serde cimport Serde

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object obj, int *overflow) except? -1
    object PyLong_FromLongLong(long long v)
    Py_ssize_t PyLong_AsSsize_t(object obj) except? -1

_MISSING = object()
cdef object MISSING = _MISSING


cdef class KeyValueStore:
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
    cdef object _key_bytes(self, object key):
        if key is None:
            raise StoreError(f"store {self.name!r}: keys cannot be None")
        ks = self.key_serde
        try:
            if isinstance(ks, Serde):
                return (<Serde>ks).serialize(key)
            return ks.serialize(key)
        except SerdeError as e:
            raise StoreError(f"store {self.name!r}: cannot serialize key {key!r}: {e}") from e

    cpdef object get(self, object key):
        kb = self._key_bytes(key)
        cdef PyObject *hit = PyDict_GetItem(self._cache, kb)
        if hit != NULL:
            return <object>hit
        return self._load(kb)

    def _load(self, kb):
        raw = self.backend.get(kb)
        v = None if raw is None else self.value_serde.deserialize(raw)
        self._cache[kb] = v
        if PyDict_Size(self._cache) > self.cache_max_entries:
            self._shrink()
        return v

    cpdef put(self, object key, object value):
        kb = self._key_bytes(key)
        PyDict_SetItem(self._cache, kb, value)
        PyDict_SetItem(self._dirty, kb, None)
        if PyDict_Size(self._cache) > self.cache_max_entries:
            self._evict()

    cpdef object delete(self, object key):
        """Delete ``key``; return its previous value (None if absent)."""
        old = self.get(key)
        self.put(key, None)
        return old

    # --- batch API --------------------------------------------------------------------------
    cpdef list keys_bytes(self, object keys):
        try:
            kbs = self.key_serde.serialize_batch(keys)
        except SerdeError as e:
            raise StoreError(f"store {self.name!r}: cannot serialize key: {e}") from e
        if type(kbs) is not list:
            kbs = list(kbs)
        if None in kbs:
            raise StoreError(f"store {self.name!r}: keys cannot be None")
        return kbs

    cpdef list get_batch(self, object keys):
        return self.get_batch_by_bytes(self.keys_bytes(keys))

    cpdef list get_batch_by_bytes(self, list kbs):
        """Values for already-serialized keys, in order."""
        cdef dict cache = self._cache
        cdef Py_ssize_t i, n = len(kbs)
        cdef list out = []
        cdef list missing = []
        cdef PyObject *hit
        for i in range(n):
            kb = kbs[i]
            hit = PyDict_GetItem(cache, kb)
            if hit == NULL:
                missing.append(i)
                out.append(None)
            else:
                out.append(<object>hit)
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

    cpdef put_batch(self, object keys, object values):
        if len(keys) != len(values):
            raise StoreError(
                f"store {self.name!r}: put_batch got {len(keys)} keys and {len(values)} values"
            )
        self.put_batch_by_bytes(self.keys_bytes(keys), values)

    cpdef put_batch_by_bytes(self, object kbs, object values):
        """Write values for already-serialized keys (None deletes); later writes win."""
        cdef dict cache = self._cache
        cdef dict dirty = self._dirty
        cdef Py_ssize_t i, n
        if type(kbs) is list and type(values) is list:
            n = min(PyList_GET_SIZE(kbs), PyList_GET_SIZE(values))
            for i in range(n):
                kb = <object>PyList_GET_ITEM(kbs, i)
                PyDict_SetItem(cache, kb, <object>PyList_GET_ITEM(values, i))
                PyDict_SetItem(dirty, kb, None)
        else:
            for kb, v in zip(kbs, values):
                cache[kb] = v
                dirty[kb] = None
        if len(cache) > self.cache_max_entries:
            self._evict()

    cpdef delete_batch(self, object keys):
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
    cdef int _shrink(self) except -1:
        """Over the bound after reads: drop the oldest clean entries; flush only when the
        dirty ones alone pass the bound."""
        cdef dict cache = self._cache
        cdef dict dirty = self._dirty
        excess = len(cache) - self.cache_max_entries // 2
        if excess > 0:
            for kb in [kb for kb in cache if kb not in dirty][:excess]:
                del cache[kb]
        if len(cache) > self.cache_max_entries:
            self._evict()
        return 0

    cdef int _evict(self) except -1:
        """Over the bound: flush, then drop the older half of the entries. Transactional
        mode: drop only clean entries, oldest first (a dirty one may not reach the backend
        before its transaction commits); the dirty ones stay until the commit."""
        if self.transactional:
            self._drop_clean()
            return 0
        self.flush()
        cdef dict cache = self._cache
        drop = len(cache) - self.cache_max_entries // 2
        if drop >= len(cache):
            cache.clear()
            return 0
        for kb in list(cache)[:drop]:
            del cache[kb]
        return 0

    def _drop_clean(self):
        cdef dict cache = self._cache
        cdef dict dirty = self._dirty
        excess = len(cache) - self.cache_max_entries // 2
        if excess > 0:
            for kb in [kb for kb in cache if kb not in dirty][:excess]:
                del cache[kb]

    cpdef Py_ssize_t flush(self) except -1:
        """Write every dirty key in one backend batch and send its changelog records.
        Returns the number of keys written."""
        cdef dict dirty = self._dirty
        if not dirty:
            return 0
        cdef list kbs = list(dirty)
        cdef dict cache = self._cache
        cdef list values = []
        cdef PyObject *v
        cdef Py_ssize_t i
        for i in range(PyList_GET_SIZE(kbs)):
            v = PyDict_GetItem(cache, <object>PyList_GET_ITEM(kbs, i))
            if v == NULL:
                raise KeyError(<object>PyList_GET_ITEM(kbs, i))
            values.append(<object>v)
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


cpdef list count_batch(object store, object keys, object key_bytes=None):
    """Count ``keys`` into ``store`` (int values); return the running count per record, in
    order. One get_batch of the distinct keys, one put_batch of their final counts.
    ``key_bytes``: the keys already serialized with the store's key serde (no None), if the
    caller has them (ProcessorContext.serialized_keys)."""
    if type(store) is not KeyValueStore:
        return _count_batch_generic(store, keys, key_bytes)
    if key_bytes is None:
        key_bytes = (<KeyValueStore>store).keys_bytes(keys)
    elif type(key_bytes) is not list:
        key_bytes = list(key_bytes)
    return _count_batch(<KeyValueStore>store, <list>key_bytes)


def _count_batch_generic(store, keys, key_bytes=None):
    kbs = store.keys_bytes(keys) if key_bytes is None else key_bytes
    distinct = list(dict.fromkeys(kbs))
    running = {}
    for kb, c in zip(distinct, store.get_batch_by_bytes(distinct)):
        running[kb] = 0 if c is None else c
    out = []
    append = out.append
    for kb in kbs:
        c = running[kb] + 1
        running[kb] = c
        append(c)
    store.put_batch_by_bytes(distinct, [running[kb] for kb in distinct])
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
cdef list _count_batch(KeyValueStore store, list kbs):
    # Each record is mapped to the slot of its distinct key (one dict lookup); the counting
    # itself then runs on a C array of the distinct keys' counts.
    cdef Py_ssize_t n = PyList_GET_SIZE(kbs)
    cdef Py_ssize_t i, s, nd
    cdef dict slots = {}
    cdef list distinct = []
    cdef PyObject *hit
    cdef Py_ssize_t *slot_of = NULL
    cdef long long *counts = NULL
    cdef int overflow = 0
    cdef long long c
    cdef list out
    if n == 0:
        store.put_batch_by_bytes([], [])
        return []
    slot_of = <Py_ssize_t *>PyMem_Malloc(n * sizeof(Py_ssize_t))
    if slot_of == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            kb = <object>PyList_GET_ITEM(kbs, i)
            hit = PyDict_GetItem(slots, kb)
            if hit == NULL:
                s = PyList_GET_SIZE(distinct)
                PyDict_SetItem(slots, kb, s)
                distinct.append(kb)
            else:
                s = PyLong_AsSsize_t(<object>hit)
            slot_of[i] = s
        nd = PyList_GET_SIZE(distinct)
        current = store.get_batch_by_bytes(distinct)
        counts = <long long *>PyMem_Malloc(nd * sizeof(long long))
        if counts == NULL:
            raise MemoryError()
        for s in range(nd):
            v = <object>PyList_GET_ITEM(current, s)
            if v is None:
                counts[s] = 0
            elif type(v) is int:
                c = PyLong_AsLongLongAndOverflow(v, &overflow)
                # Leave room for n increments; beyond that Python ints take over.
                if overflow or c > 0x3FFFFFFFFFFFFFFF or c < -0x3FFFFFFFFFFFFFFF:
                    return _count_rest_generic(store, kbs, distinct, current)
                counts[s] = c
            else:
                return _count_rest_generic(store, kbs, distinct, current)
        out = []
        for i in range(n):
            s = slot_of[i]
            counts[s] += 1
            out.append(PyLong_FromLongLong(counts[s]))
        store.put_batch_by_bytes(distinct, [PyLong_FromLongLong(counts[s]) for s in range(nd)])
        return out
    finally:
        PyMem_Free(slot_of)
        PyMem_Free(counts)


cdef list _count_rest_generic(KeyValueStore store, list kbs, list distinct, list current):
    # Values that are not C-sized ints: count with Python arithmetic, as the pure twin.
    cdef dict running = {}
    for kb, c in zip(distinct, current):
        running[kb] = 0 if c is None else c
    cdef list out = []
    for kb in kbs:
        c = running[kb] + 1
        running[kb] = c
        out.append(c)
    store.put_batch_by_bytes(distinct, [running[kb] for kb in distinct])
    return out
