"""Global stores: every partition of a topic, held in full by every instance.

At start-up, before the instance joins its group, each global store is wiped and restored
from every partition of its topic up to partition EOF (Kafka Streams' global state
restoration); while the app runs, the stream thread polls the same assign()-only consumer
between its polls and applies the new records, one write batch per store per poll. The
global topic is never committed: a restart restores it in full again. Tasks read a global
store through the task's store lookup (``Task.stores`` falls back to the global stores).
"""

from __future__ import annotations

import logging
import shutil
import time

from cstreams import kafka, names
from cstreams.errors import DeserializationError, MissingTopicsError, SerdeError, StoreError
from cstreams.runtime.topics import partition_count

log = logging.getLogger("cstreams.global")


class GlobalStateUpdater:
    def __init__(self, topology, application_id, state_dir, consumer_conf, *,
                 max_records=10_000):
        self.topology = topology
        self.application_id = application_id
        self.state_dir = state_dir
        self._conf = consumer_conf
        self.max_records = max_records
        self.stores = {}            # store name -> KeyValueStore
        self._by_topic = {}         # topic -> KeyValueStore
        self._consumer = None
        self.records = 0

    @property
    def active(self):
        return bool(self._by_topic)

    def start(self, md, timeout=300.0):
        """Open every global store on empty state and restore it to the end of its topic."""
        specs = self.topology.global_stores
        if not specs:
            return
        missing = sorted(t for _s, t in specs.values() if partition_count(md, t) is None)
        if missing:
            raise MissingTopicsError(f"global store topic(s) missing on the broker: "
                                     f"{', '.join(missing)}; create them before starting the "
                                     f"app")
        tps = []
        for name, (spec, topic) in specs.items():
            directory = None
            if self.state_dir is not None:
                directory = names.inside(self.state_dir, self.application_id, "global", name,
                                         what=f"global store {name!r}", error=StoreError)
                shutil.rmtree(directory, ignore_errors=True)
            store = spec.build(directory)
            self.stores[name] = store
            self._by_topic[topic] = store
            tps += [kafka.TopicPartition(topic, p, kafka.OFFSET_BEGINNING)
                    for p in range(partition_count(md, topic))]
        self._consumer = kafka.make_consumer(self._conf)
        self._consumer.assign(tps)
        remaining = {(tp.topic, tp.partition) for tp in tps}
        started = time.monotonic()
        deadline = started + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise MissingTopicsError(
                    f"global stores: partitions {sorted(remaining)} did not reach their end "
                    f"within {timeout:g} s")
            msgs = self._consumer.consume(self.max_records, 0.5)
            for m in msgs:
                err = m.error()
                if err is not None and err.code() == kafka.PARTITION_EOF:
                    remaining.discard((m.topic(), m.partition()))
            self._apply(msgs)
        for store in self.stores.values():
            store.flush()
        log.info("global stores %s restored: %d records in %.1f s",
                 ", ".join(sorted(self.stores)), self.records, time.monotonic() - started)

    def poll(self):
        """Apply what arrived on the global topics since the last call (never blocks)."""
        msgs = self._consumer.consume(self.max_records, 0)
        if msgs:
            self._apply(msgs)
        return len(msgs)

    def _apply(self, msgs):
        per_store = {}
        for m in msgs:
            if m.error() is not None:
                if m.error().code() != kafka.PARTITION_EOF:
                    log.warning("global consumer: %s", m.error().str())
                continue
            if m.key() is None:
                continue
            per_store.setdefault(m.topic(), []).append(m)
        for topic, records in per_store.items():
            store = self._by_topic[topic]
            values = []
            de = store.value_serde.deserialize
            for m in records:
                raw = m.value()
                try:
                    values.append(None if raw is None else de(raw))
                except (SerdeError, ValueError, TypeError) as e:
                    raise DeserializationError(
                        f"global store {store.name!r}: cannot deserialize the value at "
                        f"{topic}-{m.partition()} offset {m.offset()}: {e}", topic=topic,
                        partition=m.partition(), offset=m.offset(),
                        node=store.name) from e
            store.put_batch_by_bytes([m.key() for m in records], values)
            store.flush()
            self.records += len(records)

    def close(self):
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:  # noqa: BLE001
                log.debug("global consumer close failed", exc_info=True)
            self._consumer = None
        for store in self.stores.values():
            try:
                store.close()
            except Exception:  # noqa: BLE001
                log.debug("global store close failed", exc_info=True)
        self.stores = {}
        self._by_topic = {}
