"""Word count in the Streams DSL: lines of text in, a running count per word out.

    words (lines) -> split into words -> group by word (repartition topic
    <application_id>-by-word-repartition, created by the app) -> count (RocksDB store
    "counts-store") -> word-counts (STRING word, INT64 count)

Only the input and output topics need to exist. Run it against a broker with

    cstreams run examples.dsl_wordcount:build_topology --application-id wordcount \
        --bootstrap-servers localhost:9092
"""

from __future__ import annotations

import re

import cstreams as cs

WORD = re.compile(r"[a-z0-9']+")
S = cs.serde.STRING


def build_topology(input_topic="words", output_topic="word-counts"):
    builder = cs.StreamsBuilder()
    (builder.stream(input_topic, key_serde=S, value_serde=S)
     .flat_map_values(lambda line: WORD.findall(line.lower()) if line else [])
     .group_by(lambda _key, word: word, key_serde=S, value_serde=S, name="by-word")
     .count(name="counts")
     .to_stream()
     .to(output_topic))
    return builder.build()


if __name__ == "__main__":
    print(build_topology().describe())
