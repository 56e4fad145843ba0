"""Output buffering of the dispatch layer: the records a processor forwards to one child while
it handles one input batch, handed on as one RecordBatch when the batch is done.

One source for both builds: run as is on the pure-Python path, compiled by Cython (pure-Python
mode, declarations in cstreams/_core/output.pxd) into cstreams._core.output.
"""

from __future__ import annotations

from .record import RecordBatch


class OutputBuffer:
    """Records forwarded to one child while the parent handles one input batch.

    forward_batch() of a whole batch into an empty buffer keeps the caller's lists as they are
    (no copy); anything else appends to lists the buffer owns.
    """

    def __init__(self):
        self.clear()

    def clear(self):
        self.keys = None
        self.values = None
        self.timestamps = None
        self.offsets = None
        self.headers = None
        self.owned = False
        self.has_headers = False

    def _own(self):
        if self.keys is None:
            self.keys, self.values, self.timestamps, self.offsets, self.headers = [], [], [], [], []
        else:
            self.keys = list(self.keys)
            self.values = list(self.values)
            self.timestamps = list(self.timestamps)
            self.offsets = list(self.offsets)
            self.headers = (
                list(self.headers) if self.headers is not None else [None] * len(self.keys)
            )
        self.owned = True

    def append(self, key, value, timestamp, offset, headers):
        if not self.owned:
            self._own()
        self.keys.append(key)
        self.values.append(value)
        self.timestamps.append(timestamp)
        self.offsets.append(offset)
        self.headers.append(headers)
        if headers is not None:
            self.has_headers = True

    def extend(self, keys, values, timestamps, offsets, headers):
        if self.keys is None:
            self.keys, self.values = keys, values
            self.timestamps, self.offsets = timestamps, offsets
            self.headers = headers
            self.has_headers = headers is not None
            return
        if not self.owned:
            self._own()
        self.keys.extend(keys)
        self.values.extend(values)
        self.timestamps.extend(timestamps)
        self.offsets.extend(offsets)
        if headers is None:
            self.headers.extend([None] * len(keys))
        else:
            self.headers.extend(headers)
            self.has_headers = True

    def take(self, topic, partition):
        if self.keys is None or not self.keys:
            self.clear()
            return None
        batch = RecordBatch(
            topic,
            partition,
            self.keys,
            self.values,
            self.timestamps,
            self.offsets,
            self.headers if self.has_headers else None,
        )
        self.clear()
        return batch


__all__ = ["OutputBuffer"]
