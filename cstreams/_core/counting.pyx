"""count_batch: the counting kernel of count() aggregations (compiled; the pure twin is
cstreams._pure.counting). The running counts of a batch's distinct keys live in a C array."""

cimport cython
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject

from cstreams._core._capi cimport (
    PyLong_AsLongLongAndOverflow,
    PyLong_AsSsize_t,
    PyLong_FromLongLong,
)
from cstreams._core.store cimport KeyValueStore


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
