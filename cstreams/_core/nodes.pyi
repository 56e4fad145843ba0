from typing import Any, Optional, Sequence

from .context import ProcessorContext, TaskContext
from .record import RecordBatch

class Node:
    kind: str
    name: str
    children: list
    store_names: frozenset
    task: TaskContext
    def __init__(self, name: str, task: TaskContext) -> None: ...
    def add_child(self, child: "Node") -> None: ...
    def init(self) -> None: ...
    def close(self) -> None: ...

class SourceNode(Node):
    topics: list
    key_serde: Any
    value_serde: Any
    def __init__(self, name: str, task: TaskContext, topics: list, key_serde: Any,
                 value_serde: Any) -> None: ...
    def process_raw(self, raw: RecordBatch) -> None: ...
    def deserialize(self, raw: RecordBatch) -> Optional[RecordBatch]: ...

class ProcessorNode(Node):
    processor: Any
    is_batch: bool
    context: Optional[ProcessorContext]
    def __init__(self, name: str, task: TaskContext, processor: Any,
                 store_names: Sequence[str]) -> None: ...
    def process_batch(self, batch: RecordBatch) -> None: ...
    def punctuate(self, callback: Any, timestamp: int) -> None: ...

class SinkNode(Node):
    topic: str
    key_serde: Any
    value_serde: Any
    partitioner: Any
    def __init__(self, name: str, task: TaskContext, topic: str, key_serde: Any,
                 value_serde: Any, partitioner: Any = None) -> None: ...
    def process_batch(self, batch: RecordBatch) -> None: ...
