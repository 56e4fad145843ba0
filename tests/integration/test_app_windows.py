"""Windowed aggregations end to end over the real broker, with RocksDB window stores and their
changelogs: exact final results against the brute-force reference (per partition: stream
time is per task), across a restart on another instance (state restored from the changelog)
under at-least-once and exactly_once_v2, and across a rebalance between two instances."""

from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

import pytest

pytest.importorskip("confluent_kafka")

from confluent_kafka import Producer  # noqa: E402
from helpers import app_config, consume_all, wait_for  # noqa: E402

import cstreams as cs  # noqa: E402
from cstreams import windowed as W  # noqa: E402
from cstreams.serde import INT64, STRING  # noqa: E402
from cstreams.windows import SessionWindows, SlidingWindows, TimeWindows  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "driver"))
from test_windows import reference_session, reference_sliding, reference_time  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PARTITIONS = 2


def events(seed, n_per_partition, span_ms, disorder_ms):
    """{partition: [(key, value, ts)]}: keys k<i> live on partition i % 2; the last record of
    each partition is far ahead, so that every window of the others closes."""
    rng = random.Random(seed)
    out = {}
    for p in range(PARTITIONS):
        keys = [f"k{i}" for i in range(10) if i % PARTITIONS == p]
        recs = []
        for i in range(n_per_partition):
            # > 0: a timestamp of 0 asks the producer for the wall-clock time.
            ts = 1000 + max(0, i * span_ms // n_per_partition - rng.randint(0, disorder_ms))
            recs.append((rng.choice(keys), rng.randint(1, 9), ts))
        out[p] = recs
    return out


def produce_events(bootstrap, topic, by_partition, lo, hi):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for part, recs in by_partition.items():
        for k, v, ts in recs[lo:hi]:
            p.produce(topic, struct.pack(">q", v), k.encode(), part, timestamp=ts)
    assert p.flush(30) == 0


def topology(src, out, windows, emit):
    topo = cs.Topology()
    topo.add_source("in", [src], key_serde=STRING, value_serde=INT64)
    W.add_aggregation(topo, "agg", ["in"], windows, W.COUNT, emit=emit, key_serde=STRING,
                      value_serde=INT64)
    if isinstance(windows, SessionWindows):
        ks = W.session_windowed_serde(STRING)
    elif isinstance(windows, SlidingWindows):
        ks = W.time_windowed_serde(STRING, windows.time_difference_ms)
    else:
        ks = W.time_windowed_serde(STRING, windows.size_ms)
    topo.add_sink("out", out, parents=["agg"], key_serde=ks, value_serde=INT64)
    return topo, ks


def decoded(records, ks):
    return [(ks.deserialize(k), struct.unpack(">q", v)[0]) for _p, _o, k, v, _h in records]


def expected(by_partition, reference, cut=None):
    want = []
    for recs in by_partition.values():
        batches = [recs] if cut is None else [recs[:cut], recs[cut:]]
        out, _late = reference(batches)
        want += [(w, v) for w, v, _ts in out]
    return sorted(want)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_final_windows_exactly_once_across_a_restart_elsewhere(broker, topic_factory, tmp_path,
                                                               guarantee):
    src, out = topic_factory("clicks", PARTITIONS), topic_factory("clicks-per-window", 2)
    windows = TimeWindows.of(1000, grace_ms=200).advance_by(500)
    data = events(3, 400, 20_000, 300)
    for p, recs in data.items():
        recs.append((f"k{p}", 1, 100_000))
    topo, ks = topology(src, out, windows, "final")
    want = expected(data, lambda b: reference_time(b, 1000, 500, 200, len, "final"))

    def app(name):
        return cs.App(topo, application_id=f"win-{out}", bootstrap_servers=broker.bootstrap_servers,
                      state_dir=str(tmp_path / name), commit_interval_ms=300,
                      processing_guarantee=guarantee, config=app_config())

    half = 200
    produce_events(broker.bootstrap_servers, src, data, 0, half)
    # Windows closed by the first half: everything the reference emits for it.
    first_want = expected({p: r[:half] for p, r in data.items()},
                          lambda b: reference_time(b, 1000, 500, 200, len, "final"))
    a = app("a").start()
    try:
        consume_all(broker.bootstrap_servers, out,
                    until=lambda r: len(r) >= len(first_want), timeout=90)
    finally:
        a.close()
    # A new instance with an empty state directory: the window store (and its stream time
    # and emission mark) comes back from the changelog.
    produce_events(broker.bootstrap_servers, src, data, half, None)
    b = app("b").start()
    try:
        consume_all(broker.bootstrap_servers, out, until=lambda r: len(r) >= len(want),
                    timeout=90)
        # Anything emitted twice would arrive with the rest: read a while longer.
        got = consume_all(broker.bootstrap_servers, out, until=lambda r: len(r) > len(want),
                          timeout=4)
        restored = b.metrics()["records_restored"]
    finally:
        b.close()
    assert sorted(decoded(got, ks)) == want
    assert restored > 0


def test_session_updates_survive_a_rebalance(broker, topic_factory, tmp_path):
    src, out = topic_factory("visits", PARTITIONS), topic_factory("sessions", 2)
    windows = SessionWindows.with_inactivity_gap(300, grace_ms=100)
    data = events(5, 300, 30_000, 150)
    topo, ks = topology(src, out, windows, "update")
    app_id = f"sess-{out}"

    def app(name):
        return cs.App(topo, application_id=app_id, bootstrap_servers=broker.bootstrap_servers,
                      state_dir=str(tmp_path / name), commit_interval_ms=300,
                      config=app_config())

    # The latest value per session key (None: merged away) after all the input.
    latest = {}
    for recs in data.values():
        out_ref, _ = reference_session([recs[:150], recs[150:]], 300, 100, len, "update")
        for w, v, _ts in out_ref:
            latest[w] = v
    live = {w: v for w, v in latest.items() if v is not None}

    a, b = app("a").start(), app("b").start()
    try:
        produce_events(broker.bootstrap_servers, src, data, 0, 150)
        wait_for(lambda: len(a.metrics()["tasks"]) + len(b.metrics()["tasks"]) >= PARTITIONS,
                 timeout=60, what="both partitions assigned")
        consume_all(broker.bootstrap_servers, out, until=lambda r: len(r) > 0, timeout=60)
        b.close()
        produce_events(broker.bootstrap_servers, src, data, 150, None)

        def done(records):
            seen = {}
            for _p, _o, k, v, _h in records:
                seen[ks.deserialize(k)] = None if v is None else struct.unpack(">q", v)[0]
            return {w: v for w, v in seen.items() if v is not None} == live

        got = consume_all(broker.bootstrap_servers, out, until=done, timeout=120)
    finally:
        a.close()
        b.close()
    seen = {}
    for _p, _o, k, v, _h in got:
        seen[ks.deserialize(k)] = None if v is None else struct.unpack(">q", v)[0]
    assert {w: v for w, v in seen.items() if v is not None} == live


KINDS = {
    "tumbling": (TimeWindows.of(1000, grace_ms=100),
                 lambda b, emit: reference_time(b, 1000, 1000, 100, len, emit)),
    "sliding": (SlidingWindows.with_time_difference(500, grace_ms=100),
                lambda b, emit: reference_sliding(b, 500, 100, len, emit)),
    "session": (SessionWindows.with_inactivity_gap(400, grace_ms=100),
                lambda b, emit: reference_session(b, 400, 100, len, emit)),
}


@pytest.mark.parametrize("kind,emit", [("tumbling", "update"), ("sliding", "final"),
                                       ("sliding", "update"), ("session", "final")])
def test_every_window_kind_end_to_end(broker, topic_factory, tmp_path, kind, emit):
    """Final: exactly the reference's windows, once each. Update: the batches differ from
    the reference's, so the last value of every window is compared."""
    src, out = topic_factory("in", PARTITIONS), topic_factory("out", 2)
    windows, reference = KINDS[kind]
    data = events(7, 300, 20_000, 200)
    for p, recs in data.items():
        recs.append((f"k{p}", 1, 100_000))
    topo, ks = topology(src, out, windows, emit)
    produce_events(broker.bootstrap_servers, src, data, 0, None)
    want = []
    last = {}
    for recs in data.values():
        for w, v, _ts in reference([recs], emit)[0]:
            want.append((w, v))
            last[w] = v
    app = cs.App(topo, application_id=f"kinds-{out}", bootstrap_servers=broker.bootstrap_servers,
                 state_dir=str(tmp_path), commit_interval_ms=300, config=app_config())
    app.start()
    try:
        if emit == "final":
            consume_all(broker.bootstrap_servers, out, until=lambda r: len(r) >= len(want),
                        timeout=90)
            got = consume_all(broker.bootstrap_servers, out,
                              until=lambda r: len(r) > len(want), timeout=4)
        else:
            def latest(records):
                seen = {}
                for _p, _o, k, v, _h in records:
                    seen[ks.deserialize(k)] = struct.unpack(">q", v)[0]
                return seen

            got = consume_all(broker.bootstrap_servers, out,
                              until=lambda r: latest(r) == last, timeout=90)
    finally:
        app.close()
    if emit == "final":
        assert sorted(decoded(got, ks)) == sorted(want)
    else:
        seen = {}
        for w, v in decoded(got, ks):
            seen[w] = v
        assert seen == last
