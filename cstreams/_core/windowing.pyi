from typing import Any, Sequence

def assign_time_windows(kbs: Sequence[bytes], timestamps: Sequence[int], observed: int,
                        size: int, advance: int, grace: int
                        ) -> tuple[list[bytes], list[int], list[int], int]: ...
def update_windows(kv: Any, aggregation: Any, cks: Sequence[bytes], idx: Sequence[int],
                   keys: Sequence[Any], values: Sequence[Any]
                   ) -> tuple[list[bytes], dict[bytes, Any]]: ...
