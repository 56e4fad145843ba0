"""Variant (a), the floor: what confluent-kafka's Python API costs for W1's traffic.

Consumes the input in batches, reads five fields of each Message, orjson.loads each value and
produces as many 8-byte records (W1's INT64 counts are 8 bytes) with an explicit partition (the
input's), then flushes. No state, no commits: every other variant does at least this much work
per record, and the floor does no work that cstreams does not:

  producer   the cstreams sink producer's settings: the shared PRODUCER_SETTINGS (librdkafka's
             default linger and batch sizes), delivery.report.only.error=true with an
             on_delivery callback that only errors reach (cstreams.runtime.config, collector)
  consumer   enable.auto.offset.store=false (cstreams' consumer owns it: no offset stored per
             consumed message) and the range assignor
  GC         frozen with the stream thread's gen0 threshold (cstreams.runtime.stream_thread)

``--before`` runs the floor as it was until 2026-12 (librdkafka's default producer and consumer
settings: a delivery report for every record, offsets stored per message; the JSON input value
produced back; the default garbage collector), so that one run shows what the change moved.
"""

from __future__ import annotations

import time

import orjson
from _common import (
    CONSUME_BATCH,
    SteadyStateProbe,
    consumer_config,
    emit,
    parse_args,
    producer_config,
    tune_gc,
)
from confluent_kafka import Consumer, Producer

VALUE = (0).to_bytes(8, "big")


def main() -> None:
    args = parse_args(__doc__)
    n = args.records
    probe = SteadyStateProbe(n, args.warmup)
    failures: list = []

    def on_error(err, msg) -> None:
        if err is not None:
            failures.append((msg.partition(), err))

    if args.before:
        consumer = Consumer(consumer_config(args))
        producer = Producer(producer_config(args))
    else:
        consumer = Consumer(consumer_config(args, **{
            "enable.auto.offset.store": False,
            "partition.assignment.strategy": "range",
        }))
        producer = Producer(producer_config(args, **{
            "delivery.report.only.error": True,
            "on_delivery": on_error,
        }))
        tune_gc()
    consumer.subscribe([args.input])
    out_topic = args.output
    produce = producer.produce
    poll = producer.poll
    loads = orjson.loads
    consume = consumer.consume
    out_value = VALUE
    produced = 0
    deadline = time.monotonic() + args.timeout
    while produced < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"floor: timed out with {produced}/{n} records produced")
        msgs = consume(num_messages=CONSUME_BATCH, timeout=0.5)
        if not msgs:
            continue
        probe.first_output(produced)
        # Two copies of one loop on purpose: the only difference is the value produced (the
        # input JSON as the floor did before, or W1's 8-byte count), and choosing it per record
        # inside one loop would add work to the baseline being measured.
        if args.before:
            for m in msgs:
                if m.error() is not None:
                    raise SystemExit(f"floor: consumer error {m.error()}")
                key = m.key()
                value = m.value()
                partition = m.partition()
                m.offset()
                m.timestamp()
                loads(value)
                try:
                    produce(out_topic, value, key, partition)
                except BufferError:
                    poll(0.05)
                    produce(out_topic, value, key, partition)
        else:
            for m in msgs:
                if m.error() is not None:
                    raise SystemExit(f"floor: consumer error {m.error()}")
                key = m.key()
                value = m.value()
                partition = m.partition()
                m.offset()
                m.timestamp()
                loads(value)
                try:
                    produce(out_topic, out_value, key, partition)
                except BufferError:
                    poll(0.05)
                    produce(out_topic, out_value, key, partition)
        produced += len(msgs)
        poll(0)
    probe.processed_all()
    remaining = producer.flush(60)
    if remaining or failures:
        raise SystemExit(f"floor: {remaining} records not acknowledged after flush, "
                         f"{len(failures)} failed deliveries {failures[:3]}")
    probe.last_output()
    result = probe.report("floor-before" if args.before else "floor")
    consumer.close()
    emit(result)


if __name__ == "__main__":
    main()
