"""Group consumed messages into one RecordBatch per (topic, partition).

One source for both builds: run as is on the pure-Python path, compiled by Cython (pure-Python
mode, declarations in cstreams/_core/grouping.pxd) into cstreams._core.grouping.
"""

from __future__ import annotations

from .record import RecordBatch


class _Columns:
    """The columns of one partition's batch while it is being grouped."""

    def __init__(self, topic, partition):
        self.topic = topic
        self.partition = partition
        self.keys = []
        self.values = []
        self.timestamps = []
        self.offsets = []
        self.headers = []
        self.has_headers = False


def group_messages(messages):
    """Split a consume() result into per-partition batches of raw bytes.

    Returns ``(batches, errors)``: ``batches`` holds one RecordBatch per (topic, partition) in
    first-seen order, each in the order the messages came (offset order, as the consumer
    delivers them); ``errors`` holds the messages whose ``error()`` was set, untouched.
    """
    index = {}
    order = []
    errors = []
    out = []
    cols = None
    last_topic = None
    last_partition = None
    for m in messages:
        if m.error() is not None:
            errors.append(m)
            continue
        topic = m.topic()
        partition = m.partition()
        # Consecutive messages of one partition are the common case: skip the dict lookup.
        if cols is None or not (topic == last_topic and partition == last_partition):
            tp = (topic, partition)
            cols = index.get(tp)
            if cols is None:
                cols = _Columns(topic, partition)
                index[tp] = cols
                order.append(cols)
            last_topic = topic
            last_partition = partition
        cols.keys.append(m.key())
        cols.values.append(m.value())
        cols.timestamps.append(m.timestamp()[1])
        cols.offsets.append(m.offset())
        h = m.headers()
        cols.headers.append(h)
        if h is not None:
            cols.has_headers = True
    for c in order:
        cols = c
        out.append(RecordBatch(cols.topic, cols.partition, cols.keys, cols.values,
                               cols.timestamps, cols.offsets,
                               cols.headers if cols.has_headers else None))
    return out, errors


def timestamp_run(timestamps, bound):
    """How many leading records of a batch a time-synchronized task processes before another
    partition's head (``bound``): at least one, then every next one stamped ``<= bound``
    (cstreams.runtime.partition_group)."""
    n = len(timestamps)
    cut = 1
    while cut < n and timestamps[cut] <= bound:
        cut += 1
    return cut
