"""Two instances in one group share the partitions; when one leaves, the other takes every
task over with its state restored from the changelog, and no input is left unprocessed."""

from __future__ import annotations

import pytest

pytest.importorskip("confluent_kafka")

from helpers import (  # noqa: E402
    app_config,
    consume_all,
    latest_counts,
    produce,
    sample_lines,
    wait_for,
    word_counts,
)

import cstreams as cs  # noqa: E402
from examples.wordcount import build_topology  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.runtime_faults, pytest.mark.timeout(240)]


def running_tasks(app):
    return {t for t, m in app.metrics()["tasks"].items() if m["state"] == "running"}


def test_two_instances_share_then_hand_over(broker, topic_factory, tmp_path):
    src, rep, out = topic_factory("words", 4), topic_factory("rep", 4), topic_factory("wc", 2)
    app_id = f"rebalance-{src}"
    first, second = sample_lines(200, seed=1), sample_lines(200, seed=2)

    def new_app(name):
        return cs.App(build_topology(src, out, rep), application_id=app_id,
                      bootstrap_servers=broker.bootstrap_servers,
                      state_dir=str(tmp_path / name), commit_interval_ms=300,
                      config=app_config())

    a, b = new_app("a").start(), new_app("b").start()
    try:
        produce(broker.bootstrap_servers, src,
                [(f"a{i}".encode(), ln.encode()) for i, ln in enumerate(first)])
        truth = word_counts(first)
        wait_for(lambda: running_tasks(a) and running_tasks(b)
                 and len(running_tasks(a) | running_tasks(b)) == 8, timeout=60,
                 what="both instances running tasks")
        ta, tb = running_tasks(a), running_tasks(b)
        assert not ta & tb
        consume_all(broker.bootstrap_servers, out,
                    until=lambda r: latest_counts(r) == truth, timeout=60)

        b.close()
        produce(broker.bootstrap_servers, src,
                [(f"b{i}".encode(), ln.encode()) for i, ln in enumerate(second)])
        truth = word_counts(first + second)
        recs = consume_all(broker.bootstrap_servers, out,
                           until=lambda r: latest_counts(r) == truth, timeout=90)
        wait_for(lambda: len(running_tasks(a)) == 8, what="a running every task")
        restored = a.metrics()["records_restored"]
    finally:
        a.close()
        b.close()
    assert latest_counts(recs) == truth
    # Counting tasks that moved from b to a rebuilt their store from the changelog.
    assert any(t.startswith("1_") for t in tb)
    assert restored > 0
