# Declarations of the produce loop, compiled from cstreams/_pure/produce.py (Cython
# pure-Python mode).

cimport cython


@cython.locals(ks=list, vs=list, ps=list, ts=list, hs=list, n=Py_ssize_t, i=Py_ssize_t)
cdef Py_ssize_t _produce_batch(object producer, object topic, object keys, object values,
                               object partitions, object timestamps, object headers,
                               object last_on_delivery, double poll_timeout) except -1


@cython.locals(ks=list, vs=list, ps=list, ts=list, hs=list, n=Py_ssize_t)
cpdef tuple batch_columns(object keys, object values, object partitions, object timestamps,
                          object headers)
