# Declarations of the dispatch layer, compiled from cstreams/_pure/dispatch.py (Cython
# pure-Python mode). ProcessorContext is what Cython processors use (cstreams.api).

cimport cython

from cstreams._core.processor cimport BatchProcessor
from cstreams._core.record cimport RecordBatch


cdef tuple _ROUND_TRIP


@cython.locals(snapshot=tuple, lkeys=list, n=Py_ssize_t, i=Py_ssize_t)
cdef object _reused_key_bytes(object origin, object keys, object serde)


cdef class _Output:
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


cdef class ProcessorContext:
    cdef public object _node
    cdef public object _task         # a TaskContext
    cdef public RecordBatch _batch      # the input batch in hand (None in a punctuation)
    cdef public Py_ssize_t _index       # the record in hand, -1: the whole batch
    cdef public object _punctuation_ts
    cdef public object _max_ts          # the latest timestamp of _max_ts_of
    cdef public object _max_ts_of
    cdef public list _outputs           # (child, _Output) per child, in child order
    cdef public list _outs              # the _Output objects of _outputs
    cdef public dict _by_name

    @cython.locals(b=RecordBatch)
    cpdef object _offset(self)
    @cython.locals(b=RecordBatch)
    cpdef object _timestamp(self)
    @cython.locals(b=RecordBatch)
    cpdef object _headers(self)
    cpdef _Output _target(self, object to)
    @cython.locals(out=_Output)
    cpdef forward(self, key, value, timestamp=*, headers=*, to=*)
    @cython.locals(out=_Output, lb=RecordBatch, n=Py_ssize_t)
    cpdef forward_batch(self, keys, values, timestamps=*, headers=*, to=*, like=*)
    @cython.locals(out=_Output)
    cpdef _flush_outputs(self, topic, partition)
    @cython.locals(out=_Output)
    cpdef _discard_outputs(self)
    cpdef object get_store(self, object name)


cdef class Node:
    cdef dict __dict__
    cdef public object name
    cdef public list children
    cdef public object store_names
    cdef public object task          # a TaskContext
    cdef public Py_ssize_t records     # records this node received (sources: consumed)
    cdef public Py_ssize_t batches     # batches this node received


cdef class SourceNode(Node):
    cdef public object topics
    cdef public object key_serde
    cdef public object value_serde


cdef class ProcessorNode(Node):
    cdef public object processor
    cdef public bint is_batch
    cdef public ProcessorContext context

    @cython.locals(ctx=ProcessorContext)
    cpdef process_batch(self, RecordBatch batch)
    @cython.locals(proc=BatchProcessor)
    cpdef _run_batch(self, RecordBatch batch)
    @cython.locals(ctx=ProcessorContext, i=Py_ssize_t, n=Py_ssize_t)
    cpdef _run_each(self, RecordBatch batch)


cdef class SinkNode(Node):
    cdef public object topic
    cdef public object key_serde
    cdef public object value_serde
    cdef public object partitioner

    cpdef process_batch(self, RecordBatch batch)
