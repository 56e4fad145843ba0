# Declarations of the output buffers, compiled from cstreams/_pure/output.py (Cython
# pure-Python mode).

cdef class OutputBuffer:
    cdef public object keys
    cdef public object values
    cdef public object timestamps
    cdef public object offsets
    cdef public object headers
    cdef public bint owned
    cdef public bint has_headers

    cpdef clear(self)
    cpdef _own(self)
    cpdef append(self, object key, object value, object timestamp, object offset,
                 object headers)
    cpdef extend(self, object keys, object values, object timestamps, object offsets,
                 object headers)
    cpdef object take(self, object topic, object partition)
