# Public declarations of the dispatch layer; ProcessorContext is what Cython processors use.

from libc.stdint cimport int32_t

from cstreams._core.record cimport RecordBatch


cdef class _Output:
    cdef public object keys
    cdef public object values
    cdef public object timestamps
    cdef public object offsets
    cdef public object headers
    cdef public bint owned
    cdef public bint has_headers

    cpdef clear(self)
    cdef int _own(self) except -1
    cdef int add(self, object key, object value, object timestamp, object offset,
                 object headers) except -1
    cdef int add_all(self, object keys, object values, object timestamps, object offsets,
                     object headers) except -1
    cpdef object take(self, object topic, object partition)


cdef class ProcessorContext:
    cdef public object _node
    cdef public object _task
    cdef RecordBatch _current
    cdef object _max_ts             # the current batch's latest timestamp, once computed
    cdef public Py_ssize_t _index
    cdef public object _punctuation_ts
    cdef public list _outputs       # (child, _Output) per child, in child order
    cdef public dict _by_name
    cdef list _outs                 # the _Output objects of _outputs

    cdef int _set_batch(self, RecordBatch batch) except -1
    cdef object _timestamp(self)
    cdef object _offset(self)
    cdef object _headers(self)
    cdef _Output _target(self, object to)
    cpdef forward(self, key, value, timestamp=*, headers=*, to=*)
    cpdef forward_batch(self, keys, values, timestamps=*, headers=*, to=*)
    cpdef object get_store(self, object name)
    cpdef _flush_outputs(self, topic, partition)
    cpdef _discard_outputs(self)


cdef class Node:
    cdef dict __dict__
    cdef public object name
    cdef public list children
    cdef public object store_names
    cdef public object task
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


cdef class SinkNode(Node):
    cdef public object topic
    cdef public object key_serde
    cdef public object value_serde
    cdef public object partitioner


cdef int32_t murmur2_buffer(const unsigned char *data, Py_ssize_t length) noexcept nogil
