# Public declarations of Record and RecordBatch, for Cython code that cimports them.

cdef class Record:
    cdef public object key
    cdef public object value
    cdef public object timestamp
    cdef public object headers
    cdef public object topic
    cdef public object partition
    cdef public object offset


cdef class RecordBatch:
    cdef public object topic
    cdef public object partition
    cdef public list keys
    cdef public list values
    cdef public list timestamps
    cdef public list offsets
    cdef public object headers  # None, or a list with one entry per record

    cpdef Record record(self, Py_ssize_t i)
    cpdef RecordBatch select(self, indexes)
    cpdef RecordBatch with_columns(self, keys, values)


cdef RecordBatch make_batch(object topic, object partition, list keys, list values,
                            list timestamps, list offsets, object headers)


from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE


# Accessors without bounds checks: the caller guarantees 0 <= i < batch_size(b).
cdef inline Py_ssize_t batch_size(RecordBatch b) noexcept:
    return PyList_GET_SIZE(b.keys) if b.keys is not None else 0

cdef inline object key_at(RecordBatch b, Py_ssize_t i):
    return <object>PyList_GET_ITEM(b.keys, i)

cdef inline object value_at(RecordBatch b, Py_ssize_t i):
    return <object>PyList_GET_ITEM(b.values, i)

cdef inline object timestamp_at(RecordBatch b, Py_ssize_t i):
    return <object>PyList_GET_ITEM(b.timestamps, i)

cdef inline object offset_at(RecordBatch b, Py_ssize_t i):
    return <object>PyList_GET_ITEM(b.offsets, i)
