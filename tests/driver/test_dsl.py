"""The Streams DSL through the TopologyTestDriver: every operator, naming, validation, and
the DSL against the hand-built Processor API topology on the same input."""

import random
from collections import Counter, defaultdict

import pytest

import cstreams as cs
from cstreams.dsl import Change, StreamsBuilder
from cstreams.errors import ProcessingError, TopologyError
from cstreams.testing import TopologyTestDriver

S, I64, J = cs.serde.STRING, cs.serde.INT64, cs.serde.JSON


def kv(records):
    return [(r.key, r.value) for r in records]


def run(builder, pipes, out_topic, **driver_kw):
    """Pipe [(topic, keys, values, partition)] batches; return the records of out_topic."""
    with TopologyTestDriver(builder.build(), **driver_kw) as d:
        for topic, keys, values, partition in pipes:
            d.pipe_batch(topic, keys, values, partition=partition)
        return d.output(out_topic)


# --- stateless stream operators -------------------------------------------------------------
def test_filter_filter_not_map_values_peek_keep_order_and_timestamps():
    seen = []
    b = StreamsBuilder()
    s = b.stream("in", key_serde=S, value_serde=I64)
    s.filter(lambda k, v: v % 2 == 0).map_values(lambda v: v * 10).peek(
        lambda k, v: seen.append((k, v))).to("evens", value_serde=I64)
    s.filter_not(lambda k, v: v % 2 == 0).to("odds")
    with TopologyTestDriver(b.build()) as d:
        d.pipe_batch("in", ["a", "b", "c", "d"], [1, 2, 3, 4], timestamps=[5, 6, 7, 8])
        evens = d.output("evens")
        assert kv(evens) == [("b", 20), ("d", 40)]
        assert [r.timestamp for r in evens] == [6, 8]
        assert kv(d.output("odds")) == [("a", 1), ("c", 3)]
    assert seen == [("b", 20), ("d", 40)]


def test_batch_forms_get_whole_columns_once_per_batch():
    calls = []

    def evens(keys, values):
        calls.append(len(keys))
        return [v % 2 == 0 for v in values]

    b = StreamsBuilder()
    (b.stream("in", key_serde=S, value_serde=I64)
     .filter(evens, batch=True)
     .map_values(lambda vs: [v + 1 for v in vs], batch=True)
     .map(lambda ks, vs: ([k.upper() for k in ks], vs), batch=True, key_serde=S)
     .select_key(lambda ks, vs: [k + "!" for k in ks], batch=True, key_serde=S)
     .filter_not(lambda ks, vs: [v > 100 for v in vs], batch=True)
     .peek(lambda ks, vs: calls.append(("peek", list(ks))), batch=True)
     .to("out", value_serde=I64))
    out = run(b, [("in", ["a", "b", "c", "d"], [2, 3, 400, 6], 0)], "out")
    assert kv(out) == [("A!", 3), ("D!", 7)]
    assert calls == [4, ("peek", ["A!", "D!"])]


def test_map_flat_map_flat_map_values_select_key():
    b = StreamsBuilder()
    s = b.stream("in", key_serde=S, value_serde=S)
    s.map(lambda k, v: (v, k), key_serde=S, value_serde=S).to("swapped")
    s.flat_map(lambda k, v: [(w, k) for w in v.split()], key_serde=S, value_serde=S).to("fm")
    s.flat_map_values(lambda v: v.split()).to("fmv", value_serde=S)
    s.select_key(lambda k, v: len(v), key_serde=I64).to("sk")
    with TopologyTestDriver(b.build()) as d:
        d.pipe_batch("in", ["k1", "k2"], ["x y", "z"])
        assert kv(d.output("swapped")) == [("x y", "k1"), ("z", "k2")]
        assert kv(d.output("fm")) == [("x", "k1"), ("y", "k1"), ("z", "k2")]
        assert kv(d.output("fmv")) == [("k1", "x"), ("k1", "y"), ("k2", "z")]
        assert kv(d.output("sk")) == [(3, "x y"), (1, "z")]


def test_foreach_ends_the_stream_and_an_operator_after_it_or_to_is_a_clear_error():
    got = []
    b = StreamsBuilder()
    s = b.stream("in", key_serde=S, value_serde=S)
    end = s.foreach(lambda k, v: got.append((k, v)))
    with pytest.raises(TopologyError, match=r"filter\(\) after foreach\(\)"):
        end.filter(lambda k, v: True)
    sink = s.to("out")
    with pytest.raises(TopologyError, match=r"map_values\(\) after to\(\) .*ends a stream"):
        sink.map_values(str)
    run(b, [("in", ["a"], ["1"], 0)], "out")
    assert got == [("a", "1")]


def test_split_branches_first_match_wins_with_default():
    b = StreamsBuilder()
    s = b.stream("in", key_serde=S, value_serde=I64)
    branches = (s.split(name="route")
                .branch(lambda k, v: v < 10, name="small")
                .branch(lambda k, v: v < 100, name="medium")
                .default_branch(name="large"))
    assert sorted(branches) == ["large", "medium", "small"]
    for label, stream in branches.items():
        stream.to(f"out-{label}")
    with TopologyTestDriver(b.build()) as d:
        d.pipe_batch("in", ["a", "b", "c", "d", "e"], [5, 50, 500, 9, 99])
        assert kv(d.output("out-small")) == [("a", 5), ("d", 9)]
        assert kv(d.output("out-medium")) == [("b", 50), ("e", 99)]
        assert kv(d.output("out-large")) == [("c", 500)]
    assert "route-small" in str(b.build().describe())


def test_split_batch_predicates_and_no_default_drops_the_rest():
    b = StreamsBuilder()
    branches = (b.stream("in", key_serde=S, value_serde=I64).split()
                .branch(lambda ks, vs: [v > 2 for v in vs], batch=True)
                .no_default_branch())
    branches["0"].to("big")
    assert kv(run(b, [("in", ["a", "b", "c"], [1, 3, 5], 0)], "big")) == [("b", 3), ("c", 5)]


def test_merge_and_to_topic_chooser():
    b = StreamsBuilder()
    a = b.stream("a", key_serde=S, value_serde=I64)
    c = b.stream("c", key_serde=S, value_serde=I64)
    a.merge(c).to(lambda k, v: "even" if v % 2 == 0 else "odd", topics=["even", "odd"])
    with TopologyTestDriver(b.build()) as d:
        d.pipe_batch("a", ["x", "y"], [1, 2])
        d.pipe_batch("c", ["z"], [4])
        assert kv(d.output("even")) == [("y", 2), ("z", 4)]
        assert kv(d.output("odd")) == [("x", 1)]


def test_topic_chooser_returning_an_undeclared_topic_names_the_node():
    b = StreamsBuilder()
    b.stream("in", key_serde=S, value_serde=S).to(lambda k, v: v, topics=["t1"], name="route")
    with TopologyTestDriver(b.build()) as d, pytest.raises(ProcessingError, match="route"):
        d.pipe("in", "k", "t2")


class Doubler(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx
        self.seen = ctx.get_store("seen")

    def process(self, record):
        n = (self.seen.get(record.key) or 0) + 1
        self.seen.put(record.key, n)
        self.ctx.forward(record.key, f"{record.value}#{n}")


def test_process_drops_to_the_processor_api_with_a_store():
    b = StreamsBuilder()
    (b.stream("in", key_serde=S, value_serde=S)
     .process(Doubler, stores=[cs.stores.in_memory("seen", S, I64)], name="dbl")
     .to("out", key_serde=S, value_serde=S))
    assert kv(run(b, [("in", ["a", "a", "b"], ["x", "y", "z"], 0)], "out")) == [
        ("a", "x#1"), ("a", "y#2"), ("b", "z#1")]


# --- grouping, aggregation, repartitioning --------------------------------------------------
def test_group_by_key_count_uncached_emits_every_update_without_repartition():
    b = StreamsBuilder()
    b.stream("in", key_serde=S, value_serde=S).group_by_key().count(cache=False) \
        .to_stream().to("counts")
    topo = b.build()
    assert topo.internal_topics() == []
    assert len(topo.subtopologies) == 1
    with TopologyTestDriver(topo) as d:
        d.pipe_batch("in", ["a", "b", "a", None], ["1", "2", "3", "4"])
        assert kv(d.output("counts")) == [("a", 1), ("b", 1), ("a", 2)]


def test_cached_count_forwards_the_latest_count_per_key_per_commit():
    b = StreamsBuilder()
    b.stream("in", key_serde=S, value_serde=S).group_by_key().count().to_stream().to("counts")
    with TopologyTestDriver(b.build()) as d:
        d.pipe_batch("in", ["a", "b", "a", "a"], ["1", "2", "3", "4"])
        assert kv(d.read_output("counts")) == [("a", 3), ("b", 1)]
        d.pipe_batch("in", ["b"], ["5"])
        assert kv(d.read_output("counts")) == [("b", 2)]


def test_group_by_repartitions_through_an_internal_topic_named_from_the_app(tmp_path):
    b = StreamsBuilder()
    (b.stream("lines", key_serde=S, value_serde=S)
     .flat_map_values(str.split)
     .group_by(lambda k, w: w, key_serde=S, value_serde=S, name="by-word")
     .count(name="word-counts", cache=False)
     .to_stream().to("counts"))
    topo = b.build()
    assert topo.internal_topics() == ["by-word-repartition"]
    desc = str(topo.describe())
    assert "Sink: by-word-repartition-sink (topic: by-word-repartition)" in desc
    assert "Processor: word-counts (stores: [word-counts-store])" in desc
    with TopologyTestDriver(topo, application_id="wc", partitions={"lines": 2},
                            state_dir=str(tmp_path)) as d:
        # The repartition topic takes the partition count of its upstream sources.
        assert d._collector.partitions_for("wc-by-word-repartition") == 2
        d.pipe_batch("lines", ["l1", "l2"], ["the cat the", "hat"], partition=0)
        d.pipe_batch("lines", ["l3"], ["the hat"], partition=1)
        assert d.output_as_dict("counts") == {"the": 3, "cat": 1, "hat": 2}
        per_word = defaultdict(set)
        for r in d.output("wc-by-word-repartition"):
            per_word[r.key].add(r.partition)
        assert all(len(p) == 1 for p in per_word.values())
        assert d.get_store("word-counts-store",
                           partition=next(iter(per_word["the"]))).get("the") == 3


def test_group_by_key_after_a_key_change_repartitions_and_needs_serdes():
    b = StreamsBuilder()
    mapped = b.stream("in", key_serde=S, value_serde=S).map(lambda k, v: (v, k))
    with pytest.raises(TopologyError, match="repartition topic.* needs a key serde"):
        mapped.group_by_key().count()
    b2 = StreamsBuilder()
    (b2.stream("in", key_serde=S, value_serde=S).map(lambda k, v: (v, k))
     .group_by_key(key_serde=S, value_serde=S).count(cache=False).to_stream().to("out"))
    topo = b2.build()
    assert len(topo.internal_topics()) == 1
    assert topo.internal_topics()[0].startswith("KSTREAM-AGGREGATE-STATE-STORE-")
    assert kv(run(b2, [("in", ["a", "b"], ["x", "x"], 0)], "out")) == [("x", 1), ("x", 2)]


def test_reduce_and_aggregate_against_a_brute_force_reference():
    rng = random.Random(7)
    keys = [f"u{rng.randrange(20)}" for _ in range(500)]
    amounts = [rng.randrange(1, 100) for _ in range(500)]
    b = StreamsBuilder()
    s = b.stream("in", key_serde=S, value_serde=I64)
    g = s.group_by_key()
    g.reduce(lambda a, v: a + v, cache=False).to_stream().to("sums")
    g.aggregate(lambda: {"n": 0, "max": 0},
                lambda k, v, a: {"n": a["n"] + 1, "max": max(a["max"], v)},
                value_serde=J, cache=False).to_stream().to("stats")
    with TopologyTestDriver(b.build()) as d:
        for i in range(0, 500, 73):
            d.pipe_batch("in", keys[i:i + 73], amounts[i:i + 73])
        sums, stats = d.output("sums"), d.output("stats")
    running, n, mx = Counter(), Counter(), {}
    want_sums, want_stats = [], []
    for k, v in zip(keys, amounts):
        running[k] += v
        n[k] += 1
        mx[k] = max(mx.get(k, 0), v)
        want_sums.append((k, running[k]))
        want_stats.append((k, {"n": n[k], "max": mx[k]}))
    assert kv(sums) == want_sums
    assert kv(stats) == want_stats


def test_aggregate_without_a_value_serde_is_a_build_time_error():
    b = StreamsBuilder()
    g = b.stream("in", key_serde=S, value_serde=S).group_by_key()
    with pytest.raises(TopologyError, match="needs a value serde"):
        g.aggregate(lambda: 0, lambda k, v, a: a + 1)
    s = b.stream("in2", key_serde=S, value_serde=S).map_values(len)
    with pytest.raises(TopologyError, match="value serde is unknown"):
        s.to("out")


def test_explicit_repartition():
    b = StreamsBuilder()
    (b.stream("in", key_serde=S, value_serde=S).select_key(lambda k, v: v, key_serde=S)
     .repartition(name="rekey").to("out"))
    topo = b.build()
    assert topo.internal_topics() == ["rekey-repartition"]
    with TopologyTestDriver(topo, partitions={"in": 3}) as d:
        d.pipe_batch("in", ["a", "b", "c"], ["x", "y", "x"], partition=0)
        out = d.output("out")
        assert sorted(kv(out)) == [("x", "x"), ("x", "x"), ("y", "y")]
        assert d._collector.partitions_for("test-driver-rekey-repartition") == 3
    with TopologyTestDriver(topo, partitions={"in": 3, "rekey-repartition": 5}) as d:
        assert d._collector.partitions_for("test-driver-rekey-repartition") == 5


def test_windowed_by_and_stream_stream_joins_are_hooks_that_name_the_feature():
    b = StreamsBuilder()
    s = b.stream("in", key_serde=S, value_serde=S)
    with pytest.raises(NotImplementedError, match="windowing"):
        s.group_by_key().windowed_by(object())
    for call in (lambda: s.join(s, None), lambda: s.left_join(s, None),
                 lambda: s.outer_join(s, None)):
        with pytest.raises(NotImplementedError, match="issue 15"):
            call()


# --- tables ---------------------------------------------------------------------------------
def test_table_holds_the_latest_value_and_a_tombstone_deletes():
    b = StreamsBuilder()
    t = b.table("users", key_serde=S, value_serde=J, name="users", cache=False)
    t.filter(lambda k, v: v["age"] >= 18).map_values(lambda v: v["name"]).to_stream() \
        .to("adults", value_serde=S)
    topo = b.build()
    assert topo.store_spec("users-store").source_changelog == "users"
    with TopologyTestDriver(topo) as d:
        d.pipe_batch("users", ["1", "2", "1"], [{"name": "ann", "age": 17},
                                                {"name": "bob", "age": 30},
                                                {"name": "ann", "age": 18}])
        d.pipe("users", "2", None)
        assert kv(d.output("adults")) == [("1", None), ("2", "bob"), ("1", "ann"), ("2", None)]
        store = d.get_store("users-store")
        assert store.get("1") == {"name": "ann", "age": 18}
        assert store.get("2") is None


def test_table_group_by_aggregate_retracts_the_old_value():
    b = StreamsBuilder()
    users = b.table("users", key_serde=S, value_serde=S, cache=False)
    (users.group_by(lambda user, city: (city, user), name="by-city")
     .count(name="per-city", cache=False).to_stream().to("city-counts"))
    with TopologyTestDriver(b.build(), partitions={"users": 2}) as d:
        d.pipe_batch("users", ["ann", "bob"], ["paris", "paris"], partition=0)
        d.pipe_batch("users", ["cid"], ["rome"], partition=1)
        assert d.output_as_dict("city-counts") == {"paris": 2, "rome": 1}
        d.pipe("users", "ann", "rome", partition=0)      # moves: paris -1, rome +1
        assert d.output_as_dict("city-counts") == {"paris": 1, "rome": 2}
        d.pipe("users", "bob", None, partition=0)        # leaves: paris -1
        assert d.output_as_dict("city-counts") == {"paris": 0, "rome": 2}


def test_table_aggregate_and_reduce_against_a_brute_force_reference():
    rng = random.Random(11)
    b = StreamsBuilder()
    accounts = b.table("accounts", key_serde=S, value_serde=J)
    grouped = accounts.group_by(lambda acc, v: (v["region"], v["balance"]),
                                value_serde=I64)
    grouped.aggregate(lambda: 0, lambda k, v, a: a + v, lambda k, v, a: a - v,
                      value_serde=I64, name="sum").to_stream().to("sums")
    grouped.reduce(lambda a, v: a + v, lambda a, v: a - v, name="red").to_stream() \
        .to("reduced")
    state = {}
    with TopologyTestDriver(b.build(), partitions={"accounts": 3}) as d:
        for _ in range(40):
            batch_keys, batch_values = [], []
            for _ in range(rng.randrange(1, 15)):
                acc = f"a{rng.randrange(25)}"
                v = None if rng.random() < 0.1 else {
                    "region": rng.choice("NSEW"), "balance": rng.randrange(1000)}
                batch_keys.append(acc)
                batch_values.append(v)
            # One batch per partition of the source topic, as the App would see it.
            by_part = defaultdict(list)
            for k, v in zip(batch_keys, batch_values):
                by_part[int(k[1:]) % 3].append((k, v))
            for p, recs in by_part.items():
                d.pipe_batch("accounts", [k for k, _ in recs], [v for _, v in recs],
                             partition=p)
                for k, v in recs:
                    if v is None:
                        state.pop(k, None)
                    else:
                        state[k] = v
        want = Counter()
        for v in state.values():
            want[v["region"]] += v["balance"]
        got = {k: v for k, v in d.output_as_dict("sums").items()}
        assert {k: v for k, v in got.items() if v} == {k: v for k, v in want.items() if v}
        assert d.output_as_dict("reduced") == got


def test_table_cache_coalesces_updates_per_key_and_keeps_the_oldest_old_value():
    b = StreamsBuilder()
    t = b.table("t", key_serde=S, value_serde=I64)
    t.group_by(lambda k, v: ("all", v)).aggregate(
        lambda: 0, lambda k, v, a: a + v, lambda k, v, a: a - v, value_serde=I64) \
        .to_stream().to("total")
    with TopologyTestDriver(b.build()) as d:
        d.pipe_batch("t", ["a", "a", "a", "b"], [1, 2, 3, 10])
        # One repartition record pair per key (oldest old, latest new), one total.
        assert kv(d.read_output("total")) == [("all", 13)]
        d.pipe_batch("t", ["a", "a"], [5, 6])
        assert kv(d.read_output("total")) == [("all", 16)]
        changes = d.output("test-driver-KTABLE-AGGREGATE-STATE-STORE-0000000005-repartition")
        assert [(r.key, r.value) for r in changes] == [
            ("all", Change(3, None)), ("all", Change(10, None)),
            ("all", Change(None, 3)), ("all", Change(6, None))]


def test_stream_to_table():
    b = StreamsBuilder()
    b.stream("in", key_serde=S, value_serde=S).to_table(name="latest", cache=False) \
        .to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe_batch("in", ["a", "a", "b"], ["1", "2", "3"])
        assert d.get_store("latest-store").get("a") == "2"
        assert kv(d.output("out")) == [("a", "1"), ("a", "2"), ("b", "3")]


# --- naming and validation ------------------------------------------------------------------
def _wordcount(builder):
    (builder.stream("lines", key_serde=S, value_serde=S)
     .flat_map_values(str.split).group_by(lambda k, w: w, key_serde=S, value_serde=S)
     .count().to_stream().to("counts"))
    return builder.build()


def test_generated_names_are_stable_and_readable():
    a, b = str(_wordcount(StreamsBuilder()).describe()), str(_wordcount(StreamsBuilder())
                                                              .describe())
    assert a == b
    assert "Source: KSTREAM-SOURCE-0000000000 (topics: [lines])" in a
    assert "KSTREAM-FLATMAPVALUES-0000000001" in a
    assert "KSTREAM-KEY-SELECT-0000000002" in a
    assert "Processor: KSTREAM-AGGREGATE-0000000003 " \
           "(stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000004])" in a
    assert "KSTREAM-AGGREGATE-STATE-STORE-0000000004-repartition" in a
    assert "Sub-topology: 1" in a


def test_duplicate_names_and_bad_arguments_fail_at_build_time():
    b = StreamsBuilder()
    s = b.stream("in", key_serde=S, value_serde=S, name="src")
    s.filter(lambda k, v: True, name="f")
    with pytest.raises(TopologyError, match="duplicate node name 'f'"):
        s.filter(lambda k, v: True, name="f")
    with pytest.raises(TopologyError, match="needs topics="):
        s.to(lambda k, v: "x")
    with pytest.raises(TopologyError, match="materialized must be"):
        s.group_by_key().count(materialized="redis")
    with pytest.raises(TopologyError, match="merge"):
        s.merge()
    with pytest.raises(TopologyError, match="reduce.*needs a value serde"):
        s.map_values(len).group_by_key().reduce(lambda a, v: a + v)
    with pytest.raises(TopologyError, match="must use the topic's serdes"):
        b.table("t", key_serde=S, value_serde=J,
                materialized=cs.stores.in_memory("t-store", S, S))


# --- the DSL against the hand-built Processor API topology ----------------------------------
def _hand_built():
    t = cs.Topology()
    t.add_source("in", "events", key_serde=S, value_serde=J)
    t.add_processor("big", cs.processors.filter(lambda k, v: v["amount"] >= 10), parents="in")
    t.add_processor("amount", cs.processors.map_values(lambda v: v["amount"]), parents="big")
    t.add_store(cs.stores.rocksdb("counts", S, I64))
    t.add_processor("count", cs.processors.count("counts"), parents="big", stores=["counts"])
    t.add_sink("counts-out", "counts", parents="count", key_serde=S, value_serde=I64)
    t.add_sink("amounts-out", "amounts", parents="amount", key_serde=S, value_serde=I64)
    return t


def _dsl_built():
    b = StreamsBuilder()
    big = b.stream("events", key_serde=S, value_serde=J).filter(lambda k, v: v["amount"] >= 10)
    big.map_values(lambda v: v["amount"]).to("amounts", value_serde=I64)
    big.group_by_key().count(cache=False).to_stream().to("counts")
    return b.build()


@pytest.mark.parametrize("partitions", [1, 4])
def test_dsl_and_hand_built_topologies_give_identical_outputs(tmp_path, partitions):
    rng = random.Random(partitions)
    batches = []
    for _ in range(30):
        n = rng.randrange(1, 200)
        batches.append(([f"user{rng.randrange(50)}" for _ in range(n)],
                        [{"amount": rng.randrange(20)} for _ in range(n)],
                        rng.randrange(partitions)))
    outputs = []
    for i, topo in enumerate((_hand_built(), _dsl_built())):
        with TopologyTestDriver(topo, default_partitions=partitions,
                                state_dir=str(tmp_path / str(i))) as d:
            for keys, values, p in batches:
                d.pipe_batch("events", keys, values, partition=p)
            outputs.append({t: [(r.key, r.value, r.timestamp, r.partition)
                                for r in d.output(t)] for t in ("counts", "amounts")})
    assert outputs[0] == outputs[1]
    assert len(outputs[0]["counts"]) > 100


class TopicRecorder(cs.Processor):
    topics = []

    def init(self, ctx):
        self.ctx = ctx

    def process(self, record):
        TopicRecorder.topics.append(self.ctx.topic)
        self.ctx.forward(record.key, record.value)


def test_a_full_table_cache_forwards_before_the_commit():
    from cstreams.dsl import operators

    def build():
        b = StreamsBuilder()
        (b.stream("in", key_serde=S, value_serde=S).group_by_key().count().to_stream()
         .process(TopicRecorder).to("out", key_serde=S, value_serde=I64))
        return b.build()

    def run_with(max_keys):
        TopicRecorder.topics = []
        old = operators.DEFAULT_CACHE_MAX_KEYS
        operators.DEFAULT_CACHE_MAX_KEYS = max_keys
        try:
            with TopologyTestDriver(build()) as d:
                d.pipe_batch("in", ["a", "b", "a", "c", "d"], ["1"] * 5,
                             headers=[[("h", b"1")]] * 5)
                d.pipe_batch("in", ["a"], ["1"])
                return d.output("out"), TopicRecorder.topics
        finally:
            operators.DEFAULT_CACHE_MAX_KEYS = old

    out, topics = run_with(2)
    # More than 2 keys pending after the first batch: forwarded inside that batch's
    # processing (the input topic is in hand), not at the commit.
    assert kv(out) == [("a", 2), ("b", 1), ("c", 1), ("d", 1), ("a", 3)]
    assert topics == ["in"] * 4 + [None]
    assert all(r.headers is None for r in out)
    out, topics = run_with(100)
    assert kv(out) == [("a", 2), ("b", 1), ("c", 1), ("d", 1), ("a", 3)]
    assert topics == [None] * 5


def test_table_filter_not_and_a_pattern_stream():
    b = StreamsBuilder()
    b.table("t", key_serde=S, value_serde=I64, cache=False).filter_not(
        lambda k, v: v > 10).to_stream().to("small", value_serde=I64)
    b.stream(pattern=r"logs-.*", key_serde=S, value_serde=S).to("all-logs")
    with TopologyTestDriver(b.build()) as d:
        d.pipe_batch("t", ["a", "b", "a"], [5, 50, 20])
        assert kv(d.output("small")) == [("a", 5), ("b", None), ("a", None)]
        d.pipe("logs-eu", "k", "x")
        d.pipe("logs-us", "k", "y")
        assert kv(d.output("all-logs")) == [("k", "x"), ("k", "y")]


def _chain(fuse):
    b = StreamsBuilder(fuse=fuse)
    s = b.stream("in", key_serde=S, value_serde=I64)
    c = (s.map_values(lambda v: v * 3).filter(lambda k, v: v % 7 != 0)
         .select_key(lambda k, v: f"{k}-{v % 4}", key_serde=S)
         .map(lambda k, v: (k.upper(), v - 1), key_serde=S, value_serde=I64)
         .filter_not(lambda k, v: v > 200))
    c.to("out")
    c.map_values(lambda v: -v, value_serde=I64).to("neg")   # fan-out: the chain stops here
    s.peek(lambda k, v: None).filter(lambda k, v: v > 50).to("big")
    return b.build()


def test_fused_chains_give_the_same_output_as_the_operators_one_by_one():
    rng = random.Random(21)
    fused, plain = _chain(True), _chain(False)
    desc = str(fused.describe())
    assert "KSTREAM-MAPVALUES-0000000001" not in desc      # fused into the chain's last node
    assert "Processor: KSTREAM-FILTER-0000000005" in desc
    assert desc.count("Processor:") == str(plain.describe()).count("Processor:") - 4
    outputs = []
    for topo in (fused, plain):
        with TopologyTestDriver(topo) as d:
            for i in range(10):
                n = rng.randrange(1, 60)
                keys = [f"k{rng.randrange(9)}" for _ in range(n)]
                values = [rng.randrange(100) for _ in range(n)]
                headers = None if i % 2 else [[("i", str(j).encode())] for j in range(n)]
                d.pipe_batch("in", keys, values, timestamps=list(range(n)), headers=headers)
            outputs.append({t: [(r.key, r.value, r.timestamp, r.headers) for r in d.output(t)]
                            for t in ("out", "neg", "big")})
        rng = random.Random(21)
    assert outputs[0] == outputs[1]
    assert len(outputs[0]["out"]) > 50


def test_an_error_in_a_fused_chain_names_the_node_and_the_offset():
    b = StreamsBuilder(fuse=True)
    (b.stream("in", key_serde=S, value_serde=I64).map_values(lambda v: 10 // v)
     .filter(lambda k, v: True, name="last").to("out", value_serde=I64))
    with TopologyTestDriver(b.build()) as d:
        with pytest.raises(ProcessingError, match="'last'.*ZeroDivisionError"):
            d.pipe_batch("in", ["a", "b"], [1, 0])


def test_chained_repartitions_take_the_upstream_partition_count():
    b = StreamsBuilder()
    (b.stream("in", key_serde=S, value_serde=S)
     .select_key(lambda k, v: v, key_serde=S).repartition(name="first")
     .select_key(lambda k, v: k + "!", key_serde=S).repartition(name="second")
     .group_by_key().count(cache=False).to_stream().to("out"))
    topo = b.build()
    assert topo.internal_topics() == ["first-repartition", "second-repartition"]
    assert len(topo.subtopologies) == 3
    counts = topo.for_application("app").internal_topic_partitions(
        lambda sub: 6 if "in" in sub.topics else None)
    assert counts == {"app-first-repartition": 6, "app-second-repartition": 6}
    with TopologyTestDriver(topo, partitions={"in": 4}) as d:
        d.pipe_batch("in", ["a", "b", "c"], ["x", "y", "x"], partition=3)
        assert d._collector.partitions_for("test-driver-second-repartition") == 4
        assert sorted(kv(d.output("out"))) == [("x!", 1), ("x!", 2), ("y!", 1)]


def test_flat_map_batch_forms_keep_timestamps_and_headers():
    b = StreamsBuilder()
    s = b.stream("in", key_serde=S, value_serde=S)
    s.flat_map_values(lambda vs: [v.split() for v in vs], batch=True).to("fmv", value_serde=S)
    s.flat_map(lambda ks, vs: [[(w, k) for w in v.split()] for k, v in zip(ks, vs)],
               batch=True, key_serde=S, value_serde=S).to("fm")
    with TopologyTestDriver(b.build()) as d:
        d.pipe_batch("in", ["k1", "k2", "k3"], ["x y", "", "z"], timestamps=[1, 2, 3],
                     headers=[[("n", b"1")], None, [("n", b"3")]])
        fmv = d.output("fmv")
        assert [(r.key, r.value, r.timestamp, r.headers) for r in fmv] == [
            ("k1", "x", 1, [("n", b"1")]), ("k1", "y", 1, [("n", b"1")]),
            ("k3", "z", 3, [("n", b"3")])]
        assert [(r.key, r.value, r.timestamp) for r in d.output("fm")] == [
            ("x", "k1", 1), ("y", "k1", 1), ("z", "k3", 3)]
