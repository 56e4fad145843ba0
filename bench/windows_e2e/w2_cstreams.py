"""W2 as a cstreams topology, run by bench/e2e's cstreams worker (same probe, same client
settings): only the topology differs. The case comes from the environment:

    W2_CASE=tumbling|hopping|session  W2_EMIT=update|final

    stream(STRING, JSON) -> windowed count (RocksDB window store with changelog)
        -> sink (windowed STRING keys in Kafka Streams' format, INT64 counts)

Grace is 5 s, the input's disorder bound: no record is late, so the runner can check every
count exactly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

import w1_cstreams  # noqa: E402

GRACE_MS = 5_000


def w2_windows(case):
    from cstreams.windows import SessionWindows, TimeWindows

    if case == "tumbling":
        return TimeWindows.of(60_000, grace_ms=GRACE_MS)
    if case == "hopping":
        return TimeWindows.of(300_000, grace_ms=GRACE_MS).advance_by(60_000)
    if case == "session":
        return SessionWindows.with_inactivity_gap(30_000, grace_ms=GRACE_MS)
    raise SystemExit(f"unknown W2_CASE {case!r}")


def w2_topology(input_topic: str, output_topic: str, store: str = "windows"):
    import cstreams as cs
    from cstreams import windowed as W

    windows = w2_windows(os.environ.get("W2_CASE", "tumbling"))
    emit = os.environ.get("W2_EMIT", "final")
    topo = cs.Topology()
    topo.add_source("in", topics=[input_topic], key_serde=cs.serde.STRING,
                    value_serde=cs.serde.JSON)
    topo.add_store(W.store(store, windows, W.COUNT, key_serde=cs.serde.STRING))
    topo.add_processor("count", W.aggregate_windows(store, windows, W.COUNT, emit=emit),
                       parents=["in"], stores=[store])
    ks = (W.session_windowed_serde(cs.serde.STRING) if windows.kind == "session"
          else W.time_windowed_serde(cs.serde.STRING, windows.size_ms))
    topo.add_sink("out", topic=output_topic, parents=["count"], key_serde=ks,
                  value_serde=cs.serde.INT64)
    return topo


if __name__ == "__main__":
    w1_cstreams.w1_topology = w2_topology
    w1_cstreams.main()
