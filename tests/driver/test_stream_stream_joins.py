"""Windowed stream-stream joins through the TopologyTestDriver, on whichever twin runs: inner,
left and outer, DSL and Processor API, RocksDB and in-memory stores, against a brute-force
reference on random records on both sides (keys colliding, timestamps out of order within
and beyond the grace, null values), checked after every piped batch: joins appear when the
second record of a pair arrives, unmatched records only once their window closed (never an
early null), late records are dropped and counted."""

import random
from collections import Counter, defaultdict

import orjson
import pytest

import cstreams as cs
from cstreams.dsl import StreamsBuilder
from cstreams.errors import TopologyError
from cstreams.joins import add_stream_stream_join
from cstreams.testing import TopologyTestDriver

S, J = cs.serde.STRING, cs.serde.JSON
PARTS = 2
WINDOWS = cs.JoinWindows(before_ms=30, after_ms=50, grace_ms=20)


def joiner(lv, rv):
    return [None if lv is None else lv["l"], None if rv is None else rv["r"]]


def random_pipes(seed, n_batches=80, n_keys=6, null_values=True):
    """[(topic, keys, values, timestamps, partition)]: batches of "left" and "right"
    records, a key's records always on the same partition (co-partitioned), timestamps
    wandering forward with jitter (some records late)."""
    rng = random.Random(seed)
    clock = [0] * PARTS
    pipes, n = [], 0
    for _ in range(n_batches):
        p = rng.randrange(PARTS)
        keys = [f"k{i}" for i in range(n_keys) if i % PARTS == p]
        topic = rng.choice(["left", "right"])
        ks, vs, ts = [], [], []
        for _ in range(rng.randint(1, 8)):
            clock[p] += rng.randrange(0, 15)
            n += 1
            ks.append(rng.choice(keys))
            if null_values and rng.random() < 0.04:
                vs.append(None)
            else:
                vs.append({"l": n} if topic == "left" else {"r": n})
            # Multiples of 10: window bounds and the grace are hit exactly, often.
            ts.append(max(0, (clock[p] + rng.randint(-60, 10)) // 10 * 10))
        pipes.append((topic, ks, vs, ts, p))
    return pipes


class Reference:
    """Record-at-a-time join, per partition: stream time is the largest timestamp seen
    (either side); a record more than the grace behind it is late; a record joins every
    earlier record of the other side with its key within its window; an unmatched record of
    a kept side is emitted once stream time passes its timestamp + after (+ grace)."""

    def __init__(self, windows, how):
        self.w, self.how = windows, how
        self.time = defaultdict(lambda: -1)
        self.stored = defaultdict(list)     # (partition, side, key) -> [[t, value, matched]]
        self.pending = []                   # [partition, side, key, record] not emitted
        self.late = 0

    def keeps(self, side):
        return self.how == "outer" or (self.how == "left" and side == "left")

    def close_after(self, side):
        w = self.w
        return (w.after_ms if side == "left" else w.before_ms) + w.grace_ms

    def batch(self, topic, ks, vs, ts, p):
        out = []
        w = self.w
        before, after = ((w.before_ms, w.after_ms) if topic == "left"
                         else (w.after_ms, w.before_ms))
        other = "right" if topic == "left" else "left"
        for k, v, t in zip(ks, vs, ts):
            if v is None:
                continue
            if t + w.grace_ms < self.time[p]:
                self.late += 1
                continue
            self.time[p] = max(self.time[p], t)
            rec = [t, v, False]
            for o in self.stored[(p, other, k)]:
                if t - before <= o[0] <= t + after:
                    o[2] = rec[2] = True
                    lv, rv = (v, o[1]) if topic == "left" else (o[1], v)
                    out.append((k, joiner(lv, rv), max(t, o[0])))
            self.stored[(p, topic, k)].append(rec)
            if self.keeps(topic):
                self.pending.append((p, topic, k, rec))
        still = []
        for p2, side, k, rec in self.pending:
            if rec[2]:
                continue
            if p2 == p and self.time[p] > rec[0] + self.close_after(side):
                lv, rv = (rec[1], None) if side == "left" else (None, rec[1])
                out.append((k, joiner(lv, rv), rec[0]))
            else:
                still.append((p2, side, k, rec))
        self.pending = still
        return out


def canon(records):
    return Counter((k, orjson.dumps(v), t) for k, v, t in records)


def run_and_check(topo, pipes, how, windows=WINDOWS, out_topic="joined"):
    ref = Reference(windows, how)
    with TopologyTestDriver(topo, partitions={"left": PARTS, "right": PARTS,
                                              out_topic: PARTS}) as d:
        got, want = [], []
        for topic, ks, vs, ts, p in pipes:
            d.pipe_batch(topic, ks, vs, timestamps=ts, partition=p)
            got += [(r.key, r.value, r.timestamp) for r in d.read_output(out_topic)]
            want += ref.batch(topic, ks, vs, ts, p)
            assert canon(got) == canon(want)
        late = sum(t.metrics["late_records_dropped"] for t in d.tasks().values())
    assert late == ref.late
    return got, ref


def dsl_topology(how, windows=WINDOWS, materialized="rocksdb"):
    b = StreamsBuilder()
    left = b.stream("left", key_serde=S, value_serde=J)
    right = b.stream("right", key_serde=S, value_serde=J)
    op = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[how]
    op(right, joiner, windows, value_serde=J, materialized=materialized).to("joined")
    return b.build()


def processor_api_topology(how, windows=WINDOWS, persistent=True):
    topo = cs.Topology()
    topo.add_source("left-source", ["left"], key_serde=S, value_serde=J)
    topo.add_source("right-source", ["right"], key_serde=S, value_serde=J)
    node = add_stream_stream_join(topo, "pay-join", "left-source", "right-source", joiner,
                                  windows, how=how, key_serde=S, left_value_serde=J,
                                  right_value_serde=J, persistent=persistent)
    topo.add_sink("out", "joined", parents=[node], key_serde=S, value_serde=J)
    return topo


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dsl_stream_stream_join_matches_brute_force(how, seed):
    got, ref = run_and_check(dsl_topology(how), random_pipes(seed), how)
    joined = [v for _k, v, _t in got if None not in v]
    assert len(joined) > 20 and ref.late > 0
    if how != "inner":
        assert any(v[1] is None for _k, v, _t in got)
    if how == "outer":
        assert any(v[0] is None for _k, v, _t in got)


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
@pytest.mark.parametrize("persistent", [True, False])
def test_processor_api_stream_stream_join_matches_brute_force(how, persistent):
    run_and_check(processor_api_topology(how, persistent=persistent), random_pipes(4), how)


@pytest.mark.parametrize("windows", [
    cs.JoinWindows.of_time_difference_and_grace(40, 0),
    cs.JoinWindows(0, 70, 5),
    cs.JoinWindows(70, 0, 100),
])
def test_asymmetric_and_graceless_windows_match_brute_force(windows):
    run_and_check(dsl_topology("outer", windows), random_pipes(5, null_values=False),
                  "outer", windows)


def test_in_memory_stores_match_brute_force():
    run_and_check(dsl_topology("left", materialized="in_memory"), random_pipes(6), "left")


def test_left_join_emits_unmatched_only_when_the_window_closes():
    w = cs.JoinWindows.of_time_difference_and_grace(10, 10)
    with TopologyTestDriver(dsl_topology("left", w)) as d:
        d.pipe("left", "a", {"l": 1}, timestamp=100)
        d.pipe("left", "b", {"l": 2}, timestamp=100)
        d.pipe("right", "x", {"r": 0}, timestamp=120)     # another key moves stream time
        assert d.read_output("joined") == []              # 120 <= 100 + 10 + 10: still open
        d.pipe("right", "a", {"r": 3}, timestamp=110)      # joins a (within 10, not late)
        assert [(r.key, r.value, r.timestamp) for r in d.read_output("joined")] == [
            ("a", [1, 3], 110)]
        d.pipe("right", "x", {"r": 4}, timestamp=121)      # closes b's window; a joined
        assert [(r.key, r.value, r.timestamp) for r in d.read_output("joined")] == [
            ("b", [2, None], 100)]
        d.pipe("right", "b", {"r": 5}, timestamp=110)      # late (121 - 10 > 110): dropped
        assert d.read_output("joined") == []
        assert sum(t.metrics["late_records_dropped"] for t in d.tasks().values()) == 1


def test_records_with_equal_key_and_timestamp_are_all_kept():
    w = cs.JoinWindows.of_time_difference_without_grace(0)
    with TopologyTestDriver(dsl_topology("inner", w)) as d:
        d.pipe_batch("left", ["a", "a"], [{"l": 1}, {"l": 2}], timestamps=[5, 5])
        d.pipe_batch("right", ["a", "a"], [{"r": 3}, {"r": 4}], timestamps=[5, 5])
        got = sorted(r.value for r in d.output("joined"))
    assert got == [[1, 3], [1, 4], [2, 3], [2, 4]]


def test_state_survives_a_restart_of_the_driver(tmp_path):
    pipes = random_pipes(8)
    half = len(pipes) // 2
    ref = Reference(WINDOWS, "outer")
    want, got = [], []
    for part in (pipes[:half], pipes[half:]):
        with TopologyTestDriver(dsl_topology("outer"), state_dir=str(tmp_path),
                                partitions={"left": PARTS, "right": PARTS,
                                            "joined": PARTS}) as d:
            for topic, ks, vs, ts, p in part:
                d.pipe_batch(topic, ks, vs, timestamps=ts, partition=p)
                want += ref.batch(topic, ks, vs, ts, p)
            got += [(r.key, r.value, r.timestamp) for r in d.output("joined")]
    assert canon(got) == canon(want)


def test_dsl_join_after_a_key_change_repartitions_both_sides_as_needed():
    b = StreamsBuilder()
    left = b.stream("left", key_serde=S, value_serde=J).select_key(
        lambda _k, v: f"k{v['l'] % 3}", key_serde=S)
    right = b.stream("right", key_serde=S, value_serde=J)
    left.join(right, joiner, WINDOWS, value_serde=J, name="pay").to("joined")
    topo = b.build()
    assert topo.internal_topics() == ["pay-left-repartition"]
    with TopologyTestDriver(topo, partitions={"left": 1, "right": 1, "joined": 1}) as d:
        d.pipe("left", "zz", {"l": 4}, timestamp=10)       # re-keyed k1
        d.pipe("right", "k1", {"r": 9}, timestamp=20)
        assert [(r.key, r.value) for r in d.output("joined")] == [("k1", [4, 9])]


def test_stream_stream_join_needs_join_windows_and_known_serdes():
    b = StreamsBuilder()
    left = b.stream("left", key_serde=S, value_serde=J)
    right = b.stream("right", key_serde=S, value_serde=J)
    with pytest.raises(TopologyError, match="JoinWindows"):
        left.join(right, joiner)
    with pytest.raises(TopologyError, match="JoinWindows"):
        left.outer_join(right, joiner, cs.TimeWindows(10))
    b2 = StreamsBuilder()
    l2 = b2.stream("left", key_serde=S).map_values(lambda v: v)
    r2 = b2.stream("right", key_serde=S, value_serde=J)
    with pytest.raises(TopologyError, match="this_value_serde"):
        l2.join(r2, joiner, WINDOWS)
    with pytest.raises(TopologyError):
        cs.JoinWindows(-1, 0)


def test_driver_rejects_join_sides_with_different_partition_counts():
    with pytest.raises(cs.CopartitioningError, match=r"left: 3, right: 2"):
        TopologyTestDriver(dsl_topology("inner"), partitions={"left": 3, "right": 2})


def test_readme_stream_stream_example_marks_orders_paid_once_their_window_closes():
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("## Joins"):text.index("## The Processor API")]
    src = re.findall(r"```python\n(.*?)```", section, re.S)[1]
    namespace = {}
    exec(compile(src, "README.md", "exec"), namespace)
    minute = 60_000
    with TopologyTestDriver(namespace["topo"]) as d:
        d.pipe("orders", "o1", {"id": 1}, timestamp=0)
        d.pipe("orders", "o2", {"id": 2}, timestamp=1 * minute)
        d.pipe("payments", "o1", {"amount": 5}, timestamp=5 * minute)
        assert [(r.key, r.value, r.timestamp) for r in d.read_output("orders-paid")] == [
            ("o1", {"id": 1, "paid": True}, 5 * minute)]
        d.pipe("orders", "o3", {"id": 3}, timestamp=12 * minute)   # o2 closes after 12 min
        assert d.read_output("orders-paid") == []
        d.pipe("orders", "o4", {"id": 4}, timestamp=12 * minute + 1)
        assert [(r.key, r.value, r.timestamp) for r in d.read_output("orders-paid")] == [
            ("o2", {"id": 2, "paid": False}, 1 * minute)]


def test_joined_results_keep_the_headers_of_the_record_that_completed_the_pair():
    with TopologyTestDriver(dsl_topology("inner")) as d:
        d.pipe("left", "a", {"l": 1}, timestamp=10, headers=[("h", b"left")])
        d.pipe_batch("right", ["a", "b"], [{"r": 2}, {"r": 3}], timestamps=[20, 20],
                     headers=[[("h", b"right")], None])
        (rec,) = d.output("joined")
    assert (rec.key, rec.value, rec.timestamp, rec.headers) == ("a", [1, 2], 20,
                                                                [("h", b"right")])
