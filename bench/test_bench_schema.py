"""Schema registry serdes (issue 17): decode and encode records/s for Avro, Protobuf and JSON
Schema, the batch forms (cs.serde.avro/protobuf/json_schema's deserialize_batch and
serialize_batch) against confluent-kafka's deserializer and serializer called per record on the
same records, in the same run. Registry: confluent-kafka's in-memory one (mock://), so no
network time is measured; both sides look their schema up once and cache it.

Every round's output is checked against the other side's (decoded objects equal, encoded bytes
identical), so neither side can skip work. extra_info: records, records_per_s, us_per_record and
cpu_us_per_record (median process CPU), workload and path for the table bench/conftest.py
prints (batch vs per_record).
"""

from __future__ import annotations

import pathlib
import sys
import time
import uuid

import pytest

pytest.importorskip("confluent_kafka.schema_registry")
pytest.importorskip("fastavro")
pytest.importorskip("google.protobuf")
pytest.importorskip("jsonschema")

from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

import cstreams as cs  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from examples.orders import confluent_sides, new_order  # noqa: E402

sys.path.remove(str(ROOT))

N = 20_000          # records per round
BATCH = 1_000       # records per batch, as a poll would hand a source
ROUNDS = 7
TOPIC = "orders"

def _records(fmt):
    return [new_order(fmt, f"order-{i}", f"user-{i % 1000}", i * 37) for i in range(N)]


def _sides(fmt):
    """(cstreams serde, confluent serializer, confluent deserializer) of one fresh registry."""
    return confluent_sides(fmt, f"mock://bench-{uuid.uuid4().hex}")


def _chunks(seq):
    return [seq[i:i + BATCH] for i in range(0, len(seq), BATCH)]


def _measure(benchmark, fn, workload, path):
    cpu = []
    out = []

    def one_round():
        c0 = time.process_time()
        out[:] = [fn()]
        cpu.append(time.process_time() - c0)

    one_round()  # warm-up: schema lookups, caches
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    stats = benchmark.stats.stats
    cpu_sorted = sorted(cpu[1:])
    benchmark.extra_info.update(
        workload=workload, path=path, implementation=cs.IMPLEMENTATION, records=N,
        batch_records=BATCH,
        records_per_s=round(N / stats.median),
        us_per_record=round(stats.median / N * 1e6, 3),
        cpu_us_per_record=round(cpu_sorted[len(cpu_sorted) // 2] / N * 1e6, 3),
    )
    return out[0]


FORMATS = ["avro", "protobuf", "json_schema"]


@pytest.mark.parametrize("path", ["batch", "per_record"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_decode(benchmark, fmt, path):
    benchmark.group = f"schema-decode-{fmt}"
    ours, ser, de = _sides(fmt)
    ours = ours.bind(TOPIC, False)
    records = _records(fmt)
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    wire = [ser(r, ctx) for r in records]
    batches = _chunks(wire)
    if path == "batch":
        def run():
            out = []
            for b in batches:
                out.extend(ours.deserialize_batch(b))
            return out
    else:
        def run():
            return [de(d, ctx) for d in wire]
    got = _measure(benchmark, run, f"sr-decode-{fmt}", path)
    assert got == records


@pytest.mark.parametrize("path", ["batch", "per_record"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_encode(benchmark, fmt, path):
    benchmark.group = f"schema-encode-{fmt}"
    ours, ser, _de = _sides(fmt)
    ours = ours.bind(TOPIC, False)
    records = _records(fmt)
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    batches = _chunks(records)
    if path == "batch":
        def run():
            out = []
            for b in batches:
                out.extend(ours.serialize_batch(b))
            return out
    else:
        def run():
            return [ser(r, ctx) for r in records]
    got = _measure(benchmark, run, f"sr-encode-{fmt}", path)
    expected = [ser(r, ctx) for r in records[:100]]
    assert got[:100] == expected and len(got) == N and all(g[0] == 0 for g in got)
