"""Word count: lines of text in, a running count per word out.

    sub-topology 0: words (STRING lines) -> split -> words-by-word (keyed by word)
    sub-topology 1: words-by-word -> count (RocksDB store "counts") -> word-counts (STRING/INT64)

Lines arrive keyed by anything, so the words of one partition are not the words of one task:
the split words go through a repartition topic keyed by word (the sink partitions by murmur2
of the key), and each word is counted by exactly one task. Create the three topics first; the
repartition topic needs the partition count you want for the counting tasks.

Run it against a broker with

    cstreams run examples.wordcount:build_topology --application-id wordcount \
        --bootstrap-servers localhost:9092
"""

from __future__ import annotations

import re

import cstreams as cs
from cstreams.processors import BatchCountAggregator, FlatMapProcessor

WORD = re.compile(r"[a-z0-9']+")


def split_words(_key, line):
    """One (word, word) record per word of the line, lower-cased."""
    return [(w, w) for w in WORD.findall(line.lower())] if line else []


def build_topology(input_topic="words", output_topic="word-counts",
                   repartition_topic="words-by-word", store="counts"):
    topo = cs.Topology()
    topo.add_source("lines", topics=[input_topic], key_serde=cs.serde.STRING,
                    value_serde=cs.serde.STRING)
    topo.add_processor("split", lambda: FlatMapProcessor(split_words), parents=["lines"])
    topo.add_sink("by-word", topic=repartition_topic, parents=["split"],
                  key_serde=cs.serde.STRING, value_serde=cs.serde.STRING)
    topo.add_source("words", topics=[repartition_topic], key_serde=cs.serde.STRING,
                    value_serde=cs.serde.STRING)
    topo.add_store(cs.stores.rocksdb(store, key_serde=cs.serde.STRING,
                                     value_serde=cs.serde.INT64))
    topo.add_processor("count", lambda: BatchCountAggregator(store), parents=["words"],
                       stores=[store])
    topo.add_sink("out", topic=output_topic, parents=["count"], key_serde=cs.serde.STRING,
                  value_serde=cs.serde.INT64)
    return topo


if __name__ == "__main__":
    print(build_topology().describe())
