from typing import Any, Callable, Sequence

def produce_batch(producer: Any, topic: str, *, keys: Sequence[Any], values: Sequence[Any],
                  partitions: Sequence[int] | int, timestamps: Sequence[int] | None = ...,
                  headers: Sequence[Any] | None = ...,
                  last_on_delivery: Callable[[Any, Any], None] | None = ...,
                  poll_timeout: float = ...) -> int: ...
