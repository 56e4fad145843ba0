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


@pytest.mark.parametrize("cache", [False, True])
def test_dsl_wordcount_repartitions_through_an_internal_topic(broker, topic_factory, tmp_path,
                                                             cache):
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
                 commit_interval_ms=300, config=app_config())

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
