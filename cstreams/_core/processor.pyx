"""The BatchProcessor base, a cdef class: subclass it in Python or in Cython."""

from cstreams._core.record cimport RecordBatch, make_batch


cdef class BatchProcessor:
    """A processor that receives one partition's records at a time, in offset order.

    Override ``process_batch(batch)``; ``init(ctx)`` and ``close()`` are optional. A batch
    processor also works where a per-record call is made: ``process(record)`` hands it a batch
    of one.
    """

    cpdef init(self, ctx):
        pass

    cpdef process_batch(self, RecordBatch batch):
        raise NotImplementedError(f"{type(self).__name__} must override process_batch(batch)")

    cpdef process(self, record):
        headers = record.headers
        self.process_batch(
            make_batch(
                record.topic,
                record.partition,
                [record.key],
                [record.value],
                [record.timestamp],
                [record.offset],
                None if headers is None else [headers],
            )
        )

    cpdef close(self):
        pass
