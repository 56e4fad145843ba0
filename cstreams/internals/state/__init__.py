"""Task state directories: changelog checkpoints and the task-directory lock."""

from cstreams.internals.state.checkpoint import (
    CHECKPOINT_FILE,
    CHECKPOINT_VERSION,
    LOCK_FILE,
    TaskDirectoryLock,
    checkpoint_path,
    delete_checkpoint,
    read_checkpoint,
    write_checkpoint,
)

__all__ = [
    "CHECKPOINT_FILE", "CHECKPOINT_VERSION", "LOCK_FILE", "TaskDirectoryLock",
    "checkpoint_path", "delete_checkpoint", "read_checkpoint", "write_checkpoint",
]
