# Declarations of the contexts, compiled from cstreams/_pure/context.py (Cython pure-Python
# mode). ProcessorContext is what Cython processors use (cstreams.api).

cimport cython

from cstreams._core.output cimport OutputBuffer
from cstreams._core.record cimport RecordBatch


cdef tuple _ROUND_TRIP


@cython.locals(snapshot=tuple, lkeys=list, n=Py_ssize_t, i=Py_ssize_t)
cpdef object _reused_key_bytes(object origin, object keys, object serde)


cdef class ProcessorContext:
    cdef public object _node
    cdef public object _task         # a TaskContext
    cdef public RecordBatch _batch      # the input batch in hand (None in a punctuation)
    cdef public Py_ssize_t _index       # the record in hand, -1: the whole batch
    cdef public object _punctuation_ts
    cdef public object _max_ts          # the latest timestamp of _max_ts_of
    cdef public object _max_ts_of
    cdef public list _outputs           # (child, OutputBuffer) per child, in child order
    cdef public list _outs              # the OutputBuffer objects of _outputs
    cdef public dict _by_name

    @cython.locals(b=RecordBatch)
    cpdef object _offset(self)
    @cython.locals(b=RecordBatch)
    cpdef object _timestamp(self)
    @cython.locals(b=RecordBatch)
    cpdef object _headers(self)
    cpdef OutputBuffer _target(self, object to)
    @cython.locals(out=OutputBuffer)
    cpdef forward(self, key, value, timestamp=*, headers=*, to=*)
    @cython.locals(out=OutputBuffer, lb=RecordBatch, n=Py_ssize_t)
    cpdef forward_batch(self, keys, values, timestamps=*, headers=*, to=*, like=*)
    @cython.locals(out=OutputBuffer)
    cpdef _flush_outputs(self, topic, partition)
    @cython.locals(out=OutputBuffer)
    cpdef _discard_outputs(self)
    cpdef object get_store(self, object name)
