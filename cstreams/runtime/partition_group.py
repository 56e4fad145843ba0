"""PartitionGroup: time synchronization for a task that reads more than one partition (the
two sides of a join, merged streams), as Kafka Streams' PartitionGroup does, batch by batch.

Consumed batches are buffered per partition. The group releases, from the partition whose
next record has the lowest timestamp, the run of records up to the next-lowest head
timestamp of the other partitions (at least one record): batches stay one partition in
offset order, and a table update is processed before a stream record with a later timestamp
in another partition. While a partition of the task has nothing buffered but is known to
hold more records on the broker (its fetch lag, ``lagging(tp)``), the group waits for them,
as Kafka Streams does (for at most MAX_LAG_WAIT_MS or ``max_idle_ms``); while it has
nothing buffered and no known lag, the group waits at most ``max_idle_ms`` (Kafka Streams'
max.task.idle.ms; 0: no wait), then processes what it has until every partition has data
again. A partition holding more than ``max_buffered`` records is reported for a pause, and
resumed once it drains below.

Single-source tasks never use it: their batches are processed as consumed.
"""

from __future__ import annotations

import collections

from cstreams._impl import grouping

# The longest a group waits for a lagging partition's records (a bound, in case the lag
# never closes: a position that does not move past trailing transaction markers).
MAX_LAG_WAIT_MS = 5_000


class PartitionGroup:
    __slots__ = ("partitions", "max_idle_ms", "max_buffered", "_queues", "_buffered",
                 "_wait_started")

    def __init__(self, max_idle_ms=0, max_buffered=1000):
        self.partitions = set()         # the task's (topic, partition)s
        self.max_idle_ms = max_idle_ms
        self.max_buffered = max_buffered
        self._queues = {}               # (topic, partition) -> deque of batches
        self._buffered = {}             # (topic, partition) -> records buffered
        self._wait_started = None       # ms when the group started waiting for data

    def add(self, batch):
        """Buffer a consumed batch; True when its partition passed the bound (pause it)."""
        tp = (batch.topic, batch.partition)
        self._queues.setdefault(tp, collections.deque()).append(batch)
        n = self._buffered.get(tp, 0) + len(batch.offsets)
        self._buffered[tp] = n
        return n > self.max_buffered

    def buffered(self, tp):
        return self._buffered.get(tp, 0)

    def first_offset(self, tp):
        """The offset of the first buffered record of ``tp`` (None when nothing is)."""
        q = self._queues.get(tp)
        return q[0].offsets[0] if q else None

    def drop(self, tp=None):
        """Forget the buffered records of ``tp`` (of every partition when None)."""
        for key in ([tp] if tp is not None else list(self._queues)):
            self._queues.pop(key, None)
            self._buffered.pop(key, None)

    def next_batch(self, now_ms, lagging=None):
        """The next batch to process, or None (nothing buffered, or waiting for a partition
        with nothing buffered). ``lagging(tp)``: True when ``tp`` has records on the broker
        not fetched yet."""
        heads = {tp: q[0].timestamps[0] for tp, q in self._queues.items() if q}
        if not heads:
            return None
        missing = [tp for tp in self.partitions if tp not in heads]
        if missing:
            if self._wait_started is None:
                self._wait_started = now_ms
            waited = now_ms - self._wait_started
            if (lagging is not None and waited < max(self.max_idle_ms, MAX_LAG_WAIT_MS)
                    and any(lagging(tp) for tp in missing)):
                return None
            if waited < self.max_idle_ms:
                return None
        else:
            self._wait_started = None
        tp = min(heads, key=heads.__getitem__)
        bound = min((t for other, t in heads.items() if other != tp), default=None)
        q = self._queues[tp]
        batch = q[0]
        timestamps = batch.timestamps
        n = len(timestamps)
        cut = n
        if bound is not None:
            cut = grouping.timestamp_run(timestamps, bound)
        if cut == n:
            q.popleft()
            if not q:
                del self._queues[tp]
        else:
            q[0] = batch[cut:]
            batch = batch[:cut]
        self._buffered[tp] -= cut
        return batch
