from typing import Any, Optional, Sequence

from .record import RecordBatch

class OutputBuffer:
    keys: Optional[list]
    values: Optional[list]
    timestamps: Optional[list]
    offsets: Optional[list]
    headers: Optional[list]
    owned: bool
    has_headers: bool
    def clear(self) -> None: ...
    def append(self, key: Any, value: Any, timestamp: Any, offset: Any, headers: Any) -> None: ...
    def extend(self, keys: Sequence, values: Sequence, timestamps: Sequence, offsets: Sequence,
               headers: Optional[Sequence]) -> None: ...
    def take(self, topic: Optional[str], partition: int) -> Optional[RecordBatch]: ...
