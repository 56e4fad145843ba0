"""The Streams DSL end to end on the real broker, RocksDB stores on disk: a repartitioning
word count (internal topic created by the app) and a table regrouped and aggregated with its
subtractor, restored from its source topic after a restart; exact results."""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("confluent_kafka")

from confluent_kafka.admin import AdminClient  # noqa: E402
from helpers import (  # noqa: E402
    WORD,
    app_config,
    consume_all,
    int64,
    produce,
    sample_lines,
    word_counts,
)

import cstreams as cs  # noqa: E402
from cstreams.dsl import StreamsBuilder  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

S, I64, J = cs.serde.STRING, cs.serde.INT64, cs.serde.JSON


def _wordcount(words_topic, out_topic, cache):
    b = StreamsBuilder()
    (b.stream(words_topic, key_serde=S, value_serde=S)
     .flat_map_values(lambda line: WORD.findall(line.lower()))
     .group_by(lambda _k, w: w, key_serde=S, value_serde=S, name="by-word")
     .count(name="counts", cache=cache)
     .to_stream().to(out_topic))
    return b.build()


def _partitions(bootstrap, topic):
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    tm = md.topics.get(topic)
    return None if tm is None or tm.error is not None else len(tm.partitions)


@pytest.mark.parametrize("cache,guarantee", [(False, "at_least_once"),
                                             (True, "at_least_once"),
                                             (True, "exactly_once_v2")])
def test_dsl_wordcount_repartitions_through_an_internal_topic(broker, topic_factory, tmp_path,
                                                             cache, guarantee):
    words_topic = topic_factory("words", 3)
    out_topic = topic_factory("word-counts", 2)
    lines = sample_lines(300)
    produce(broker.bootstrap_servers, words_topic,
            [(f"line-{i}".encode(), line.encode()) for i, line in enumerate(lines)])
    truth = word_counts(lines)
    total = sum(truth.values())
    app_id = f"dslwc-{out_topic}"
    app = cs.App(_wordcount(words_topic, out_topic, cache), application_id=app_id,
                 bootstrap_servers=broker.bootstrap_servers, state_dir=str(tmp_path),
                 commit_interval_ms=300, config=app_config(), processing_guarantee=guarantee)

    def latest(recs):
        out = {}
        for _p, _o, k, v, _h in recs:
            out[k.decode()] = int64(v)     # (partition, offset) order: a word's last record
        return out

    app.start()
    try:
        if cache:
            out = consume_all(broker.bootstrap_servers, out_topic,
                              until=lambda recs: latest(recs) == truth, timeout=120)
        else:
            out = consume_all(broker.bootstrap_servers, out_topic,
                              until=lambda recs: len(recs) >= total, timeout=120)
    finally:
        app.close()
    # The app created <application_id>-<name>-repartition with its source's partition count.
    assert _partitions(broker.bootstrap_servers, f"{app_id}-by-word-repartition") == 3
    assert latest(out) == truth
    per_word = {}
    for _p, _o, k, v, _h in out:
        per_word.setdefault(k.decode(), []).append(int64(v))
    if not cache:
        # Every update of every word, in order.
        assert len(out) == total
        for w, counts in per_word.items():
            assert counts == list(range(1, truth[w] + 1)), w
    else:
        # Coalesced per commit: increasing, fewer records than updates.
        for w, counts in per_word.items():
            assert counts == sorted(set(counts)), w
        assert len(out) < total


class RunningMax(cs.BatchProcessor):
    """process(): the running max per key in a store, forwarded per record."""

    def init(self, ctx):
        self.ctx = ctx
        self.store = ctx.get_store("max-seen")

    def process_batch(self, batch):
        out = []
        for k, v in zip(batch.keys, batch.values):
            m = max(v, self.store.get(k) or 0)
            self.store.put(k, m)
            out.append(m)
        self.ctx.forward_batch(batch.keys, out, like=batch)


def test_every_stream_operator_end_to_end(broker, topic_factory, tmp_path):
    t = {name: topic_factory(name, 2) for name in
         ("events", "a", "b", "pos", "neg", "small", "big-max", "pattern-out")}
    pattern_topic = topic_factory("pat-in", 2)
    rng = random.Random(9)
    events = [(f"user{rng.randrange(12)}", rng.randrange(-20, 100)) for _ in range(600)]
    produce(broker.bootstrap_servers, t["events"],
            [(k.encode(), v.to_bytes(8, "big", signed=True)) for k, v in events])
    produce(broker.bootstrap_servers, pattern_topic, [(b"p", b"x"), (b"q", b"y")])
    peeked, seen = [], []

    b = StreamsBuilder()
    s = b.stream(t["events"], key_serde=S, value_serde=I64)
    (s.filter(lambda k, v: v > 0).filter_not(lambda k, v: v % 5 == 0)
     .map_values(lambda v: v * 2).to(t["a"], value_serde=I64))
    (s.map(lambda k, v: (f"{k}-{v % 3}", v), key_serde=S, value_serde=I64)
     .peek(lambda k, v: peeked.append(k)).select_key(lambda k, v: k.upper(), key_serde=S)
     .repartition(name="rekey").to(t["b"]))
    (s.flat_map(lambda k, v: [(k, v), (k, -v)], key_serde=S, value_serde=I64)
     .merge(s.flat_map_values(lambda v: [v + 1000], value_serde=I64))
     .to(lambda k, v: t["pos"] if v >= 0 else t["neg"], topics=[t["pos"], t["neg"]]))
    small, big = s.split().branch(lambda k, v: v < 50).default_branch().values()
    (small.process(RunningMax, stores=[cs.stores.rocksdb("max-seen", S, I64)])
     .to(t["small"], key_serde=S, value_serde=I64))
    big.group_by_key().reduce(max, name="big-max").to_stream().to(t["big-max"])
    s.foreach(lambda k, v: seen.append((k, v)))
    b.stream(pattern=r"pat-in-.*", key_serde=S, value_serde=S).to(t["pattern-out"])

    app = cs.App(b.build(), application_id=f"dslops-{t['events']}",
                 bootstrap_servers=broker.bootstrap_servers, state_dir=str(tmp_path),
                 commit_interval_ms=200, config=app_config())

    def read(topic, n=None, until=None):
        recs = consume_all(broker.bootstrap_servers, topic, timeout=90, until=until or (
            lambda r: len(r) >= n))
        return [(k.decode(), int64(v) if len(v) == 8 else v.decode())
                for _p, _o, k, v, _h in recs]

    want_a = sorted((k, v * 2) for k, v in events if v > 0 and v % 5)
    want_b = sorted((f"{k}-{v % 3}".upper(), v) for k, v in events)
    want_pos = sorted([(k, v) for k, v in events if v >= 0] + [(k, -v) for k, v in events
                                                               if -v >= 0]
                      + [(k, v + 1000) for k, v in events])
    want_neg = sorted([(k, v) for k, v in events if v < 0] + [(k, -v) for k, v in events
                                                              if -v < 0])
    running, want_small = {}, []
    for k, v in events:
        if v < 50:
            running[k] = max(v, running.get(k, 0))
            want_small.append((k, running[k]))
    want_max = {}
    for k, v in events:
        if v >= 50:
            want_max[k] = max(v, want_max.get(k, v))

    app.start()
    try:
        assert sorted(read(t["a"], len(want_a))) == want_a
        assert sorted(read(t["b"], len(want_b))) == want_b
        assert sorted(read(t["pos"], len(want_pos))) == want_pos
        assert sorted(read(t["neg"], len(want_neg))) == want_neg
        assert sorted(read(t["small"], len(want_small))) == sorted(want_small)
        maxes = read(t["big-max"], until=lambda r: {k.decode(): int64(v) for _p, _o, k, v, _h
                                                   in r} == want_max)
        assert dict(maxes) == want_max
        assert sorted(read(t["pattern-out"], 2)) == [("p", "x"), ("q", "y")]
    finally:
        app.close()
    assert sorted(seen) == sorted(events)
    assert len(peeked) == len(events)


def _city_counts(users_topic, out_topic):
    b = StreamsBuilder()
    users = b.table(users_topic, key_serde=S, value_serde=J, name="users")
    (users.filter(lambda _u, v: v["active"])
     .group_by(lambda user, v: (v["city"], v["age"]), value_serde=I64, name="by-city")
     .aggregate(lambda: {"n": 0, "age": 0},
                lambda _c, age, a: {"n": a["n"] + 1, "age": a["age"] + age},
                lambda _c, age, a: {"n": a["n"] - 1, "age": a["age"] - age},
                value_serde=J, name="per-city")
     .to_stream().to(out_topic))
    return b.build()


def _expected(state):
    want = {}
    for v in state.values():
        if v is not None and v["active"]:
            a = want.setdefault(v["city"], {"n": 0, "age": 0})
            a["n"] += 1
            a["age"] += v["age"]
    return want


def test_table_group_by_aggregate_with_subtractor_and_restore_from_the_source_topic(
        broker, topic_factory, tmp_path):
    users_topic = topic_factory("users", 2)
    out_topic = topic_factory("city-stats", 2)
    rng = random.Random(5)
    state = {}

    def updates(n):
        recs = []
        for _ in range(n):
            u = f"user{rng.randrange(40)}"
            v = None if rng.random() < 0.1 else {
                "city": rng.choice(["paris", "rome", "oslo", "lima"]),
                "age": rng.randrange(18, 90), "active": rng.random() < 0.8}
            state[u] = v
            recs.append((u.encode(), None if v is None else json.dumps(v).encode()))
        return recs

    def latest(recs):
        out = {}
        for _p, _o, k, v, _h in recs:
            out[k.decode()] = json.loads(v)
        return {c: a for c, a in out.items() if a["n"]}

    def run_until(state_dir, want):
        app = cs.App(_city_counts(users_topic, out_topic), application_id=app_id,
                     bootstrap_servers=broker.bootstrap_servers, state_dir=state_dir,
                     commit_interval_ms=200, config=app_config())
        app.start()
        try:
            out = consume_all(broker.bootstrap_servers, out_topic,
                              until=lambda recs: latest(recs) == want, timeout=90)
        finally:
            app.close()
        return out

    app_id = f"dsltable-{out_topic}"
    produce(broker.bootstrap_servers, users_topic, updates(400))
    first = _expected(state)
    assert latest(run_until(str(tmp_path / "a"), first)) == first
    # No changelog topic for the table: its source topic is the changelog.
    assert _partitions(broker.bootstrap_servers, f"{app_id}-users-store-changelog") is None
    assert _partitions(broker.bootstrap_servers, f"{app_id}-per-city-store-changelog") == 2

    # A new instance with empty state: the table store is restored from the users topic
    # (up to the committed offsets), the aggregate from its changelog; later updates retract
    # the restored old values exactly.
    produce(broker.bootstrap_servers, users_topic, updates(200))
    second = _expected(state)
    assert second != first
    assert latest(run_until(str(tmp_path / "b"), second)) == second
