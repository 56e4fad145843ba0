"""A compiled per-key aggregation: the running sum of int values per key, kept in a store.

For each input batch (one partition, offset order): one serialization of the keys, one
get_batch of the distinct keys, a C loop that adds each record's value to its key's sum, one
put_batch of the new sums, and one forward_batch of (key, running sum) per record, so that a
downstream sink sees every intermediate sum in offset order, as Kafka Streams' aggregate() does.
Records with a null key or value are dropped.
"""

cimport cython
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject

from cstreams.api cimport (
    BatchProcessor,
    KeyValueStore,
    ProcessorContext,
    RecordBatch,
    batch_size,
    check_abi,
    key_at,
    value_at,
)

# Fails the import with a clear message if cstreams' major.minor is not the one this module
# was compiled against, or if cstreams runs without its compiled core.
check_abi(__name__)


cdef class SumPerKey(BatchProcessor):
    """Sums int values per key into the int64 store ``store_name``; forwards (key, sum)."""

    cdef ProcessorContext ctx
    cdef KeyValueStore store
    cdef readonly str store_name

    def __init__(self, store_name="sums"):
        self.store_name = store_name

    cpdef init(self, ctx):
        self.ctx = ctx
        self.store = ctx.get_store(self.store_name)

    cpdef process_batch(self, RecordBatch batch):
        cdef Py_ssize_t i, n = batch_size(batch)
        for i in range(n):
            if key_at(batch, i) is None or value_at(batch, i) is None:
                batch = batch.select(
                    [j for j in range(n)
                     if key_at(batch, j) is not None and value_at(batch, j) is not None])
                n = batch_size(batch)
                break
        if n == 0:
            return
        sums = _sum_batch(self.store, batch, n)
        # like=batch (outputs line up with the input); C calls take no keywords.
        self.ctx.forward_batch(batch.keys, sums, None, None, None, batch)


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.overflowcheck(True)
cdef list _sum_batch(KeyValueStore store, RecordBatch batch, Py_ssize_t n):
    # Each record is mapped to the slot of its distinct serialized key with one dict lookup;
    # the sums then run on a C array, one slot per distinct key.
    cdef list kbs = store.keys_bytes(batch.keys)
    cdef dict slots = {}
    cdef list distinct = []
    cdef list out = []
    cdef PyObject *hit
    cdef Py_ssize_t i, s, nd
    cdef Py_ssize_t *slot_of = <Py_ssize_t *>PyMem_Malloc(n * sizeof(Py_ssize_t))
    cdef long long *sums = NULL
    cdef long long v
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
                s = <Py_ssize_t>(<object>hit)
            slot_of[i] = s
        nd = PyList_GET_SIZE(distinct)
        current = store.get_batch_by_bytes(distinct)
        sums = <long long *>PyMem_Malloc(nd * sizeof(long long))
        if sums == NULL:
            raise MemoryError()
        for s in range(nd):
            c = <object>PyList_GET_ITEM(current, s)
            sums[s] = 0 if c is None else c
        for i in range(n):
            s = slot_of[i]
            v = value_at(batch, i)          # TypeError/OverflowError unless an int64
            sums[s] = sums[s] + v           # OverflowError past int64 (overflowcheck)
            out.append(sums[s])
        store.put_batch_by_bytes(distinct, [sums[s] for s in range(nd)])
        return out
    finally:
        PyMem_Free(slot_of)
        PyMem_Free(sums)
