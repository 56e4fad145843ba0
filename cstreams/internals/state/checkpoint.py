"""Per-task state directory files: the changelog checkpoint and the task-directory lock.

Checkpoint (Kafka Streams' ``.checkpoint``): for each changelog partition of the task's stores,
the next changelog offset to restore from; everything before it is already in the local
stores. Keys are ``(topic, partition)`` tuples, as Kafka's TopicPartition, so two stores of a
task can never collide and the restore consumer can be assigned straight from them. The file is
JSON with a version field::

    {"version": 1, "offsets": [{"topic": "app-counts-changelog", "partition": 3,
                                "offset": 1200}]}

It is replaced atomically (temp file in the same directory, fsync, os.replace, fsync of the
directory): a reader sees the old file or the new one, never a torn one. A file that cannot be
read or parsed is reported with a WARNING and read as None: the caller restores every store of
the task from the changelog's beginning, which is always correct, only slower.

Lock (Kafka Streams' StateDirectory lock): ``TaskDirectoryLock`` holds an exclusive
``fcntl.flock`` on ``<task_dir>/.lock`` so two processes (or two owners in one process) never
open the same task's stores. The kernel drops the lock when the process dies, even by SIGKILL.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import tempfile
import time

from cstreams.errors import StoreError

log = logging.getLogger(__name__)

CHECKPOINT_FILE = ".checkpoint"
LOCK_FILE = ".lock"
CHECKPOINT_VERSION = 1


def checkpoint_path(task_dir):
    return os.path.join(os.fspath(task_dir), CHECKPOINT_FILE)


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode(offsets):
    entries = []
    for tp, offset in offsets.items():
        if (
            not isinstance(tp, tuple) or len(tp) != 2 or not isinstance(tp[0], str)
            or not isinstance(tp[1], int) or isinstance(tp[1], bool) or tp[1] < 0
        ):
            raise ValueError(
                f"checkpoint key must be (topic: str, partition: int >= 0), got {tp!r}"
            )
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(f"checkpoint offset for {tp[0]}-{tp[1]} must be an int >= 0, "
                             f"got {offset!r}")
        entries.append({"topic": tp[0], "partition": tp[1], "offset": offset})
    entries.sort(key=lambda e: (e["topic"], e["partition"]))
    return json.dumps({"version": CHECKPOINT_VERSION, "offsets": entries}, indent=1) + "\n"


def write_checkpoint(task_dir, offsets: dict[tuple[str, int], int]) -> None:
    """Atomically replace the task's checkpoint with ``{(topic, partition): next_offset}``."""
    task_dir = os.fspath(task_dir)
    data = _encode(offsets).encode("utf-8")
    os.makedirs(task_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=CHECKPOINT_FILE + ".", suffix=".tmp", dir=task_dir)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, checkpoint_path(task_dir))
        _fsync_dir(task_dir)
    except OSError as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise StoreError(f"could not write checkpoint {checkpoint_path(task_dir)}: {e}") from e


def _decode(text):
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    version = doc.get("version")
    if version != CHECKPOINT_VERSION:
        raise ValueError(f"unsupported checkpoint version {version!r} "
                         f"(this cstreams reads version {CHECKPOINT_VERSION})")
    offsets = {}
    for e in doc["offsets"]:
        topic, partition, offset = e["topic"], e["partition"], e["offset"]
        if (not isinstance(topic, str) or type(partition) is not int or partition < 0
                or type(offset) is not int or offset < 0):
            raise ValueError(f"bad entry {e!r}")
        offsets[(topic, partition)] = offset
    return offsets


def read_checkpoint(task_dir) -> dict[tuple[str, int], int] | None:
    """The task's checkpoint: {} when there is none; None (with a WARNING) when the file is
    unreadable or corrupt, meaning: restore every store from the beginning."""
    path = checkpoint_path(task_dir)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        log.warning("checkpoint file %s is unreadable (%s); its stores will be restored "
                    "from the beginning of their changelogs", path, e)
        return None
    try:
        return _decode(text)
    except (ValueError, KeyError, TypeError) as e:
        log.warning("checkpoint file %s is corrupt (%s); its stores will be restored "
                    "from the beginning of their changelogs", path, e)
        return None


def delete_checkpoint(task_dir) -> None:
    """Remove the checkpoint (e.g. while a task's stores run ahead of it under exactly-once)."""
    path = checkpoint_path(task_dir)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise StoreError(f"could not delete checkpoint {path}: {e}") from e
    _fsync_dir(os.path.dirname(path))


class TaskDirectoryLock:
    """Exclusive lock on a task directory, held until close() (or process death).

    flock locks belong to an open file description, so a second TaskDirectoryLock on the same
    directory fails in this process as well as in another one.
    """

    def __init__(self, task_dir, timeout=0.0, on_wait=None):
        """``timeout``: seconds to wait for a holder to let go (a task moving between two
        owners on one host: the one it leaves may still be closing it, as Kafka Streams
        retries its task-directory lock); ``on_wait(holder)`` is called once if it waits."""
        self.task_dir = os.fspath(task_dir)
        self.path = os.path.join(self.task_dir, LOCK_FILE)
        os.makedirs(self.task_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + timeout
        pause = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                busy = e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
                if busy and time.monotonic() < deadline:
                    if on_wait is not None and pause == 0.01:
                        on_wait(_read_holder(fd))
                    time.sleep(pause)
                    pause = min(pause * 2, 0.5)
                    continue
                holder = _read_holder(fd)
                os.close(fd)
                if busy:
                    raise StoreError(
                        f"task directory {self.task_dir} is locked: another process{holder} "
                        f"(or another owner in this one) holds {self.path}"
                        f"{f' (waited {timeout:g} s)' if timeout > 0 else ''}; is another "
                        f"instance with the same application_id and state_dir running?"
                    ) from None
                raise StoreError(f"could not lock task directory {self.task_dir}: {e}") from e
        # The holder's pid, for the error message of whoever comes next; advisory only.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @property
    def locked(self):
        return self._fd is not None

    def close(self):
        """Release the lock; idempotent. The .lock file stays (deleting it would race with a
        process that has it open and is about to lock it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    release = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            self.close()

    def __repr__(self):
        return f"<TaskDirectoryLock {self.task_dir} {'held' if self.locked else 'released'}>"


def _read_holder(fd):
    try:
        pid = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


__all__ = [
    "CHECKPOINT_FILE", "CHECKPOINT_VERSION", "LOCK_FILE", "TaskDirectoryLock",
    "checkpoint_path", "delete_checkpoint", "read_checkpoint", "write_checkpoint",
]
