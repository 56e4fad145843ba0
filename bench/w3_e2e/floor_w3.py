"""W3's client floor: what confluent-kafka's Python API costs for W3's traffic.

Consumes the customers and the orders topics (one subscription, as the join's tasks read
both), reads five fields of each Message and orjson.loads each value, and produces every
order's value unchanged to the output with an explicit partition (the order's). No state,
no join, no commits: the cstreams join does at least this much work per record.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

import orjson  # noqa: E402
from _common import (  # noqa: E402
    CONSUME_BATCH,
    SteadyStateProbe,
    consumer_config,
    emit,
    parse_args,
    producer_config,
)
from confluent_kafka import Consumer, Producer  # noqa: E402


def main() -> None:
    args = parse_args(__doc__)
    customers_topic, orders_topic = args.input.split(",")
    n = args.records
    probe = SteadyStateProbe(n)
    consumer = Consumer(consumer_config(args))
    producer = Producer(producer_config(args))
    consumer.subscribe([customers_topic, orders_topic])
    out_topic = args.output
    produce, poll, loads, consume = producer.produce, producer.poll, orjson.loads, \
        consumer.consume
    produced = 0
    deadline = time.monotonic() + args.timeout
    while produced < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"floor: timed out with {produced}/{n} orders produced")
        msgs = consume(num_messages=CONSUME_BATCH, timeout=0.5)
        if not msgs:
            continue
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
            if m.topic() == orders_topic:
                try:
                    produce(out_topic, value, key, partition)
                except BufferError:
                    poll(0.05)
                    produce(out_topic, value, key, partition)
                produced += 1
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
