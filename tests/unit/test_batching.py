"""The adaptive poll-size controller: grows on full, fast polls; shrinks past the bound."""

from __future__ import annotations

import pytest

from cstreams.runtime.batching import PollSizeController


def test_starts_small_and_grows_multiplicatively_on_full_fast_polls():
    c = PollSizeController(100, 10_000)
    assert c.size == 1000
    sizes = []
    for _ in range(6):
        sizes.append(c.observe(c.size, 0.010))
    assert sizes == [2000, 4000, 8000, 10_000, 10_000, 10_000]


def test_no_growth_when_the_poll_came_back_short_or_latency_is_not_well_under():
    c = PollSizeController(100, 10_000, initial=1000)
    assert c.observe(999, 0.001) == 1000          # not full: the input limits the batch
    assert c.observe(1000, 0.060) == 1000         # full, but doubling would pass the bound
    assert c.observe(1000, 0.049) == 2000


def test_shrinks_when_the_bound_is_passed_at_least_by_half():
    c = PollSizeController(100, 10_000, initial=8000)
    assert c.observe(8000, 0.120) == 4000          # 0.8 * 100/120 > 0.5: halve
    assert c.observe(4000, 0.800) == 400           # far over: 0.8 * 100/800 = 0.1
    c2 = PollSizeController(100, 10_000, initial=3, min_records=2)
    assert c2.observe(3, 5.0) == 2                 # never below min_records
    assert c2.observe(2, 5.0) == 2


def test_bounded_by_max_records_and_latency_percentiles():
    c = PollSizeController(50, 3000, initial=2000)
    assert c.observe(2000, 0.001) == 3000
    assert c.observe(3000, 0.001) == 3000
    for ms in range(1, 101):
        c.observe(10, ms / 1000)
    p50, p99, mx = c.latency_ms()
    assert mx == pytest.approx(100.0)
    assert p50 == pytest.approx(49.0, abs=1.5)
    assert p99 == pytest.approx(99.0, abs=1.5)


def test_converges_to_the_size_that_fits_the_bound_and_follows_a_slowdown():
    # Processing costs 20 us per record: 100 ms allows 5,000 records per poll.
    c = PollSizeController(100, 100_000, initial=1000)
    for _ in range(20):
        c.observe(c.size, c.size * 20e-6)
    assert c.size == 4000                          # 80 ms: under the bound, 8000 would not be
    assert max(c.recent) <= 100.0
    # The work per record doubles: one poll passes the bound, then the size fits again.
    for _ in range(20):
        c.observe(c.size, c.size * 40e-6)
    assert c.size == 2000
    assert [ms > 100.0 for ms in list(c.recent)[-20:]].count(True) == 1


def test_rejects_bad_settings():
    with pytest.raises(ValueError):
        PollSizeController(0, 100)
    with pytest.raises(ValueError):
        PollSizeController(100, 0)
    with pytest.raises(ValueError):
        PollSizeController(100, 10, min_records=11)


def test_empty_window():
    assert PollSizeController(100, 10).latency_ms() == (0.0, 0.0, 0.0)


def test_metrics_snapshot_reports_poll_size_and_batch_latency():
    import types

    from cstreams.runtime.metrics import Metrics

    c = PollSizeController(100, 10_000)
    c.observe(1000, 0.020)
    c.observe(2000, 0.030)
    thread = types.SimpleNamespace(
        tasks=types.SimpleNamespace(closed_task_metrics={}, closed_node_metrics={}, tasks={},
                                    assigned=True),
        committer=types.SimpleNamespace(commits=0, last_latency_ms=0.0, total_latency_ms=0.0),
        collector=types.SimpleNamespace(sent=0, ignored_failures=0),
        changelog_producer=types.SimpleNamespace(sent=0),
        restorer=types.SimpleNamespace(records_restored=0, progress=dict, active=False),
        poll_size=c, error=None, consumer=object(), stop_event=types.SimpleNamespace(
            is_set=lambda: False),
    )
    snap = Metrics("app", 0).snapshot(thread)
    assert snap["poll_size"] == 4000
    assert snap["batch_latency_ms_p50"] == pytest.approx(20.0)
    assert snap["batch_latency_ms_p99"] == pytest.approx(30.0)
    assert snap["batch_latency_ms_max"] == pytest.approx(30.0)
    assert snap["max_batch_latency_ms"] == 100.0


def test_app_takes_and_checks_max_batch_latency_ms(tmp_path):
    import cstreams as cs
    from cstreams.errors import ConfigurationError

    def topo():
        t = cs.Topology()
        t.add_source("in", topics=["in"])
        t.add_sink("out", topic="out", parents=["in"])
        return t

    app = cs.App(topo(), "app", "b:1", state_dir=str(tmp_path))
    assert app.max_batch_latency_ms == 100.0
    assert cs.App(topo(), "app", "b:1", state_dir=str(tmp_path),
                  max_batch_latency_ms=5).max_batch_latency_ms == 5
    for bad in (0, -1):
        with pytest.raises(ConfigurationError, match="max_batch_latency_ms"):
            cs.App(topo(), "app", "b:1", state_dir=str(tmp_path), max_batch_latency_ms=bad)
