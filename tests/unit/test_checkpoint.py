"""Checkpoint file and task-directory lock: real files, real processes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from cstreams.errors import StoreError
from cstreams.internals.state import (
    CHECKPOINT_FILE,
    LOCK_FILE,
    TaskDirectoryLock,
    delete_checkpoint,
    read_checkpoint,
    write_checkpoint,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OFFSETS = {("app-counts-changelog", 0): 1200, ("app-counts-changelog", 3): 0,
           ("app-totals-changelog", 0): 7}


def test_missing_checkpoint_reads_as_empty(tmp_path):
    assert read_checkpoint(tmp_path) == {}
    assert read_checkpoint(tmp_path / "no-such-task") == {}


def test_round_trip(tmp_path):
    write_checkpoint(tmp_path, OFFSETS)
    assert read_checkpoint(tmp_path) == OFFSETS
    write_checkpoint(tmp_path, {})
    assert read_checkpoint(tmp_path) == {}


def test_file_is_versioned_json(tmp_path):
    write_checkpoint(str(tmp_path), {("t", 1): 5})
    doc = json.loads((tmp_path / CHECKPOINT_FILE).read_text())
    assert doc == {"version": 1, "offsets": [{"topic": "t", "partition": 1, "offset": 5}]}


def test_write_creates_the_task_directory(tmp_path):
    task_dir = tmp_path / "app" / "0_3"
    write_checkpoint(task_dir, {("t", 3): 9})
    assert read_checkpoint(task_dir) == {("t", 3): 9}


def test_replacement_is_atomic_and_leaves_no_temp_files(tmp_path):
    write_checkpoint(tmp_path, OFFSETS)
    old_inode = os.stat(tmp_path / CHECKPOINT_FILE).st_ino
    with open(tmp_path / CHECKPOINT_FILE) as reader:  # a reader holding the old file
        write_checkpoint(tmp_path, {("t", 0): 42})
        assert json.loads(reader.read())["offsets"][0]["offset"] == 1200
    assert os.stat(tmp_path / CHECKPOINT_FILE).st_ino != old_inode  # renamed over, not rewritten
    assert read_checkpoint(tmp_path) == {("t", 0): 42}
    assert sorted(os.listdir(tmp_path)) == [CHECKPOINT_FILE]


def test_failed_write_keeps_the_old_checkpoint(tmp_path):
    write_checkpoint(tmp_path, OFFSETS)
    with pytest.raises(ValueError):
        write_checkpoint(tmp_path, {("t", 0): -1})
    with pytest.raises(ValueError):
        write_checkpoint(tmp_path, {"t:0": 1})
    assert read_checkpoint(tmp_path) == OFFSETS
    assert sorted(os.listdir(tmp_path)) == [CHECKPOINT_FILE]


@pytest.mark.parametrize("content", [
    b"",
    b"{not json",
    b"\xff\xfe\x00garbage",
    b"[1, 2]",
    b'{"version": 2, "offsets": []}',
    b'{"offsets": []}',
    b'{"version": 1}',
    b'{"version": 1, "offsets": [{"topic": "t", "partition": 0}]}',
    b'{"version": 1, "offsets": [{"topic": "t", "partition": "0", "offset": 1}]}',
    b'{"version": 1, "offsets": [{"topic": "t", "partition": 0, "offset": -5}]}',
])
def test_corrupt_checkpoint_reads_as_none_with_a_warning(tmp_path, caplog, content):
    (tmp_path / CHECKPOINT_FILE).write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="cstreams.internals.state.checkpoint"):
        assert read_checkpoint(tmp_path) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(tmp_path / CHECKPOINT_FILE) in warnings[0].getMessage()


def test_unreadable_checkpoint_reads_as_none_with_a_warning(tmp_path, caplog):
    (tmp_path / CHECKPOINT_FILE).mkdir()  # unreadable as a file, whatever the user id
    with caplog.at_level(logging.WARNING, logger="cstreams.internals.state.checkpoint"):
        assert read_checkpoint(tmp_path) is None
    assert str(tmp_path / CHECKPOINT_FILE) in caplog.text


def test_delete_checkpoint(tmp_path):
    write_checkpoint(tmp_path, OFFSETS)
    delete_checkpoint(tmp_path)
    assert read_checkpoint(tmp_path) == {}
    delete_checkpoint(tmp_path)  # absent: nothing to do


# --- task-directory lock ------------------------------------------------------------------------

def test_lock_is_exclusive_and_released_on_close(tmp_path):
    task_dir = tmp_path / "app" / "0_1"
    lock = TaskDirectoryLock(task_dir)
    assert lock.locked and (task_dir / LOCK_FILE).exists()
    with pytest.raises(StoreError, match="is locked"):
        TaskDirectoryLock(task_dir)
    lock.close()
    lock.close()  # idempotent
    assert not lock.locked
    with TaskDirectoryLock(task_dir) as again:
        assert again.locked
    assert not again.locked


def test_lock_waits_for_the_holder_to_let_go(tmp_path):
    """A task moving between two owners on one host: the new owner waits (up to its timeout)
    for the old one to close the task, instead of failing at once."""
    import threading

    task_dir = tmp_path / "app" / "0_2"
    held = TaskDirectoryLock(task_dir)
    waited = []
    release = threading.Timer(0.3, held.close)
    release.start()
    try:
        with TaskDirectoryLock(task_dir, timeout=30, on_wait=waited.append) as lock:
            assert lock.locked
    finally:
        release.cancel()
    assert waited, "the lock was free at once: the test proves nothing"
    assert not held.locked


def test_lock_still_held_after_the_timeout_names_the_wait(tmp_path):
    task_dir = tmp_path / "app" / "0_3"
    with TaskDirectoryLock(task_dir):
        with pytest.raises(StoreError, match=r"is locked.*waited 0.2 s"):
            TaskDirectoryLock(task_dir, timeout=0.2)


def _hold_lock(task_dir):
    code = textwrap.dedent(f"""
        import sys
        from cstreams.internals.state import TaskDirectoryLock
        lock = TaskDirectoryLock({str(task_dir)!r})
        print("locked", flush=True)
        sys.stdin.read()
    """)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_held_by_another_process_names_the_directory_and_pid(tmp_path):
    proc = _hold_lock(tmp_path)
    try:
        with pytest.raises(StoreError) as ei:
            TaskDirectoryLock(tmp_path)
        msg = str(ei.value)
        assert str(tmp_path) in msg and "another process" in msg and f"pid {proc.pid}" in msg
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    TaskDirectoryLock(tmp_path).close()


def test_lock_of_a_killed_process_is_released(tmp_path):
    proc = _hold_lock(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    proc.stdin.close()
    with TaskDirectoryLock(tmp_path) as lock:
        assert lock.locked
