"""In-memory bytes backend: a dict plus a lazily rebuilt sorted key list for scans."""

from __future__ import annotations

import bisect


class InMemoryBackend:
    def __init__(self):
        self._data = {}
        self._sorted = None

    def get(self, kb):
        return self._data.get(kb)

    def get_batch(self, kbs):
        get = self._data.get
        return [get(kb) for kb in kbs]

    def write_batch(self, kbs, vbs):
        data = self._data
        for kb, vb in zip(kbs, vbs):
            if vb is None:
                if data.pop(kb, None) is not None:
                    self._sorted = None
            else:
                if kb not in data:
                    self._sorted = None
                data[kb] = vb

    def range(self, start=None, end=None):
        if self._sorted is None:
            self._sorted = sorted(self._data)
        keys = self._sorted
        lo = 0 if start is None else bisect.bisect_left(keys, start)
        hi = len(keys) if end is None else bisect.bisect_right(keys, end)
        data = self._data
        for kb in keys[lo:hi]:
            vb = data.get(kb)
            if vb is not None:
                yield kb, vb

    def delete_range(self, start, end):
        """Delete every key with start <= key < end (window store retention)."""
        if self._sorted is None:
            self._sorted = sorted(self._data)
        keys = self._sorted
        lo = bisect.bisect_left(keys, start)
        hi = bisect.bisect_left(keys, end)
        if hi <= lo:
            return
        data = self._data
        for kb in keys[lo:hi]:
            data.pop(kb, None)
        del keys[lo:hi]

    def count(self):
        return len(self._data)

    def close(self):
        pass
