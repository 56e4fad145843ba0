"""RecordCollector: sink output to the producer, with explicit partitions.

Each record is produced with the partition its sink computed (murmur2 of the key bytes, as
Java's default partitioner) or -1 for a null key. The producer runs with
``delivery.report.only.error=true``: confluent-kafka then calls back into Python only for a
failed delivery, so the per-record cost is the produce() call itself. A failure is remembered
and makes the next commit fail (ProductionError naming topic, partition and error) unless the
production error handler says to go on.

Under exactly-once the collector produces through the instance's transactional producer
(``transaction=``): a batch begins the transaction if none is open, and a failed delivery
fails the transaction's commit (it is aborted), so no delivery reports are asked for.
"""

from __future__ import annotations

import logging
import threading

from cstreams.errors import ProductionError
from cstreams.internals import kafka

log = logging.getLogger("cstreams.collector")

# Dropped failures are counted; only the first few are kept for the error message.
_KEEP_FAILURES = 100


class RecordCollector:
    def __init__(self, producer_conf, *, production_error_handler=None, metadata_timeout=10.0,
                 transaction=None):
        self.transaction = transaction
        self.producer = kafka.producer_for(producer_conf, self._on_delivery, transaction)
        self._partitions = {}
        self._metadata_timeout = metadata_timeout
        self._handler = production_error_handler
        self._lock = threading.Lock()
        self.failures = []
        self.failed = 0
        self.ignored_failures = 0
        self.sent = 0

    # --- metadata -------------------------------------------------------------------------
    def set_partition_counts(self, counts):
        self._partitions.update(counts)

    def partitions_for(self, topic):
        n = self._partitions.get(topic)
        if n is None:
            md = self.producer.list_topics(topic, timeout=self._metadata_timeout)
            tm = md.topics.get(topic)
            if tm is None or tm.error is not None or not tm.partitions:
                raise ProductionError(
                    f"cannot produce to topic {topic!r}: it does not exist or has no partitions"
                    + (f" ({tm.error})" if tm is not None and tm.error is not None else "")
                )
            n = self._partitions[topic] = len(tm.partitions)
        return n

    # --- produce --------------------------------------------------------------------------
    def send_batch(self, topic, keys, values, timestamps, headers, partitions):
        # One compiled loop per batch; a full local queue is served by poll() and the batch
        # goes on from the record that did not fit.
        columns = dict(keys=keys, values=values, partitions=partitions, timestamps=timestamps,
                       headers=headers)
        if self.transaction is None:
            self.sent += kafka.produce_batch(self.producer, topic, **columns)
        else:
            self.sent += self.transaction.produce_batch(topic, **columns)

    def poll(self):
        self.producer.poll(0)

    def _on_delivery(self, err, msg):
        if err is None:
            return
        with self._lock:
            self.failed += 1
            if len(self.failures) < _KEEP_FAILURES:
                self.failures.append((msg.topic(), msg.partition(), err))

    # --- commit support -------------------------------------------------------------------
    def flush(self, timeout):
        """Wait until every record is acknowledged (or failed); raise on a failure."""
        left = self.producer.flush(timeout)
        if left:
            raise ProductionError(
                f"{left} produced records were not acknowledged within {timeout:.0f} s"
            )
        self.check()

    def check(self):
        """Raise ProductionError for remembered failures the handler does not ignore."""
        with self._lock:
            failures, self.failures = self.failures, []
            failed, self.failed = self.failed, 0
        if not failed:
            return
        topic, partition, err = failures[0]
        error = ProductionError(
            f"{failed} record(s) failed delivery; first: topic {topic!r} partition {partition}: "
            f"{err.str() if hasattr(err, 'str') else err}"
        )
        error.topic, error.partition, error.kafka_error = topic, partition, err
        handler = self._handler
        if handler is not None and handler != "fail":
            go_on = True if handler == "skip" else bool(handler(error))
            if go_on:
                self.ignored_failures += failed
                log.warning("ignoring production failure: %s", error)
                return
        raise error

    def close(self, timeout=5.0):
        try:
            self.producer.flush(timeout)
        except Exception:  # noqa: BLE001 - best effort on the way out
            log.debug("producer flush on close failed", exc_info=True)
