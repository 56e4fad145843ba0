"""Variant (b): a careful hand-written confluent-kafka + rocksdict batch loop doing W1's work.

Per record: orjson.loads the value, count per key (dict write-back cache in front of a RocksDB
store on disk), produce (key, count) to the input's partition. Per commit interval: the dirty
keys go to RocksDB as one WriteBatch and to a compacted changelog topic, producer.flush(), then
the consumer offsets are committed synchronously: the at-least-once order cstreams uses.
"""

from __future__ import annotations

import os
import struct
import time

import orjson
from _common import (
    CONSUME_BATCH,
    SteadyStateProbe,
    consumer_config,
    emit,
    parse_args,
    producer_config,
)
from confluent_kafka import Consumer, Producer, TopicPartition
from rocksdict import Options, Rdict, WriteBatch


def open_store(path: str) -> Rdict:
    os.makedirs(path, exist_ok=True)
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    return Rdict(path, opts)


def main() -> None:
    args = parse_args(__doc__)
    n = args.records
    probe = SteadyStateProbe(n, args.warmup)
    db = open_store(os.path.join(args.state_dir, "counts"))
    consumer = Consumer(consumer_config(args))
    producer = Producer(producer_config(args))
    consumer.subscribe([args.input])
    out_topic = args.output
    changelog = f"{args.group}-counts-changelog"
    in_topic = args.input

    pack = struct.Struct(">q").pack
    unpack = struct.Struct(">q").unpack
    loads = orjson.loads
    produce = producer.produce
    poll = producer.poll
    consume = consumer.consume
    db_get = db.get

    cache: dict[bytes, int] = {}     # key -> count, every key seen (10,000 for W1)
    dirty: dict[bytes, int] = {}     # key -> partition, written since the last flush
    next_offsets: dict[int, int] = {}
    interval = args.commit_interval_ms / 1000.0
    next_commit = time.monotonic() + interval
    committed = 0
    consumed = 0
    deadline = time.monotonic() + args.timeout

    def commit() -> int:
        if dirty:
            wb = WriteBatch(raw_mode=True)
            for key, partition in dirty.items():
                raw = pack(cache[key])
                wb.put(key, raw)
                try:
                    produce(changelog, raw, key, partition)
                except BufferError:
                    poll(0.05)
                    produce(changelog, raw, key, partition)
            db.write(wb)
            dirty.clear()
        remaining = producer.flush(60)
        if remaining:
            raise SystemExit(f"handwritten: {remaining} records not acknowledged after flush")
        if next_offsets:
            consumer.commit(
                offsets=[TopicPartition(in_topic, p, o) for p, o in next_offsets.items()],
                asynchronous=False,
            )
        return consumed

    while committed < n:
        now = time.monotonic()
        if now > deadline:
            raise SystemExit(f"handwritten: timed out with {committed}/{n} records committed")
        msgs = consume(num_messages=CONSUME_BATCH, timeout=0.1)
        if msgs:
            probe.first_output(consumed)
            for m in msgs:
                if m.error() is not None:
                    raise SystemExit(f"handwritten: consumer error {m.error()}")
                key = m.key()
                partition = m.partition()
                loads(m.value())
                count = cache.get(key)
                if count is None:
                    raw = db_get(key)
                    count = 0 if raw is None else unpack(raw)[0]
                count += 1
                cache[key] = count
                dirty[key] = partition
                try:
                    produce(out_topic, pack(count), key, partition)
                except BufferError:
                    poll(0.05)
                    produce(out_topic, pack(count), key, partition)
                next_offsets[partition] = m.offset() + 1
            consumed += len(msgs)
            poll(0)
            if consumed >= n:
                probe.processed_all()
        if time.monotonic() >= next_commit:
            committed = commit()
            next_commit = time.monotonic() + interval
    probe.last_output()
    result = probe.report("handwritten", commit_interval_ms=args.commit_interval_ms)
    consumer.close()
    db.close()
    emit(result)


if __name__ == "__main__":
    main()
