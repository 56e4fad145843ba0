from typing import Any, Sequence

def count_batch(store: Any, keys: Sequence[Any],
                key_bytes: Sequence[bytes] | None = ...) -> list[int]: ...
