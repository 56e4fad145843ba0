"""Interval commits rewrite a task's checkpoint only once its changelogs moved on enough."""

from __future__ import annotations

import types

import cstreams as cs
from cstreams.internals.state.checkpoint import read_checkpoint
from cstreams.runtime.task_manager import (
    CHECKPOINT_DELTA,
    RUNNING,
    ManagedTask,
    TaskManager,
)

TP = ("app-counts-changelog", 0)


class Acked:
    def __init__(self):
        self.offsets = {}

    def acked_offset(self, topic, partition):
        return self.offsets.get((topic, partition))


def _manager(tmp_path):
    topo = cs.Topology()
    topo.add_source("in", topics=["in"])
    topo.add_store(cs.stores.rocksdb("counts", key_serde=cs.serde.STRING,
                                     value_serde=cs.serde.INT64))
    topo.add_processor("count", cs.processors.count("counts"), parents=["in"],
                       stores=["counts"])
    acked = Acked()
    tm = TaskManager(topo, "app", state_dir=str(tmp_path), error_handler=None, collector=None,
                     changelog_producer=acked, restorer=None)
    directory = tmp_path / "app" / "0_0"
    mt = ManagedTask(types.SimpleNamespace(directory=str(directory)))
    mt.state = RUNNING
    mt.checkpointed = True
    mt.changelogs = {TP: "counts"}
    tm.tasks[(0, 0)] = mt
    return tm, acked, directory


def test_interval_checkpoints_wait_for_the_delta_forced_ones_do_not(tmp_path):
    tm, acked, directory = _manager(tmp_path)
    acked.offsets[TP] = 100
    tm.write_checkpoints(force=False)                   # the first one is always written
    assert read_checkpoint(directory) == {TP: 100}
    acked.offsets[TP] = 100 + CHECKPOINT_DELTA - 1
    tm.write_checkpoints(force=False)
    assert read_checkpoint(directory) == {TP: 100}      # stale, which is safe
    acked.offsets[TP] = 100 + CHECKPOINT_DELTA
    tm.write_checkpoints(force=False)
    assert read_checkpoint(directory) == {TP: 100 + CHECKPOINT_DELTA}
    acked.offsets[TP] = 100 + CHECKPOINT_DELTA + 5
    tm.write_checkpoints(force=True)                    # revocation, close
    assert read_checkpoint(directory) == {TP: 100 + CHECKPOINT_DELTA + 5}
    assert tm.tasks[(0, 0)].positions == {TP: 100 + CHECKPOINT_DELTA + 5}


def test_default_is_forced(tmp_path):
    tm, acked, directory = _manager(tmp_path)
    acked.offsets[TP] = 7
    tm.write_checkpoints()
    acked.offsets[TP] = 8
    tm.write_checkpoints()
    assert read_checkpoint(directory) == {TP: 8}
