"""W1 worker on the issue-18 spike: the floor's traffic through the compiled native data path.

The same work as bench/e2e/floor.py, with the client's Python API replaced by the spike
(rdkafka_native): one rd_kafka_consume_batch_queue() per poll of up to 10,000 messages, turned
in C into cstreams RecordBatches (one per partition: keys and values as bytes, timestamps,
offsets, headers when present); each batch's values decoded by cstreams' JSON serde
(``deserialize_batch``: orjson.loads per value in cstreams' compiled loop, as the floor's
orjson.loads per Message and cstreams' source node); then one produce_columns() per batch: an
8-byte value per input record (W1's INT64 counts are 8 bytes, constant as the floor's) with
the record's key and its explicit partition, delivery reports counted in C. Same client
settings as the floor (error-only delivery reports, no per-message offset store, range
assignor, the shared producer queue bound), same GC tuning, same probe.

``--no-decode`` leaves the JSON decoding out: the data path alone (consume + produce), the
quantity issue 18's gate is about; ``floor_io.py`` is the floor without its orjson.loads, the
matching baseline.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
sys.path.insert(0, str(HERE / "build"))

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
    import confluent_kafka
    import rdkafka_native

    import cstreams as cs

    if rdkafka_native.version()[1] != confluent_kafka.libversion()[1]:
        raise SystemExit(f"two librdkafka versions in one process: {rdkafka_native.version()} "
                         f"and confluent-kafka's {confluent_kafka.libversion()}")
    n = args.records
    probe = SteadyStateProbe(n, args.warmup)
    consumer = rdkafka_native.NativeConsumer(consumer_config(args, **{
        "enable.auto.offset.store": False,
        "partition.assignment.strategy": "range",
    }), [args.input], cs.RecordBatch, CONSUME_BATCH)
    producer = rdkafka_native.NativeProducer(producer_config(args, **{
        "delivery.report.only.error": True,
    }))
    tune_gc()
    out_topic = args.output
    consume = consumer.consume_batches
    produce = producer.produce_columns
    deserialize_batch = cs.serde.JSON.deserialize_batch
    produced = 0
    deadline = time.monotonic() + args.timeout
    while produced < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"native: timed out with {produced}/{n} records produced")
        batches = consume(CONSUME_BATCH, 0.5)
        if not batches:
            continue
        probe.first_output(produced)
        for b in batches:
            if decode:
                deserialize_batch(b.values)
            keys = b.keys
            produce(out_topic, keys, [VALUE] * len(keys), b.partition)
            produced += len(keys)
    probe.processed_all()
    remaining = producer.flush(60)
    producer.check()
    if remaining:
        raise SystemExit(f"native: {remaining} records not acknowledged after flush")
    probe.last_output()
    result = probe.report("native" if decode else "native-io",
                          queue_full_waits=producer.queue_full_waits)
    consumer.close()
    emit(result)


if __name__ == "__main__":
    main()
