"""Schema registry serdes end to end over the broker: records written by confluent-kafka's own
serializers go through an App and come out readable by its own deserializers, for each
format; bad records stop the app (nothing committed past them) or reach the dead-letter
topic. The registry is confluent-kafka's in-memory one (mock://), shared in this process."""

from __future__ import annotations

import json
import pathlib
import sys
import uuid

import pytest

pytest.importorskip("confluent_kafka.schema_registry")
pytest.importorskip("fastavro")
pytest.importorskip("google.protobuf")
pytest.importorskip("jsonschema")

from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402
from helpers import app_config, committed, consume_all, produce, wait_for  # noqa: E402

import cstreams as cs  # noqa: E402
from cstreams import handlers  # noqa: E402
from cstreams.schema_registry import SchemaRegistry  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from examples.orders import ORDER_AVRO as ORDER  # noqa: E402
from examples.orders import Order, confluent_sides, new_order  # noqa: E402

sys.path.remove(str(ROOT))

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

def doubled(fmt):
    if fmt == "protobuf":
        return lambda o: Order(id=o.id, user=o.user, amount=o.amount * 2)
    return lambda o: dict(o, amount=o["amount"] * 2)


def codec(fmt, url):
    """(cstreams serde, confluent serializer, confluent deserializer, make order)."""
    return (*confluent_sides(fmt, url),
            lambda i: new_order(fmt, f"o{i}", f"u{i % 5}", i))


def topology(fmt, serde, src, out):
    topo = cs.Topology()
    topo.add_source("in", topics=[src], key_serde=cs.serde.STRING, value_serde=serde)
    topo.add_processor("double", cs.processors.map_values(doubled(fmt)), parents=["in"])
    topo.add_sink("out", topic=out, parents=["double"], key_serde=cs.serde.STRING,
                  value_serde=serde)
    return topo


def start(broker, topo, tmp_path, app_id, handler="fail"):
    app = cs.App(topo, application_id=app_id, bootstrap_servers=broker.bootstrap_servers,
                 state_dir=str(tmp_path), commit_interval_ms=200, error_handler=handler,
                 config=app_config())
    return app.start()


@pytest.mark.parametrize("fmt", ["avro", "json_schema", "protobuf"])
def test_each_format_round_trips_through_the_app(broker, topic_factory, tmp_path, fmt):
    url = f"mock://{uuid.uuid4().hex}"
    src, out = topic_factory("orders", 2), topic_factory("doubled", 2)
    serde, ser, de, make = codec(fmt, url)
    n = 300
    ctx = SerializationContext(src, MessageField.VALUE)
    produce(broker.bootstrap_servers, src,
            [(f"o{i}".encode(), ser(make(i), ctx)) for i in range(n)])
    app = start(broker, topology(fmt, serde, src, out), tmp_path, f"sr-{src}")
    try:
        got = consume_all(broker.bootstrap_servers, out, until=lambda r: len(r) >= n)
    finally:
        app.close()
    octx = SerializationContext(out, MessageField.VALUE)
    decoded = {k.decode(): de(v, octx) for _p, _o, k, v, _h in got}
    assert len(got) == n
    assert decoded == {f"o{i}": doubled(fmt)(make(i)) for i in range(n)}
    client = SchemaRegistry.of(url).client
    assert {f"{src}-value", f"{out}-value"} <= set(client.get_subjects())


def bad_input(url, src):
    """12 records of a 1-partition topic; offset 5 has a wrong magic byte, 8 an unknown
    schema id, 10 a payload that does not match its schema."""
    ser = AvroSerializer(SchemaRegistry.of(url).client, json.dumps(ORDER))
    ctx = SerializationContext(src, MessageField.VALUE)
    values = [ser({"id": f"o{i}", "user": "u", "amount": i}, ctx) for i in range(12)]
    values[5] = b"\x07" + values[5][1:]
    values[8] = b"\x00\x00\x00\x03\x09" + values[8][5:]
    values[10] = values[10][:5] + b"\x08ab"
    return [(f"o{i}".encode(), v) for i, v in enumerate(values)]


def test_bad_record_stops_the_app_with_its_coordinates(broker, topic_factory, tmp_path):
    url = f"mock://{uuid.uuid4().hex}"
    src, out = topic_factory("orders", 1), topic_factory("doubled", 1)
    recs = bad_input(url, src)
    app_id = f"sr-fail-{src}"
    app = start(broker, topology("avro", cs.serde.avro(url, ORDER), src, out), tmp_path, app_id)
    try:
        produce(broker.bootstrap_servers, src, recs[:5], partition=0)
        wait_for(lambda: committed(broker.bootstrap_servers, app_id, src, 1)[0] == 5,
                 what="the good records committed")
        produce(broker.bootstrap_servers, src, recs[5:], partition=0)
        wait_for(lambda: not app.running, what="the app to stop on the bad record")
    finally:
        with pytest.raises(cs.DeserializationError) as info:
            app.close()
    e = info.value
    assert (e.topic, e.partition, e.offset, e.node) == (src, 0, 5, "in")
    assert "wrong magic byte" in str(e)
    assert committed(broker.bootstrap_servers, app_id, src, 1)[0] == 5


def test_bad_records_reach_the_dead_letter_topic(broker, topic_factory, tmp_path):
    url = f"mock://{uuid.uuid4().hex}"
    src, out, dlq = (topic_factory("orders", 1), topic_factory("doubled", 1),
                     topic_factory("dlq", 1))
    recs = bad_input(url, src)
    produce(broker.bootstrap_servers, src, recs, partition=0)
    app_id = f"sr-dlq-{src}"
    app = start(broker, topology("avro", cs.serde.avro(url, ORDER), src, out), tmp_path,
                app_id, handler=f"dead-letter:{dlq}")
    try:
        dead = consume_all(broker.bootstrap_servers, dlq, until=lambda r: len(r) >= 3)
        got = consume_all(broker.bootstrap_servers, out, until=lambda r: len(r) >= 9)
        wait_for(lambda: committed(broker.bootstrap_servers, app_id, src, 1)[0] == 12,
                 what="every offset committed")
    finally:
        app.close()
    de = AvroDeserializer(SchemaRegistry.of(url).client)
    assert [de(v, None)["amount"] for _p, _o, _k, v, _h in got] == [
        2 * i for i in range(12) if i not in (5, 8, 10)]
    assert [(k, v) for _p, _o, k, v, _h in dead] == [recs[5], recs[8], recs[10]]
    errors = [dict(h) for _p, _o, _k, _v, h in dead]
    assert [h[handlers.OFFSET_HEADER] for h in errors] == [b"5", b"8", b"10"]
    assert b"wrong magic byte" in errors[0][handlers.ERROR_HEADER]
    assert b"unknown schema id 777" in errors[1][handlers.ERROR_HEADER]
    assert b"does not match schema id" in errors[2][handlers.ERROR_HEADER]
