"""The BatchProcessor base (a cdef class in the compiled core)."""

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
        self.process_batch(
            RecordBatch(
                record.topic,
                record.partition,
                [record.key],
                [record.value],
                [record.timestamp],
                [record.offset],
                None if record.headers is None else [record.headers],
            )
        )

    def close(self):
        pass
