"""W1 worker on cstreams' native data path: the floor's traffic through cstreams._core.native.

The same work as bench/e2e/floor.py, with the client's Python API replaced by the package's
native data path (issue 18), driven as cstreams' stream thread drives it: a confluent-kafka
Consumer keeps the group membership, and its rebalance callback routes the assigned
partitions into a NativeConsumerQueue before assign(); each poll is one
rd_kafka_consume_batch_queue() of up to 10,000 messages, turned in C into cstreams
RecordBatches (one per partition: keys and values as bytes, timestamps, offsets, headers when
present), and the consumer itself is then served with no wait (callbacks only: it must hand
out no record). Each batch's values are decoded by cstreams' JSON serde (``deserialize_batch``:
orjson.loads per value in cstreams' compiled loop, as the floor's orjson.loads per Message and
cstreams' source node); then one NativeProducer.produce_columns() per batch: an 8-byte value
per input record (W1's INT64 counts are 8 bytes, constant as the floor's) with the record's
key and its explicit partition, and a producer poll(0) after each poll that returned
records, as the floor. Same client settings as the floor (error-only delivery reports: only
failures reach the Python callback; no per-message offset store, range assignor, the shared
producer queue bound), same GC tuning, same probe. A consumer error, a message the consumer
hands out itself, a produce error, a failed delivery or a record left unacknowledged after
the flush ends the worker with a non-zero exit.

``--no-decode`` leaves the JSON decoding out: the data path alone (consume + produce), the
quantity issue 18's gate is about; ``floor_io.py`` is the floor without its orjson.loads, the
matching baseline.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from _common import (  # noqa: E402
    CONSUME_BATCH,
    SteadyStateProbe,
    consumer_config,
    emit,
    parse_args,
    producer_config,
    tune_gc,
)

VALUE = (0).to_bytes(8, "big")


def main() -> None:
    decode = "--no-decode" not in sys.argv
    if not decode:
        sys.argv.remove("--no-decode")
    args = parse_args(__doc__)
    name = "native" if decode else "native-io"
    # This worker measures the native path: without it, fail naming why rather than fall back.
    os.environ["CSTREAMS_NATIVE_KAFKA"] = "1"
    from confluent_kafka import Consumer

    import cstreams as cs
    from cstreams import _impl

    native = _impl.native_kafka()
    n = args.records
    probe = SteadyStateProbe(n, args.warmup)
    failures: list = []

    def on_error(err, report) -> None:
        if err is not None:
            failures.append((report.partition(), err))

    consumer = Consumer(consumer_config(args, **{
        "enable.auto.offset.store": False,
        "partition.assignment.strategy": "range",
    }))
    queue = native.NativeConsumerQueue(consumer, cs.RecordBatch, CONSUME_BATCH)

    def on_assign(c, parts) -> None:
        queue.route([(tp.topic, tp.partition) for tp in parts])
        c.assign(parts)

    def on_revoke(c, parts) -> None:
        queue.forget([(tp.topic, tp.partition) for tp in parts])

    producer = native.NativeProducer(producer_config(args, **{
        "delivery.report.only.error": True,
        "on_delivery": on_error,
    }))
    tune_gc()
    consumer.subscribe([args.input], on_assign=on_assign, on_revoke=on_revoke,
                       on_lost=on_revoke)
    out_topic = args.output
    consume = queue.consume_batches
    serve = consumer.consume
    produce = producer.produce_columns
    poll = producer.poll
    deserialize_batch = cs.serde.JSON.deserialize_batch
    produced = 0
    deadline = time.monotonic() + args.timeout
    while produced < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: timed out with {produced}/{n} records produced")
        batches, errors = consume(CONSUME_BATCH, 0.5)
        stray = serve(CONSUME_BATCH, 0)
        if errors or stray:
            raise SystemExit(f"{name}: consumer errors {errors[:3]}, {len(stray)} messages "
                             f"handed out by the consumer instead of the native queue "
                             f"{[m.error() for m in stray[:3]]}")
        if not batches:
            continue
        probe.first_output(produced)
        for b in batches:
            if decode:
                deserialize_batch(b.values)
            keys = b.keys
            produce(out_topic, keys, [VALUE] * len(keys), b.partition)
            produced += len(keys)
        poll(0)
    probe.processed_all()
    remaining = producer.flush(60)
    if remaining or failures:
        raise SystemExit(f"{name}: {remaining} records not acknowledged after flush, "
                         f"{len(failures)} failed deliveries {failures[:3]}")
    probe.last_output()
    result = probe.report(name, queue_full_waits=producer.queue_full_waits)
    queue.close()
    consumer.close()
    emit(result)


if __name__ == "__main__":
    main()
