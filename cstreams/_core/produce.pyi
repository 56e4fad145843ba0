from typing import Any, Callable, Sequence

def produce_batch(producer: Any, topic: str, *, keys: Sequence[Any], values: Sequence[Any],
                  partitions: Sequence[int] | int, timestamps: Sequence[int] | None = ...,
                  headers: Sequence[Any] | None = ...,
                  last_on_delivery: Callable[[Any, Any], None] | None = ...,
                  poll_timeout: float = ...) -> int: ...
def batch_columns(
    keys: Sequence[Any], values: Sequence[Any], partitions: Sequence[int] | int,
    timestamps: Sequence[int] | None, headers: Sequence[Any] | None,
) -> tuple[list[Any], list[Any], list[int] | None, list[Any] | None, list[Any] | None]: ...
