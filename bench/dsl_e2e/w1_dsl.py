"""W1 written in the Streams DSL, run by bench/e2e's cstreams worker (same probe, same
settings): only the topology differs.

    stream(STRING, JSON).group_by_key().count(cache=False).to_stream().to(STRING, INT64)

cache=False: every update is produced, as the hand-built topology does (the runner verifies
each key's counts 1, 2, 3, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

import w1_cstreams  # noqa: E402


def w1_dsl_topology(input_topic: str, output_topic: str, store: str = "counts"):
    import cstreams as cs

    b = cs.StreamsBuilder()
    (b.stream(input_topic, key_serde=cs.serde.STRING, value_serde=cs.serde.JSON)
     .group_by_key().count(name="count", store_name=store, cache=False)
     .to_stream().to(output_topic))
    return b.build()


if __name__ == "__main__":
    w1_cstreams.w1_topology = w1_dsl_topology
    w1_cstreams.main()
