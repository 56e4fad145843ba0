"""Error handlers: what happens to a record that fails to deserialize or to process.

A handler's ``handle(error, record, task)`` returns True to skip the record and go on, or
False to fail (the error propagates and nothing past the record is committed). ``record`` is
the raw consumed record (bytes key and value, headers, source coordinates) when known.
"""

from __future__ import annotations

import logging

log = logging.getLogger("cstreams.errors")


class ErrorHandler:
    name = "custom"

    def handle(self, error, record, task) -> bool:
        raise NotImplementedError


class FailHandler(ErrorHandler):
    name = "fail"

    def handle(self, error, record, task) -> bool:
        return False


class SkipHandler(ErrorHandler):
    """Log and count the record (the task's ``records_skipped`` metric), then go on."""

    name = "skip"

    def handle(self, error, record, task) -> bool:
        task.metrics["records_skipped"] += 1
        log.warning("skipping record: %s", error)
        return True


ERROR_HEADER = "cstreams.error"
ERROR_CLASS_HEADER = "cstreams.error.class"
TOPIC_HEADER = "cstreams.source.topic"
PARTITION_HEADER = "cstreams.source.partition"
OFFSET_HEADER = "cstreams.source.offset"
NODE_HEADER = "cstreams.source.node"


class DeadLetterHandler(ErrorHandler):
    """Send the original key and value bytes to ``topic`` with the error text and source
    coordinates in headers, then go on. The dead-letter record is produced like sink output,
    so a commit waits for its acknowledgement. Counted in the task's
    ``records_dead_lettered`` metric."""

    name = "dead-letter"

    def __init__(self, topic):
        self.topic = topic

    def handle(self, error, record, task) -> bool:
        if record is None:
            log.error("no source record to dead-letter for %s; failing", error)
            return False
        headers = list(record.headers or [])
        headers += [
            (ERROR_HEADER, str(error).encode("utf-8", "replace")),
            (ERROR_CLASS_HEADER, type(error.__cause__ or error).__name__.encode()),
            (TOPIC_HEADER, str(record.topic).encode()),
            (PARTITION_HEADER, str(record.partition).encode()),
            (OFFSET_HEADER, str(record.offset).encode()),
            (NODE_HEADER, str(getattr(error, "node", "") or "").encode()),
        ]
        task.send(
            self.topic, [record.key], [record.value], [record.timestamp], [headers],
            [record.partition % task.partitions_for(self.topic)],
        )
        task.metrics["records_dead_lettered"] += 1
        log.warning("dead-lettered record to %r: %s", self.topic, error)
        return True


def resolve(handler):
    """Accept a handler, "fail", "skip" or ("dead-letter", topic) / "dead-letter:TOPIC"."""
    if handler is None or handler == "fail":
        return FailHandler()
    if handler == "skip":
        return SkipHandler()
    if isinstance(handler, ErrorHandler):
        return handler
    if isinstance(handler, str) and handler.startswith(("dead-letter:", "dlq:")):
        return DeadLetterHandler(handler.split(":", 1)[1])
    if isinstance(handler, tuple) and len(handler) == 2 and handler[0] in ("dead-letter", "dlq"):
        return DeadLetterHandler(handler[1])
    raise ValueError(
        f"unknown error handler {handler!r}: use 'fail', 'skip', 'dead-letter:TOPIC' or an "
        f"ErrorHandler"
    )
