"""The Processor API: per-record Processor, BatchProcessor, punctuation types."""

from __future__ import annotations

import enum

from cstreams._impl import processor as _processor

BatchProcessor = _processor.BatchProcessor


class PunctuationType(enum.Enum):
    STREAM_TIME = "stream_time"
    WALL_CLOCK_TIME = "wall_clock_time"


STREAM_TIME = PunctuationType.STREAM_TIME
WALL_CLOCK_TIME = PunctuationType.WALL_CLOCK_TIME


class Processor:
    """A processor called once per record: override ``process(record)``.

    Inside a batch flow it runs in a loop; whatever it forwards while one input batch is
    processed reaches its children as one batch, in order.
    """

    def init(self, ctx) -> None:
        pass

    def process(self, record) -> None:
        raise NotImplementedError(f"{type(self).__name__} must override process(record)")

    def close(self) -> None:
        pass


class Cancellable:
    """Returned by ``ctx.schedule``; ``cancel()`` stops the punctuation."""

    __slots__ = ("cancelled",)

    def __init__(self):
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
