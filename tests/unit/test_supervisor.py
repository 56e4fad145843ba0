"""The supervisor's restart policy and the worker Apps it builds (no broker needed: workers
that cannot reach one die, which is what the restart limit is about)."""

from __future__ import annotations

import logging
import os

import pytest

pytest.importorskip("confluent_kafka")

import cstreams as cs  # noqa: E402
from cstreams.errors import ConfigurationError  # noqa: E402
from cstreams.workers import Supervisor, WorkersFailed, worker_state_dir  # noqa: E402


def topology():
    t = cs.Topology()
    t.add_source("in", topics=["in"])
    t.add_sink("out", topic="out", parents=["in"])
    return t


def test_workers_that_keep_dying_are_restarted_with_backoff_then_the_supervisor_gives_up(
        tmp_path, caplog):
    app = cs.App(topology(), "dying", "127.0.0.1:1", state_dir=str(tmp_path),
                 metadata_timeout_s=0.3)
    sup = Supervisor(app, 2, max_restarts=2, restart_window_s=60, backoff_s=0.05)
    with caplog.at_level(logging.INFO, logger="cstreams.workers"):
        with pytest.raises(WorkersFailed, match="restarted 2 times within 60 s"):
            sup.run()
    # The first worker to exhaust its restarts stops everything: 1 start + 2 restarts.
    assert max(w.starts for w in sup.workers) == 3
    assert all(w.process is None for w in sup.workers)      # every process reaped
    assert "restarting it in 0.1 s (restart 2 within 60 s)" in caplog.text   # doubled
    assert not os.path.exists(sup.status_dir)


def test_worker_apps_get_their_own_state_dir_and_stable_instance_id(tmp_path):
    app = cs.App(topology(), "eos", "b:1", state_dir=str(tmp_path),
                 processing_guarantee="exactly_once_v2", commit_interval_ms=250)
    sup = Supervisor(app, 3)
    assert sup.base_instance_id == app.instance_id
    w = app.for_worker(2, worker_state_dir(app.state_dir, 2), sup.instance_id(2))
    assert w.state_dir == os.path.join(str(tmp_path), "worker-2")
    assert w.transactional_id == f"eos-{app.instance_id}-w2"
    assert w.commit_interval_ms == 250 and w.metrics_port is None
    # Again after a restart of the supervisor: the same ids.
    again = Supervisor(cs.App(topology(), "eos", "b:1", state_dir=str(tmp_path),
                              processing_guarantee="exactly_once_v2"), 3)
    assert again.instance_id(2) == sup.instance_id(2)
    # A transactional.id the user set gets the worker's suffix.
    user = cs.App(topology(), "eos", "b:1", state_dir=str(tmp_path),
                  processing_guarantee="exactly_once_v2",
                  config={"transactional.id": "mine"})
    assert user.for_worker(1, str(tmp_path / "w1"), "x").transactional_id == "mine-w1"


def test_processes_must_be_positive(tmp_path):
    app = cs.App(topology(), "a", "b:1", state_dir=str(tmp_path))
    with pytest.raises(ConfigurationError):
        Supervisor(app, 0)
