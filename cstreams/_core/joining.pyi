from typing import Sequence

def match_windows(kbs: list[bytes], timestamps: Sequence[int], stream_time: int, grace: int,
                  before: int, after: int,
                  other: dict[bytes, list[tuple[int, int]]]
                  ) -> tuple[list[int], list[int], list[int], list[int], int]: ...
