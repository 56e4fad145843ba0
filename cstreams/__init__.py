"""cstreams: stateful stream processing on Apache Kafka, batch by batch, compiled."""

from __future__ import annotations

import os as _os

from cstreams import dsl, handlers, processors, serde, stores, timestamps, windowed, windows
from cstreams._impl import IMPLEMENTATION
from cstreams._impl import record as _record
from cstreams.dsl import StreamsBuilder
from cstreams.errors import (
    BrokerUnavailableError,
    CommitError,
    ConfigurationError,
    CopartitioningError,
    CStreamsError,
    DeserializationError,
    ForwardError,
    MissingTopicsError,
    ProcessingError,
    ProducerFencedError,
    ProductionError,
    RestoreError,
    SerializationError,
    StoreError,
    TopologyError,
    TransactionError,
)
from cstreams.processor import (
    STREAM_TIME,
    WALL_CLOCK_TIME,
    BatchProcessor,
    Processor,
    PunctuationType,
)
from cstreams.topology import Topology
from cstreams.windows import SessionWindows, SlidingWindows, TimeWindows, Windowed

__version__ = "0.1.0"

Record = _record.Record
RecordBatch = _record.RecordBatch


def get_include() -> str:
    """The directory to put on Cython's include path (and the C compiler's) so that a user's
    module can ``cimport cstreams.api``: the one that holds the ``cstreams`` package."""
    return _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))


def __getattr__(name):
    # The runtime imports confluent-kafka; load it only when asked for.
    if name == "App":
        from cstreams.app import App

        return App
    if name == "testing":
        import importlib

        return importlib.import_module("cstreams.testing")
    raise AttributeError(f"module 'cstreams' has no attribute {name!r}")


__all__ = [
    "App",
    "BatchProcessor",
    "BrokerUnavailableError",
    "CStreamsError",
    "CommitError",
    "ConfigurationError",
    "CopartitioningError",
    "DeserializationError",
    "ForwardError",
    "IMPLEMENTATION",
    "MissingTopicsError",
    "ProcessingError",
    "Processor",
    "ProducerFencedError",
    "ProductionError",
    "PunctuationType",
    "Record",
    "RecordBatch",
    "RestoreError",
    "STREAM_TIME",
    "SerializationError",
    "StoreError",
    "Topology",
    "TopologyError",
    "TransactionError",
    "SessionWindows",
    "SlidingWindows",
    "StreamsBuilder",
    "TimeWindows",
    "Windowed",
    "WALL_CLOCK_TIME",
    "dsl",
    "get_include",
    "handlers",
    "processors",
    "serde",
    "stores",
    "timestamps",
    "windowed",
    "windows",
]
