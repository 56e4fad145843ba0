# Declarations of the key-value store, compiled from cstreams/_pure/store.py (Cython
# pure-Python mode), for Cython processors that cimport it.

cimport cython

from cstreams._core.serde cimport Serde


cdef object _MISSING


cdef class KeyValueStore:
    cdef dict __dict__
    cdef public object name
    cdef public object backend
    cdef public object key_serde
    cdef public object value_serde
    cdef public Py_ssize_t cache_max_entries
    cdef public object changelog
    cdef public dict _cache    # serialized key -> value (None: absent or deleted)
    cdef public dict _dirty    # serialized keys written since the last flush, in write order

    @cython.locals(serde=Serde)
    cdef object _key_bytes(self, object key)
    cpdef list keys_bytes(self, object keys)
    cpdef object get(self, object key)
    cpdef put(self, object key, object value)
    cpdef object delete(self, object key)
    cpdef list get_batch(self, object keys)
    @cython.locals(cache=dict, out=list, missing=list, i=Py_ssize_t)
    cpdef list get_batch_by_bytes(self, list kbs)
    cpdef put_batch(self, object keys, object values)
    @cython.locals(cache=dict, dirty=dict, lkbs=list, lvalues=list, i=Py_ssize_t)
    cpdef put_batch_by_bytes(self, object kbs, object values)
    cpdef delete_batch(self, object keys)
    @cython.locals(dirty=dict, cache=dict, kbs=list, values=list)
    cpdef Py_ssize_t flush(self) except -1
    @cython.locals(cache=dict, dirty=dict)
    cdef _shrink(self)
    @cython.locals(cache=dict)
    cdef _evict(self)
