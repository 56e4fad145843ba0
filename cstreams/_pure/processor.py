"""The BatchProcessor base: subclass it in Python or in Cython.

One source for both builds: run as is on the pure-Python path, compiled by Cython (pure-Python
mode) into cstreams._core.processor, whose .pxd makes BatchProcessor a cdef class that Cython
processors extend (cstreams.api).
"""

from __future__ import annotations

from .record import RecordBatch


class BatchProcessor:
    """A processor that receives one partition's records at a time, in offset order.

    Override ``process_batch(batch)``; ``init(ctx)`` and ``close()`` are optional. A batch
    processor also works where a per-record call is made: ``process(record)`` hands it a batch
    of one.
    """

    def init(self, ctx):
        pass

    def process_batch(self, batch):
        raise NotImplementedError(f"{type(self).__name__} must override process_batch(batch)")

    def process(self, record):
        headers = record.headers
        self.process_batch(
            RecordBatch(
                record.topic,
                record.partition,
                [record.key],
                [record.value],
                [record.timestamp],
                [record.offset],
                None if headers is None else [headers],
            )
        )

    def close(self):
        pass
