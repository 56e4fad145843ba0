# Public declarations of the key-value store, for Cython processors that cimport it.

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

    cdef object _key_bytes(self, object key)
    cpdef list keys_bytes(self, object keys)
    cpdef object get(self, object key)
    cpdef put(self, object key, object value)
    cpdef object delete(self, object key)
    cpdef list get_batch(self, object keys)
    cpdef put_batch(self, object keys, object values)
    cpdef delete_batch(self, object keys)
    cpdef list get_batch_by_bytes(self, list kbs)
    cpdef put_batch_by_bytes(self, object kbs, object values)
    cpdef Py_ssize_t flush(self) except -1
    cdef int _shrink(self) except -1
    cdef int _evict(self) except -1


cpdef list count_batch(object store, object keys, object key_bytes=*)
