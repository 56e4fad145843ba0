"""Windowed aggregations through the TopologyTestDriver against brute-force references.

The references know nothing of stores, segments or composite keys: they replay the records
one at a time (stream time = the largest timestamp so far), put each into every window that
contains it and is still open, and emit per batch (update) or per closed window (final).
Every test runs on the compiled core and on the pure twins (the suite runs twice)."""

from __future__ import annotations

import random

import pytest

import cstreams as cs
from cstreams import windowed as W
from cstreams.serde import INT64, JSON, STRING
from cstreams.testing import TopologyTestDriver
from cstreams.windows import SessionWindows, SlidingWindows, TimeWindows, Windowed

KEYS = ["a", "b", "c", "d", "e", "f"]


def random_batches(rng, n, *, span_ms, disorder_ms, max_batch=40):
    """Records with event times rising over ``span_ms`` and up to ``disorder_ms`` of
    disorder, cut into random batches."""
    out = []
    for i in range(n):
        base = i * span_ms // n
        ts = max(0, base - rng.randint(0, disorder_ms))
        out.append((rng.choice(KEYS), rng.randint(-5, 50), ts))
    batches = []
    i = 0
    while i < n:
        k = rng.randint(1, max_batch)
        batches.append(out[i:i + k])
        i += k
    return batches


AGGS = {
    "count": (W.COUNT, lambda vs: len(vs), INT64),
    "sum": (W.SUM, lambda vs: sum(vs), JSON),
    "min": (W.MIN, lambda vs: min(vs), JSON),
    "max": (W.MAX, lambda vs: max(vs), JSON),
    "mean": (W.MEAN, lambda vs: sum(vs) / len(vs), JSON),
    "aggregate": (W.aggregate(lambda: [], lambda k, v, a: a + [v], lambda k, a, b: a + b),
                  lambda vs: list(vs), JSON),
    "batch_aggregate": (W.aggregate(lambda: [], merger=lambda k, a, b: a + b,
                                    batch_adder=lambda k, vs, a: a + vs),
                        lambda vs: list(vs), JSON),
}


# --- references -----------------------------------------------------------------------------
def reference_time(batches, size, advance, grace, fn, emit):
    observed = -1
    windows = {}        # (key, start) -> values in offset order
    emitted = set()
    out = []
    late = 0
    for batch in batches:
        changed = {}
        for k, v, ts in batch:
            observed = max(observed, ts)
            hit = False
            for s in range(max(0, ts - size + 1), ts + 1):
                if s % advance or s + size + grace <= observed:
                    continue
                windows.setdefault((k, s), []).append(v)
                changed.pop((k, s), None)
                changed[(k, s)] = ts
                hit = True
            if not hit:
                late += 1
        if emit == "update":
            for (k, s), ts in changed.items():
                out.append((Windowed(k, s, s + size), fn(windows[(k, s)]), ts))
        else:
            closed = sorted((s, k.encode()) for (k, s) in windows
                            if s + size + grace <= observed and (k, s) not in emitted)
            for s, kb in closed:
                k = kb.decode()
                emitted.add((k, s))
                out.append((Windowed(k, s, s + size), fn(windows[(k, s)]), s + size - 1))
    return out, late


def reference_session(batches, gap, grace, fn, emit):
    observed = -1
    sessions = {}       # key -> list of [start, end, values]
    emitted = set()
    out = []
    late = 0
    for batch in batches:
        before = {(k, s[0], s[1]) for k, ss in sessions.items() for s in ss}
        changed = {}
        for i, (k, v, ts) in enumerate(batch):
            observed = max(observed, ts)
            close = observed - grace
            ss = sessions.setdefault(k, [])
            hits = [s for s in ss if s[1] >= ts - gap and s[0] <= ts + gap
                    and s[1] + gap >= close]
            start = min([ts] + [s[0] for s in hits])
            end = max([ts] + [s[1] for s in hits])
            if end < close:
                late += 1
                continue
            values = []
            for s in sorted(hits):
                ss.remove(s)
                values += s[2]
                if (s[0], s[1]) != (start, end):
                    changed.pop((k, s[0], s[1]), None)
                    changed[(k, s[0], s[1])] = (i, ts)
            ss.append([start, end, values + [v]])
            changed.pop((k, start, end), None)
            changed[(k, start, end)] = (i, ts)
        if emit == "update":
            live = {(k, s[0], s[1]): s[2] for k, ss in sessions.items() for s in ss}
            for (k, s, e), (_i, ts) in sorted(changed.items(), key=lambda x: x[1][0]):
                if (k, s, e) in live:
                    out.append((Windowed(k, s, e), fn(live[(k, s, e)]), ts))
                elif (k, s, e) in before:
                    out.append((Windowed(k, s, e), None, ts))
        else:
            closed = sorted((s[1], s[0], k.encode(), k) for k, ss in sessions.items()
                            for s in ss if s[1] + gap < observed - grace
                            and (k, s[0], s[1]) not in emitted)
            for e, s, _kb, k in closed:
                emitted.add((k, s, e))
                vals = next(x[2] for x in sessions[k] if x[0] == s and x[1] == e)
                out.append((Windowed(k, s, e), fn(vals), e))
    return out, late


def reference_sliding(batches, d, grace, fn, emit):
    """Kafka Streams' SlidingWindows from the definition: per key, windows [t - d, t] (for
    t < d: [0, d]) at every record t and [t + 1, t + 1 + d] when a record falls in it; a
    window's value folds the records it holds, in (timestamp, arrival) order; closed windows
    (end + grace < stream time) no longer change; late: even [t + 1, t + 1 + d] closed."""
    observed = -1
    recs = {}           # key -> [(ts, arrival, value)]
    windows = {}        # (key, start) -> value
    emitted = set()
    out = []
    late = 0
    arrival = 0
    for batch in batches:
        changed = {}
        for k, v, ts in batch:
            observed = max(observed, ts)
            close = observed - grace
            if ts + 1 + d <= close:
                late += 1
                continue
            arrival += 1
            rs = recs.setdefault(k, [])
            rs.append((ts, arrival, v))
            times = sorted({r[0] for r in rs})
            starts = set()
            for q in times:
                ls = max(0, q - d)
                if ls <= ts <= ls + d:
                    starts.add(ls)
                if any(q < x <= q + d for x in times) and (q + 1 <= ts <= q + 1 + d or q == ts):
                    starts.add(q + 1)
            for s in sorted(starts):
                if s + d < close:
                    continue
                val = fn([r[2] for r in sorted(rs) if s <= r[0] <= s + d])
                if windows.get((k, s)) != val:
                    windows[(k, s)] = val
                    changed.pop((k, s), None)
                    changed[(k, s)] = ts
        if emit == "update":
            for (k, s), ts in changed.items():
                out.append((Windowed(k, s, s + d), windows[(k, s)], ts))
        else:
            closed = sorted((s, k.encode(), k) for (k, s) in windows
                            if s + d + grace < observed and (k, s) not in emitted)
            for s, _kb, k in closed:
                emitted.add((k, s))
                out.append((Windowed(k, s, s + d), windows[(k, s)], s + d))
    return out, late


# --- topologies -----------------------------------------------------------------------------
def windowed_topology(windows, agg, emit, out_serde, persistent=True, retention_ms=None):
    topo = cs.Topology()
    topo.add_source("in", ["events"], key_serde=STRING, value_serde=INT64)
    specs = W.stores("win", windows, agg, key_serde=STRING, value_serde=INT64,
                     persistent=persistent, retention_ms=retention_ms, cache_max_entries=50)
    for spec in specs:
        topo.add_store(spec)
    topo.add_processor("agg", W.aggregate_windows("win", windows, agg, emit=emit),
                       parents=["in"], stores=[spec.name for spec in specs])
    if isinstance(windows, SessionWindows):
        kserde = W.session_windowed_serde(STRING)
    elif isinstance(windows, SlidingWindows):
        kserde = W.time_windowed_serde(STRING, windows.time_difference_ms)
    else:
        kserde = W.time_windowed_serde(STRING, windows.size_ms)
    topo.add_sink("out", "windows-out", parents=["agg"], key_serde=kserde,
                  value_serde=out_serde)
    return topo


def run(topo, batches, **kw):
    with TopologyTestDriver(topo, **kw) as d:
        for b in batches:
            d.pipe_batch("events", [r[0] for r in b], [r[1] for r in b], [r[2] for r in b])
        got = [(r.key, r.value, r.timestamp) for r in d.read_output("windows-out")]
        late = sum(t.metrics["late_records_dropped"] for t in d.tasks().values())
    return got, late


# --- time windows ---------------------------------------------------------------------------
@pytest.mark.parametrize("emit", ["update", "final"])
@pytest.mark.parametrize("size,advance,grace", [(100, 100, 0), (100, 100, 30), (100, 20, 15),
                                                (50, 30, 0)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_time_windows_match_reference(seed, size, advance, grace, emit):
    rng = random.Random(seed * 1000 + size + advance + grace)
    batches = random_batches(rng, 400, span_ms=2000, disorder_ms=60)
    windows = TimeWindows.of(size, grace_ms=grace).advance_by(advance)
    agg, fn, serde = AGGS["count"]
    want, want_late = reference_time(batches, size, advance, grace, fn, emit)
    got, late = run(windowed_topology(windows, agg, emit, serde), batches)
    assert got == want
    assert late == want_late
    if advance == size and grace == 0:
        assert want_late > 0, "no late record in this input"


@pytest.mark.parametrize("name", sorted(AGGS))
@pytest.mark.parametrize("persistent", [True, False])
def test_every_aggregation_on_both_backends(name, persistent):
    rng = random.Random(sum(map(ord, name)))
    batches = random_batches(rng, 300, span_ms=1500, disorder_ms=40)
    agg, fn, serde = AGGS[name]
    windows = TimeWindows.of(100, grace_ms=10).advance_by(50)
    for emit in ("update", "final"):
        want, _ = reference_time(batches, 100, 50, 10, fn, emit)
        got, _ = run(windowed_topology(windows, agg, emit, serde, persistent), batches)
        assert got == want, emit


# --- session windows ------------------------------------------------------------------------
@pytest.mark.parametrize("emit", ["update", "final"])
@pytest.mark.parametrize("gap,grace", [(30, 0), (30, 20), (80, 5)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_session_windows_match_reference(seed, gap, grace, emit):
    rng = random.Random(seed * 7 + gap + grace)
    batches = random_batches(rng, 400, span_ms=4000, disorder_ms=50)
    agg, fn, serde = AGGS["count"]
    want, want_late = reference_session(batches, gap, grace, fn, emit)
    got, late = run(windowed_topology(SessionWindows.with_inactivity_gap(gap, grace), agg, emit,
                                      serde), batches)
    assert got == want
    assert late == want_late
    assert any(w.start < w.end for w, _, _ in want), "no session of two records or more"
    if emit == "update" and grace:
        assert any(v is None for _, v, _ in want), "no session merge in this input"


@pytest.mark.parametrize("name", ["sum", "mean", "aggregate", "batch_aggregate"])
@pytest.mark.parametrize("persistent", [True, False])
def test_session_aggregations_on_both_backends(name, persistent):
    rng = random.Random(len(name))
    batches = random_batches(rng, 300, span_ms=3000, disorder_ms=40)
    agg, fn, serde = AGGS[name]
    for emit in ("update", "final"):
        want, _ = reference_session(batches, 40, 10, fn, emit)
        got, _ = run(windowed_topology(SessionWindows.with_inactivity_gap(40, 10), agg, emit,
                                       serde, persistent), batches)
        assert got == want, emit


def test_session_merge_forwards_tombstones_for_the_merged_sessions():
    windows = SessionWindows.with_inactivity_gap(10, grace_ms=20)
    topo = windowed_topology(windows, W.COUNT, "update", INT64)
    with TopologyTestDriver(topo) as d:
        d.pipe("events", "k", 1, timestamp=0)
        d.pipe("events", "k", 1, timestamp=18)
        d.pipe("events", "k", 1, timestamp=9)      # bridges [0,0] and [18,18]
        got = [(r.key, r.value) for r in d.read_output("windows-out")]
        assert got == [(Windowed("k", 0, 0), 1), (Windowed("k", 18, 18), 1),
                       (Windowed("k", 0, 0), None), (Windowed("k", 18, 18), None),
                       (Windowed("k", 0, 18), 3)]
        assert d.get_store("win").fetch("k") == [(Windowed("k", 0, 18), 3)]


# --- late records, errors, time -------------------------------------------------------------
def test_late_records_are_counted_and_dead_lettered():
    windows = TimeWindows.of(100, grace_ms=10)
    topo = windowed_topology(windows, W.COUNT, "final", INT64)
    with TopologyTestDriver(topo, error_handler="dead-letter:late") as d:
        d.pipe_batch("events", ["a", "a", "b"], [1, 1, 1], [5, 250, 50])
        dlq = d.output_raw("late")
        assert [(k, int(dict(h)["cstreams.source.offset"])) for k, _, _, h, _ in dlq] == \
            [(b"b", 2)]
        assert b"late record" in dict(dlq[0][3])["cstreams.error"]
        assert d.tasks()[(0, 0)].metrics["late_records_dropped"] == 1
        assert [(r.key, r.value) for r in d.read_output("windows-out")] == \
            [(Windowed("a", 0, 100), 1)]


def test_negative_timestamp_goes_to_the_error_handler():
    topo = windowed_topology(TimeWindows.of(100), W.COUNT, "update", INT64)
    with TopologyTestDriver(topo) as d:
        with pytest.raises(cs.ProcessingError, match="offset 1 .*negative timestamp"):
            d.pipe_batch("events", ["a", "b"], [1, 1], [5, -1])
    with TopologyTestDriver(topo, error_handler="skip") as d:
        d.pipe_batch("events", ["a", "b"], [1, 1], [5, -1])
        assert [(r.key, r.value) for r in d.read_output("windows-out")] == \
            [(Windowed("a", 0, 100), 1)]


def test_advance_stream_time_closes_windows():
    topo = windowed_topology(TimeWindows.of(100, grace_ms=50), W.COUNT, "final", INT64)
    with TopologyTestDriver(topo) as d:
        d.pipe_batch("events", ["a", "b", "a"], [1, 1, 1], [10, 20, 30])
        assert d.read_output("windows-out") == []
        d.advance_stream_time(119)         # 149: [0, 100) + 50 not yet passed
        assert d.read_output("windows-out") == []
        d.advance_stream_time(1)
        assert [(r.key, r.value) for r in d.read_output("windows-out")] == \
            [(Windowed("a", 0, 100), 2), (Windowed("b", 0, 100), 1)]
        assert d.stream_time() == 150


def test_final_results_are_not_emitted_twice_after_a_restart(tmp_path):
    windows = TimeWindows.of(100)
    topo = windowed_topology(windows, W.COUNT, "final", INT64)
    with TopologyTestDriver(topo, state_dir=str(tmp_path)) as d:
        d.pipe_batch("events", ["a", "a"], [1, 1], [10, 120])
        first = [(r.key, r.value) for r in d.read_output("windows-out")]
    assert first == [(Windowed("a", 0, 100), 1)]
    with TopologyTestDriver(topo, state_dir=str(tmp_path)) as d:
        d.pipe_batch("events", ["a", "b"], [1, 1], [130, 90])   # 90 is late: [0, 100) closed
        d.advance_stream_time(0)
        assert d.stream_time() == 130
        d.pipe("events", "a", 1, timestamp=200)
        assert [(r.key, r.value) for r in d.read_output("windows-out")] == \
            [(Windowed("a", 100, 200), 2)]


# --- stores ---------------------------------------------------------------------------------
@pytest.mark.parametrize("persistent", [True, False])
def test_retention_drops_old_windows_by_segment(persistent):
    windows = TimeWindows.of(1000)
    topo = windowed_topology(windows, W.COUNT, "update", INT64, persistent, retention_ms=120_000)
    with TopologyTestDriver(topo) as d:
        for minute in range(0, 10):
            t0 = minute * 60_000
            d.pipe_batch("events", KEYS, [1] * len(KEYS), [t0 + i for i in range(len(KEYS))])
        store = d.get_store("win")
        starts = sorted({w.start for w, _ in store.all()})
        # Retention 120 s, segments of 60 s: at 540 s every window before 420 s is gone.
        assert starts == [420_000, 480_000, 540_000]
        assert store.fetch("a", 0, 10**12) == [(420_000, 1), (480_000, 1), (540_000, 1)]
        store.flush()
        got = list(store.kv.backend.range(None, None))
        assert len([kb for kb, _ in got if kb[:1] != b"\xff"]) == 3 * len(KEYS)


@pytest.mark.parametrize("persistent", [True, False])
def test_window_store_api(tmp_path, persistent):
    spec = (cs.stores.rocksdb_window if persistent else cs.stores.in_memory_window)(
        "w", STRING, INT64, retention_ms=10_000, window_size_ms=100)
    store = spec.build(str(tmp_path / "w"))
    try:
        store.put("a", 0, 1)
        store.put_batch(["a", "b", "a"], [100, 100, 300], [2, 3, 4])
        assert store.fetch("a", 100) == 2
        assert store.fetch("a", 200) is None
        assert store.fetch("a", 0, 200) == [(0, 1), (100, 2)]
        assert store.fetch_batch(["b", "a", "c"], [100, 300, 0]) == [3, 4, None]
        assert store.fetch_range("b", "c", 0, 1000) == [(Windowed("b", 100, 200), 3)]
        assert store.fetch_all(100, 100) == [(Windowed("a", 100, 200), 2),
                                             (Windowed("b", 100, 200), 3)]
        store.put("a", 0, None)
        assert [w for w, _ in store.all()] == [Windowed("a", 100, 200), Windowed("b", 100, 200),
                                               Windowed("a", 300, 400)]
        store.flush()
        assert store.fetch("a", 0, 1000) == [(100, 2), (300, 4)]
    finally:
        store.close()


@pytest.mark.parametrize("persistent", [True, False])
def test_session_store_api(tmp_path, persistent):
    spec = (cs.stores.rocksdb_session if persistent else cs.stores.in_memory_session)(
        "s", STRING, INT64, retention_ms=10_000)
    store = spec.build(str(tmp_path / "s"))
    try:
        store.put("a", 0, 10, 2)
        store.put("a", 50, 60, 3)
        store.put("b", 5, 5, 1)
        assert store.find_sessions("a", 8, 40) == [(Windowed("a", 0, 10), 2)]
        assert store.fetch("a") == [(Windowed("a", 0, 10), 2), (Windowed("a", 50, 60), 3)]
        store.remove("a", 0, 10)
        store.flush()
        assert store.all() == [(Windowed("b", 5, 5), 1), (Windowed("a", 50, 60), 3)]
        assert store.fetch_session("a", 50, 60) == 3
    finally:
        store.close()


def test_windowed_serdes_use_kafka_streams_formats():
    tw = W.time_windowed_serde(STRING, 60_000)
    b = tw.serialize(Windowed("user", 120_000, 180_000))
    assert b == b"user" + (120_000).to_bytes(8, "big")
    assert tw.deserialize(b) == Windowed("user", 120_000, 180_000)
    sw = W.session_windowed_serde(STRING)
    b = sw.serialize(Windowed("user", 5, 9))
    assert b == b"user" + (9).to_bytes(8, "big") + (5).to_bytes(8, "big")
    assert sw.deserialize(b) == Windowed("user", 5, 9)
    assert W.READABLE.deserialize(W.READABLE.serialize(Windowed("u", 1, 2))) == \
        Windowed("u", 1, 2)
    assert W.READABLE.serialize(Windowed("u", 1, 2)) == b'{"key":"u","start":1,"end":2}'


def test_window_definitions():
    assert TimeWindows.of(100).advance_by(40).window_starts(130) == [40, 80, 120]
    assert TimeWindows.of(100).window_starts(99) == [0]
    with pytest.raises(cs.TopologyError):
        TimeWindows.of(100).advance_by(200)
    with pytest.raises(cs.TopologyError, match="retention"):
        W.store("x", TimeWindows.of(100, grace_ms=10), retention_ms=50)


# --- the DSL --------------------------------------------------------------------------------
@pytest.mark.parametrize("emit", ["update", "final"])
def test_dsl_windowed_count_matches_reference(emit):
    rng = random.Random(11)
    batches = random_batches(rng, 300, span_ms=2000, disorder_ms=40)
    b = cs.StreamsBuilder()
    (b.stream("events", key_serde=STRING, value_serde=INT64)
     .group_by_key()
     .windowed_by(TimeWindows.of(100, grace_ms=20).advance_by(50))
     .count(emit=emit)
     .to_stream()
     .to("windows-out"))
    want, _ = reference_time(batches, 100, 50, 20, len, emit)
    got, _ = run(b.build(), batches)
    assert got == want


@pytest.mark.parametrize("emit", ["update", "final"])
def test_dsl_session_aggregate_after_a_key_change(emit):
    """group_by() repartitions; the session aggregation reads the repartition topic."""
    rng = random.Random(12)
    batches = random_batches(rng, 300, span_ms=3000, disorder_ms=30)
    # The stream's keys are "x<key>"; group_by strips the prefix again.
    batches_in = [[("x" + k, v, ts) for k, v, ts in bt] for bt in batches]
    b = cs.StreamsBuilder()
    (b.stream("events", key_serde=STRING, value_serde=INT64)
     .group_by(lambda k, v: k[1:], key_serde=STRING, value_serde=INT64)
     .windowed_by(SessionWindows.with_inactivity_gap(40, grace_ms=10))
     .aggregate(lambda: 0, lambda k, v, a: a + v, lambda k, a, c: a + c, emit=emit)
     .to_stream()
     .to("windows-out"))
    want, _ = reference_session(batches, 40, 10, sum, emit)
    got, _ = run(b.build(), batches_in)
    assert got == want


def test_dsl_windowed_reduce_and_mean_outputs():
    b = cs.StreamsBuilder()
    w = (b.stream("events", key_serde=STRING, value_serde=INT64).group_by_key()
         .windowed_by(TimeWindows.of(100)))
    w.reduce(max, emit="final").to_stream().to("windows-out")
    w.mean(emit="final").to_stream().to("means")
    with TopologyTestDriver(b.build()) as d:
        d.pipe_batch("events", ["a", "a", "b", "a"], [3, 9, 4, 1], [1, 50, 60, 200])
        assert [(r.key, r.value) for r in d.read_output("windows-out")] == \
            [(Windowed("a", 0, 100), 9), (Windowed("b", 0, 100), 4)]
        assert [(r.key, r.value) for r in d.read_output("means")] == \
            [(Windowed("a", 0, 100), 6.0), (Windowed("b", 0, 100), 4.0)]
        with pytest.raises(cs.TopologyError, match="windowed table"):
            w.count().filter(lambda k, v: True)


def test_sessions_continue_after_a_restart(tmp_path):
    windows = SessionWindows.with_inactivity_gap(50)
    topo = windowed_topology(windows, W.COUNT, "final", INT64)
    with TopologyTestDriver(topo, state_dir=str(tmp_path)) as d:
        d.pipe_batch("events", ["a", "a", "b"], [1, 1, 1], [10, 40, 45])
        assert d.read_output("windows-out") == []
    with TopologyTestDriver(topo, state_dir=str(tmp_path)) as d:
        d.pipe_batch("events", ["a", "b"], [1, 1], [80, 300])
        # Closed at 300: [45, 45] (45 + 50 < 300) and [10, 80] (80 + 50 < 300).
        assert [(r.key, r.value) for r in d.read_output("windows-out")] == \
            [(Windowed("b", 45, 45), 1), (Windowed("a", 10, 80), 3)]


# --- timestamp extractors -------------------------------------------------------------------
def extractor_topology(extractor):
    b = cs.StreamsBuilder()
    (b.stream("clicks", key_serde=STRING, value_serde=JSON, timestamp_extractor=extractor)
     .group_by_key().windowed_by(TimeWindows.of(100)).count(emit="final")
     .to_stream().to("windows-out"))
    return b.build()


@pytest.mark.parametrize("extractor", [
    cs.timestamps.field("ts"),
    lambda k, v, ts: v["ts"],
    cs.timestamps.batch(lambda ks, vs, tss: [v["ts"] for v in vs]),
])
def test_event_time_from_the_payload(extractor):
    with TopologyTestDriver(extractor_topology(extractor)) as d:
        # Kafka timestamps say nothing; the payload's "ts" is the event time.
        d.pipe_batch("clicks", ["a", "a", "b", "a"],
                     [{"ts": 10}, {"ts": 99}, {"ts": 150}, {"ts": 260}], [5000] * 4)
        assert [(r.key, r.value) for r in d.read_output("windows-out")] == \
            [(Windowed("a", 0, 100), 2), (Windowed("b", 100, 200), 1)]
        assert d.stream_time() == 260


def test_missing_or_negative_event_time_goes_to_the_error_handler():
    topo = extractor_topology(cs.timestamps.field("ts"))
    with TopologyTestDriver(topo) as d:
        with pytest.raises(cs.ProcessingError, match="offset 1 has an invalid timestamp None"):
            d.pipe_batch("clicks", ["a", "b"], [{"ts": 10}, {"other": 1}])
    with TopologyTestDriver(topo, error_handler="dead-letter:bad-time") as d:
        d.pipe_batch("clicks", ["a", "b", "c", "a"],
                     [{"ts": 10}, {"other": 1}, {"ts": -4}, {"ts": 500}])
        assert [k for k, *_ in d.output_raw("bad-time")] == [b"b", b"c"]
        assert [(r.key, r.value) for r in d.read_output("windows-out")] == \
            [(Windowed("a", 0, 100), 1)]


# --- sliding windows ------------------------------------------------------------------------
@pytest.mark.parametrize("emit", ["update", "final"])
@pytest.mark.parametrize("d,grace", [(40, 0), (40, 25), (100, 10)])
@pytest.mark.parametrize("seed", [1, 2])
def test_sliding_windows_match_reference(seed, d, grace, emit):
    rng = random.Random(seed * 31 + d + grace)
    batches = random_batches(rng, 300, span_ms=3000, disorder_ms=d + 50)
    agg, fn, serde = AGGS["count"]
    want, want_late = reference_sliding(batches, d, grace, fn, emit)
    got, late = run(windowed_topology(SlidingWindows.with_time_difference(d, grace), agg, emit,
                                      serde), batches)
    assert got == want
    assert late == want_late
    # The input exercises windows of several records and late records.
    assert any(v > 1 for _, v, _ in want)
    if grace == 0:
        assert want_late > 0


@pytest.mark.parametrize("name", ["sum", "max", "mean"])
@pytest.mark.parametrize("persistent", [True, False])
def test_sliding_aggregations_on_both_backends(name, persistent):
    rng = random.Random(len(name) * 3)
    batches = random_batches(rng, 200, span_ms=2000, disorder_ms=30)
    agg, fn, serde = AGGS[name]
    for emit in ("update", "final"):
        want, _ = reference_sliding(batches, 50, 10, fn, emit)
        got, _ = run(windowed_topology(SlidingWindows.with_time_difference(50, 10), agg, emit,
                                       serde, persistent), batches)
        assert got == want, emit


def test_sliding_windows_of_kafka_streams_example():
    """Records at 8, 12 and 23 with d = 10: [0, 10] (early), [2, 12], [9, 19] (right of 8),
    [13, 23], and [13, 23] is also 12's right window; 23 has no right window."""
    topo = windowed_topology(SlidingWindows.with_time_difference(10, 100), W.COUNT, "update",
                             INT64)
    with TopologyTestDriver(topo) as d:
        for ts in (8, 12, 23):
            d.pipe("events", "k", 1, timestamp=ts)
        latest = {}
        for r in d.read_output("windows-out"):
            latest[(r.key.start, r.key.end)] = r.value
        assert latest == {(0, 10): 1, (2, 12): 2, (9, 19): 1, (13, 23): 1}


def test_dsl_sliding_count():
    rng = random.Random(5)
    batches = random_batches(rng, 200, span_ms=2000, disorder_ms=30)
    b = cs.StreamsBuilder()
    (b.stream("events", key_serde=STRING, value_serde=INT64).group_by_key()
     .windowed_by(SlidingWindows.with_time_difference(60, grace_ms=20))
     .count(emit="final").to_stream().to("windows-out"))
    want, _ = reference_sliding(batches, 60, 20, len, "final")
    got, _ = run(b.build(), batches)
    assert got == want
