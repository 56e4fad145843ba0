"""Word count end to end on the real broker with a RocksDB store and its changelog."""

from __future__ import annotations

import pytest

pytest.importorskip("confluent_kafka")

from helpers import (  # noqa: E402
    WORD,
    app_config,
    consume_all,
    int64,
    produce,
    sample_lines,
    wait_for,
    word_counts,
)

import cstreams as cs  # noqa: E402
from cstreams.internals.state.checkpoint import read_checkpoint  # noqa: E402
from examples.wordcount import build_topology  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_wordcount_end_to_end_every_update_in_order(broker, topic_factory, tmp_path):
    words_topic = topic_factory("words", 3)
    out_topic = topic_factory("word-counts", 3)
    by_word = topic_factory("by-word", 2)
    lines = sample_lines(300)
    # Each line goes to a partition by its key; per-key (word) order is per-partition order.
    records = [(f"line-{i}".encode(), line.encode()) for i, line in enumerate(lines)]
    produce(broker.bootstrap_servers, words_topic, records)
    expected_total = sum(len(WORD.findall(line)) for line in lines)

    app = cs.App(build_topology(words_topic, out_topic, by_word), application_id=f"wc-{out_topic}",
                 bootstrap_servers=broker.bootstrap_servers, state_dir=str(tmp_path),
                 commit_interval_ms=300, config=app_config())
    app.start()
    try:
        out = consume_all(broker.bootstrap_servers, out_topic,
                          until=lambda recs: len(recs) >= expected_total, timeout=90)
    finally:
        app.close()

    assert len(out) == expected_total
    # Every update of every word, in order: 1, 2, ..., final count, each word in one
    # output partition.
    per_word = {}
    parts = {}
    for p, _o, k, v, _h in out:
        w = k.decode()
        per_word.setdefault(w, []).append(int64(v))
        parts.setdefault(w, set()).add(p)
    truth = word_counts(lines)
    assert set(per_word) == set(truth)
    for w, counts in per_word.items():
        assert counts == list(range(1, truth[w] + 1)), w
        assert len(parts[w]) == 1
    m = app.metrics()
    assert m["records_in"] == len(lines) + expected_total     # lines, then repartitioned words
    assert m["records_out"] == 2 * expected_total             # repartitioned words, counts
    # Both sub-topologies ran one task per partition of their sources.
    assert set(m["tasks"]) == {"0_0", "0_1", "0_2", "1_0", "1_1"}
    # Per node: every line reached a split node, every word a count node and the sink.
    def node_records(node, sub):
        return sum(t["nodes"][node]["records"] for tid, t in m["tasks"].items()
                   if tid.startswith(sub))
    assert node_records("split", "0_") == len(lines)
    assert node_records("count", "1_") == node_records("out", "1_") == expected_total

    # The counting tasks checkpointed their changelog positions; a restart on the same state
    # directory restores from there: nothing left to read, the counts stay.
    app_id = f"wc-{out_topic}"
    changelog = f"{app_id}-counts-changelog"
    for p in (0, 1):
        cp = read_checkpoint(tmp_path / app_id / f"1_{p}")
        assert cp[(changelog, p)] > 0
    again = cs.App(build_topology(words_topic, out_topic, by_word), application_id=app_id,
                   bootstrap_servers=broker.bootstrap_servers, state_dir=str(tmp_path),
                   commit_interval_ms=300, config=app_config())
    again.start()
    try:
        wait_for(lambda: sum(t["state"] == "running" for t in again.metrics()["tasks"].values())
                 == 5, what="every task running again")
        assert again.metrics()["records_restored"] == 0
        assert again.metrics()["records_in"] == 0
    finally:
        again.close()
    assert m["commits"] >= 1
