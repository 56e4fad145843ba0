from typing import Any, Sequence

def match_windows(kbs: list[bytes], timestamps: Sequence[int], stream_time: int, grace: int,
                  before: int, after: int, other: dict[bytes, list[tuple[int, Any]]]
                  ) -> tuple[list[int], list[int], list[int], list[int], list[Any], int]: ...
def index_records(kbs: list[bytes], timestamps: Sequence[int], late: list[int], seq: int,
                  index: dict[bytes, list[tuple[int, bytes]]]
                  ) -> tuple[list[int], list[bytes], int]: ...
