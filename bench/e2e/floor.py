"""Variant (a), the floor: what confluent-kafka's Python API costs for W1's traffic.

Consumes the input in batches, reads five fields of each Message, orjson.loads each value and
produces as many records with an explicit partition (the input's), then flushes. No state, no
commits: every other variant does at least this much work per record.
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
)
from confluent_kafka import Consumer, Producer


def main() -> None:
    args = parse_args(__doc__)
    n = args.records
    probe = SteadyStateProbe(n)
    consumer = Consumer(consumer_config(args))
    producer = Producer(producer_config(args))
    consumer.subscribe([args.input])
    out_topic = args.output
    produce = producer.produce
    poll = producer.poll
    loads = orjson.loads
    consume = consumer.consume
    produced = 0
    deadline = time.monotonic() + args.timeout
    while produced < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"floor: timed out with {produced}/{n} records produced")
        msgs = consume(num_messages=CONSUME_BATCH, timeout=0.5)
        if not msgs:
            continue
        if produced == 0:
            probe.first_output()
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
        produced += len(msgs)
        poll(0)
    probe.processed_all()
    remaining = producer.flush(60)
    if remaining:
        raise SystemExit(f"floor: {remaining} records not acknowledged after flush")
    probe.last_output()
    result = probe.report("floor")
    consumer.close()
    emit(result)


if __name__ == "__main__":
    main()
