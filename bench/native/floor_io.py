"""The floor without its JSON decoding: confluent-kafka's Python API carrying W1's traffic.

bench/e2e/floor.py minus the ``orjson.loads`` of each value: consume in batches of 10,000,
read the five fields of each Message, produce an 8-byte value with the record's key and its
explicit partition, flush. Same client settings, GC tuning and probe as the floor. It is the
baseline that does exactly the data-path work ``w1_native.py --no-decode`` does, so that the
ratio of the two is the data path's alone (issue 18's gate), with no JSON decoding on one side
only.
"""

from __future__ import annotations

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
from confluent_kafka import Consumer, Producer  # noqa: E402

VALUE = (0).to_bytes(8, "big")


def main() -> None:
    args = parse_args(__doc__)
    n = args.records
    probe = SteadyStateProbe(n, args.warmup)
    failures: list = []

    def on_error(err, msg) -> None:
        if err is not None:
            failures.append((msg.partition(), err))

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
    consume = consumer.consume
    out_value = VALUE
    produced = 0
    deadline = time.monotonic() + args.timeout
    while produced < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"floor-io: timed out with {produced}/{n} records produced")
        msgs = consume(num_messages=CONSUME_BATCH, timeout=0.5)
        if not msgs:
            continue
        probe.first_output(produced)
        for m in msgs:
            if m.error() is not None:
                raise SystemExit(f"floor-io: consumer error {m.error()}")
            key = m.key()
            m.value()
            partition = m.partition()
            m.offset()
            m.timestamp()
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
        raise SystemExit(f"floor-io: {remaining} records not acknowledged after flush, "
                         f"{len(failures)} failed deliveries {failures[:3]}")
    probe.last_output()
    result = probe.report("floor-io")
    consumer.close()
    emit(result)


if __name__ == "__main__":
    main()
