# Declarations of the windowed aggregation's batch kernel, compiled from
# cstreams/_pure/windowing.py (Cython pure-Python mode). Times are milliseconds in int64, as
# Kafka's record timestamps.

cimport cython


cdef object _T


@cython.locals(lkbs=list, tss=list, cks=list, idx=list, late=list, n=Py_ssize_t,
               i=Py_ssize_t, ts=cython.longlong, s=cython.longlong, last_s=cython.longlong,
               lowest=cython.longlong, first=cython.longlong, packed=bytes)
cpdef tuple assign_time_windows(object kbs, object timestamps, cython.longlong observed,
                                cython.longlong size, cython.longlong advance,
                                cython.longlong grace)


@cython.locals(lcks=list, lidx=list, lvalues=list, distinct=list, cur=dict, groups=dict,
               n=Py_ssize_t, j=Py_ssize_t, i=Py_ssize_t, g=list)
cpdef tuple update_windows(object kv, object aggregation, object cks, object idx, object keys,
                           object values)
