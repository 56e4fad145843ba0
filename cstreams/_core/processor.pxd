from cstreams._core.record cimport RecordBatch


cdef class BatchProcessor:
    cpdef init(self, ctx)
    cpdef process_batch(self, RecordBatch batch)
    cpdef process(self, record)
    cpdef close(self)
