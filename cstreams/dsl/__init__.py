"""The Streams DSL: ``StreamsBuilder`` builds an ordinary ``cs.Topology`` from chained
operators on streams and tables (see cstreams.dsl.builder)."""

from cstreams.dsl.builder import (
    BranchedKStream,
    GlobalKTable,
    KGroupedStream,
    KGroupedTable,
    KStream,
    KTable,
    StreamsBuilder,
)
from cstreams.dsl.change import Change

__all__ = ["BranchedKStream", "Change", "GlobalKTable", "KGroupedStream", "KGroupedTable",
           "KStream", "KTable", "StreamsBuilder"]
