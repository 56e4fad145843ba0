# Declarations of the message grouping, compiled from cstreams/_pure/grouping.py (Cython
# pure-Python mode).

cimport cython


cdef class _Columns:
    cdef object topic, partition
    cdef list keys, values, timestamps, offsets, headers
    cdef bint has_headers


@cython.locals(index=dict, order=list, errors=list, out=list, cols=_Columns)
cpdef tuple group_messages(object messages)

@cython.locals(n=Py_ssize_t, cut=Py_ssize_t)
cpdef Py_ssize_t timestamp_run(object timestamps, object bound) except -1
