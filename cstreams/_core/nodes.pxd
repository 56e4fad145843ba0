# Declarations of the graph nodes, compiled from cstreams/_pure/nodes.py (Cython pure-Python
# mode).

cimport cython

from cstreams._core.context cimport ProcessorContext, _reused_key_bytes
from cstreams._core.processor cimport BatchProcessor
from cstreams._core.record cimport RecordBatch


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
