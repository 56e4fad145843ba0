"""Record and the columnar RecordBatch."""

from __future__ import annotations


class Record:
    """One record: key, value, timestamp (ms), headers and its source coordinates."""

    __slots__ = ("key", "value", "timestamp", "headers", "topic", "partition", "offset")

    def __init__(
        self, key, value, timestamp=0, headers=None, topic=None, partition=-1, offset=-1
    ):
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.headers = headers
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def __eq__(self, other):
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.key == other.key
            and self.value == other.value
            and self.timestamp == other.timestamp
            and self.headers == other.headers
            and self.topic == other.topic
            and self.partition == other.partition
            and self.offset == other.offset
        )

    __hash__ = None

    def __repr__(self):
        return (
            f"Record(key={self.key!r}, value={self.value!r}, timestamp={self.timestamp}, "
            f"topic={self.topic!r}, partition={self.partition}, offset={self.offset})"
        )


class RecordBatch:
    """Records of one partition in offset order, stored as parallel lists.

    ``keys``, ``values``, ``timestamps`` and ``offsets`` are lists of equal length; ``headers``
    is None when no record carries headers, else a list with one entry (None or a list of
    (name, bytes) pairs) per record. Per-record objects are built only when asked for.
    """

    __slots__ = ("topic", "partition", "keys", "values", "timestamps", "offsets", "headers")

    def __init__(self, topic, partition, keys, values, timestamps, offsets, headers=None):
        n = len(keys)
        if len(values) != n or len(timestamps) != n or len(offsets) != n:
            raise ValueError(
                f"RecordBatch columns differ in length: keys={n}, values={len(values)}, "
                f"timestamps={len(timestamps)}, offsets={len(offsets)}"
            )
        if headers is not None and len(headers) != n:
            raise ValueError(f"RecordBatch headers has {len(headers)} entries for {n} records")
        self.topic = topic
        self.partition = partition
        # Columns are lists, as in the compiled RecordBatch: another sequence is copied.
        self.keys = keys if type(keys) is list else list(keys)
        self.values = values if type(values) is list else list(values)
        self.timestamps = timestamps if type(timestamps) is list else list(timestamps)
        self.offsets = offsets if type(offsets) is list else list(offsets)
        self.headers = headers

    def __len__(self):
        return len(self.keys)

    def record(self, i):
        headers = self.headers
        return Record(
            self.keys[i],
            self.values[i],
            self.timestamps[i],
            None if headers is None else headers[i],
            self.topic,
            self.partition,
            self.offsets[i],
        )

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.slice(i)
        n = len(self.keys)
        if i < 0:
            i += n
        if i < 0 or i >= n:
            raise IndexError("RecordBatch index out of range")
        return self.record(i)

    def slice(self, s):
        headers = self.headers
        return RecordBatch(
            self.topic,
            self.partition,
            self.keys[s],
            self.values[s],
            self.timestamps[s],
            self.offsets[s],
            None if headers is None else headers[s],
        )

    def __iter__(self):
        for i in range(len(self.keys)):
            yield self.record(i)

    def select(self, indexes):
        """A new batch holding the records at ``indexes`` (ascending), order kept."""
        indexes = list(indexes)
        keys, values, ts, offs = self.keys, self.values, self.timestamps, self.offsets
        headers = self.headers
        return RecordBatch(
            self.topic,
            self.partition,
            [keys[i] for i in indexes],
            [values[i] for i in indexes],
            [ts[i] for i in indexes],
            [offs[i] for i in indexes],
            None if headers is None else [headers[i] for i in indexes],
        )

    def with_columns(self, keys, values):
        """The same records (timestamps, offsets, headers) with new keys and values."""
        return RecordBatch(
            self.topic, self.partition, keys, values, self.timestamps, self.offsets, self.headers
        )

    @property
    def first_offset(self):
        return self.offsets[0] if self.offsets else -1

    @property
    def last_offset(self):
        return self.offsets[-1] if self.offsets else -1

    @property
    def max_timestamp(self):
        return max(self.timestamps) if self.timestamps else -1

    def __repr__(self):
        return (
            f"RecordBatch(topic={self.topic!r}, partition={self.partition}, records={len(self)}, "
            f"offsets={self.first_offset}..{self.last_offset})"
        )
