from typing import Any, Iterable

from .record import RecordBatch

def group_messages(messages: Iterable[Any]) -> tuple[list[RecordBatch], list[Any]]: ...
