"""Changelog writers: store flushes to ``<application_id>-<store>-changelog``.

A task's KeyValueStore calls ``writer.send(key_bytes, value_bytes)`` once per flush with its
dirty keys (None value = tombstone). The writer produces them to the changelog partition equal
to the task's partition through the changelog producer, which reports every delivery: the
highest acknowledged offset + 1 per changelog partition is what the checkpoint file records
(the next offset a restoration has to read).

Under exactly-once the records go through the instance's transactional producer
(``transaction=``), which has no default delivery callback: only the last record of each send
carries one (a partition's offsets grow in produce order, so it has the highest), and a failed
delivery fails the transaction's commit instead.
"""

from __future__ import annotations

import threading

from cstreams.errors import ProductionError
from cstreams.internals import kafka


class ChangelogProducer:
    """One producer shared by every changelog writer of an app instance."""

    def __init__(self, producer_conf, *, transaction=None):
        self.transaction = transaction
        self.producer = kafka.producer_for(producer_conf, self._on_delivery, transaction)
        self._lock = threading.Lock()
        self.acked = {}
        self.failures = []
        self.sent = 0

    def _on_delivery(self, err, msg):
        if err is not None:
            with self._lock:
                self.failures.append((msg.topic(), msg.partition(), err))
            return
        tp = (msg.topic(), msg.partition())
        nxt = msg.offset() + 1
        if nxt > self.acked.get(tp, -1):
            self.acked[tp] = nxt

    def send(self, topic, partition, kbs, vbs):
        if self.transaction is not None:
            if not len(kbs):
                return
            # No default callback on the transactional producer: only the last record, the
            # highest offset of this partition's send, reports its delivery.
            self.sent += self.transaction.produce_batch(topic, keys=kbs, values=vbs,
                                                        partitions=partition,
                                                        last_on_delivery=self._on_delivery)
            return
        self.sent += kafka.produce_batch(self.producer, topic, keys=kbs, values=vbs,
                                         partitions=partition)

    def poll(self):
        self.producer.poll(0)

    def flush(self, timeout):
        left = self.producer.flush(timeout)
        if left:
            raise ProductionError(
                f"{left} changelog records were not acknowledged within {timeout:.0f} s"
            )
        with self._lock:
            failures, self.failures = self.failures, []
        if failures:
            topic, partition, err = failures[0]
            e = ProductionError(
                f"{len(failures)} changelog record(s) failed delivery; first: topic {topic!r} "
                f"partition {partition}: {err.str() if hasattr(err, 'str') else err}"
            )
            e.topic, e.partition = topic, partition
            raise e

    def acked_offset(self, topic, partition):
        return self.acked.get((topic, partition))

    def close(self, timeout=5.0):
        try:
            self.producer.flush(timeout)
        except Exception:  # noqa: BLE001
            pass


class ChangelogWriter:
    """The ``store.changelog`` of one store of one task."""

    __slots__ = ("producer", "topic", "partition")

    def __init__(self, producer, topic, partition):
        self.producer = producer
        self.topic = topic
        self.partition = partition

    def send(self, kbs, vbs):
        self.producer.send(self.topic, self.partition, kbs, vbs)
