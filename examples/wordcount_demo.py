"""Word-count demo (``make demo``): a throwaway broker, sample text, the app, the counts.

Starts the embedded Tansu broker, creates the topics, produces a few hundred lines, runs the
word-count App until the output holds every expected count, prints the counts as a table and
the end-to-end records/s, then stops the app and the broker (by PID, also on error).
"""

from __future__ import annotations

import logging
import os
import random
import struct
import sys
import tempfile
import time

try:
    import cstreams as cs
except ImportError:  # run from a checkout that is not installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import cstreams as cs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wordcount import WORD, build_topology  # noqa: E402

from cstreams.devbroker import DevBroker  # noqa: E402

TEXT = """the quick brown fox jumps over the lazy dog
a stream is a sequence of records and a table is a snapshot of a stream
kafka keeps the log and the log keeps the order of every partition
batches travel from the consumer through the processors to the producer
every word is counted once per appearance and the counts only go up""".splitlines()


def sample_lines(n, seed=42):
    rnd = random.Random(seed)
    return [rnd.choice(TEXT) if rnd.random() < 0.5 else " ".join(
        rnd.choice(rnd.choice(TEXT).split()) for _ in range(rnd.randint(3, 10)))
        for _ in range(n)]


def main(n_lines=400, partitions=3):
    from confluent_kafka import Consumer, Producer

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lines = sample_lines(n_lines)
    expected = {}
    for line in lines:
        for w in WORD.findall(line.lower()):
            expected[w] = expected.get(w, 0) + 1
    n_words = sum(expected.values())

    broker = DevBroker()
    app = None
    try:
        broker.start(timeout=60)
        print(f"broker: Tansu at {broker.bootstrap_servers} (pid {broker.pid})")
        broker.create_topics([("words", partitions), ("words-by-word", partitions),
                              ("word-counts", partitions)])
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 20})
        for i, line in enumerate(lines):
            producer.produce("words", line.encode(), f"line-{i}".encode())
        producer.flush(30)
        del producer  # destroyed now, not after the broker is gone
        print(f"input: {n_lines} lines, {n_words} words, {len(expected)} distinct")

        fast = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                "max.poll.interval.ms": 10000}
        state_dir = tempfile.mkdtemp(prefix="cstreams-demo-")
        reader = Consumer({"bootstrap.servers": broker.bootstrap_servers,
                           "group.id": "demo-reader", "auto.offset.reset": "earliest", **fast})
        reader.subscribe(["word-counts"])
        t0 = time.monotonic()
        app = cs.App(build_topology(), application_id="wordcount-demo",
                     bootstrap_servers=broker.bootstrap_servers, state_dir=state_dir,
                     commit_interval_ms=500, config=fast)
        app.start()
        t_started = time.monotonic()
        counts, first_out, last_out = {}, None, None
        deadline = time.monotonic() + 120
        while counts != expected:
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out; counts so far differ from expected: "
                                 f"{sorted(set(expected.items()) ^ set(counts.items()))[:10]}")
            if app.error is not None:
                raise app.error
            for m in reader.consume(1000, 0.2):
                if m.error():
                    continue
                now = time.monotonic()
                first_out = first_out or now
                last_out = now
                counts[m.key().decode()] = struct.unpack(">q", m.value())[0]
        reader.close()
        metrics = app.metrics()
        app.close()
        app = None

        width = max(len(w) for w in counts)
        print(f"\n{'word':<{width}}  count")
        print(f"{'-' * width}  -----")
        for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"{w:<{width}}  {c:5d}")
        records = n_lines + n_words            # lines in, then words through the repartition
        span = max(last_out - first_out, 1e-3)
        print(f"\n{records} records processed ({metrics['records_in']} consumed by the app); "
              f"{metrics['records_out']} records produced, {metrics['commits']} commits")
        print(f"start(): {t_started - t0:.2f} s; first output after {first_out - t0:.2f} s "
              f"(group join); first to last output {span:.2f} s")
        print(f"end to end: {records / (last_out - t0):.0f} records/s including the group "
              f"join, {records / span:.0f} records/s while flowing (the test broker paces "
              f"fetches at ~1 batch per partition per 0.5 s: this is not a benchmark)")
        print("every count matches the input.")
        return 0
    finally:
        if app is not None:
            try:
                app.close()
            except Exception as e:  # noqa: BLE001
                print(f"app close: {e}", file=sys.stderr)
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
