"""Schema registry serdes against confluent-kafka's own serializers and its in-memory registry:
byte-identical encoding, equal decoding, schema evolution and every kind of bad input."""

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
from confluent_kafka.schema_registry.json_schema import (  # noqa: E402
    JSONDeserializer,
    JSONSerializer,
)
from confluent_kafka.schema_registry.protobuf import (  # noqa: E402
    ProtobufDeserializer,
    ProtobufSerializer,
)
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

import cstreams as cs  # noqa: E402
from cstreams.devbroker import free_port  # noqa: E402
from cstreams.errors import SerdeError  # noqa: E402
from cstreams.schema_registry import RegistryUnavailableError, SchemaRegistry  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from examples.order_pb2 import Order, order_class  # noqa: E402
from examples.orders import ORDER_AVRO as ORDER_V1  # noqa: E402
from examples.orders import ORDER_JSON  # noqa: E402

sys.path.remove(str(ROOT))

ORDER_V2 = {
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": ORDER_V1["fields"] + [{"name": "note", "type": "string", "default": ""}],
}


def orders(n):
    return [{"id": f"o{i}", "user": f"u{i % 7}", "amount": i * 3 - 50} for i in range(n)]


@pytest.fixture
def url():
    return f"mock://{uuid.uuid4().hex}"


def client(url):
    """The client cstreams' serdes of ``url`` share (a mock registry lives in its client)."""
    return SchemaRegistry.of(url).client


def ctx(topic):
    return SerializationContext(topic, MessageField.VALUE)


def test_avro_batch_bytes_equal_confluent_serializer_and_decode_equally(url):
    serde = cs.serde.avro(url, ORDER_V1).bind("orders", False)
    values = orders(50)
    values[7] = None
    ours = serde.serialize_batch(values)
    theirs_ser = AvroSerializer(client(url), json.dumps(ORDER_V1))
    assert ours == [None if v is None else theirs_ser(v, ctx("orders")) for v in values]
    assert ours[0][0] == 0 and int.from_bytes(ours[0][1:5], "big") >= 1
    theirs_de = AvroDeserializer(client(url))
    assert serde.deserialize_batch(ours) == [
        None if b is None else theirs_de(b, ctx("orders")) for b in ours]
    assert serde.deserialize_batch(ours) == values
    assert serde.deserialize(ours[3]) == values[3]
    assert serde.serialize(values[3]) == ours[3]


def test_json_schema_batch_bytes_equal_confluent_serializer_and_decode_equally(url):
    serde = cs.serde.json_schema(url, ORDER_JSON).bind("orders", False)
    values = orders(30)
    values[0] = None
    ours = serde.serialize_batch(values)
    theirs = JSONSerializer(json.dumps(ORDER_JSON), client(url))
    assert ours == [None if v is None else theirs(v, ctx("orders")) for v in values]
    de = JSONDeserializer(json.dumps(ORDER_JSON))
    assert serde.deserialize_batch(ours) == [
        None if b is None else de(b, ctx("orders")) for b in ours]
    assert serde.deserialize_batch(ours) == values


def test_protobuf_batch_bytes_equal_confluent_serializer_and_decode_equally(url):
    serde = cs.serde.protobuf(url, Order).bind("orders", False)
    values = [Order(id=f"o{i}", user=f"u{i % 3}", amount=i * 1000) for i in range(40)]
    values[5] = None
    ours = serde.serialize_batch(values)
    theirs = ProtobufSerializer(Order, client(url), {"use.deprecated.format": False})
    assert ours == [None if v is None else theirs(v, ctx("orders")) for v in values]
    de = ProtobufDeserializer(Order, {"use.deprecated.format": False})
    assert serde.deserialize_batch(ours) == [
        None if b is None else de(b, ctx("orders")) for b in ours]
    assert serde.deserialize_batch(ours) == values


def test_key_serde_registers_under_the_key_subject(url):
    serde = cs.serde.avro(url, {"type": "string"}).bind("orders", True)
    serde.serialize_batch(["a", "b"])
    assert client(url).get_subjects() == ["orders-key"]
    assert cs.serde.avro(url).bind("orders", True).deserialize_batch(
        serde.serialize_batch(["a", None])) == ["a", None]


def test_record_name_strategy_and_use_latest(url):
    writer = cs.serde.avro(url, ORDER_V1, subject_name_strategy="record").bind("t1", False)
    data = writer.serialize_batch(orders(2))
    assert client(url).get_subjects() == ["shop.Order"]
    latest = cs.serde.avro(url, auto_register=False, use_latest=True,
                           subject_name_strategy="record", schema=ORDER_V1).bind("t2", False)
    assert latest.serialize_batch(orders(2)) == data


def test_avro_reader_schema_reads_records_written_with_the_older_schema(url):
    old = cs.serde.avro(url, ORDER_V1).bind("orders", False)
    data = old.serialize_batch(orders(5))
    new = cs.serde.avro(url, ORDER_V2).bind("orders", False)
    assert new.deserialize_batch(data) == [dict(o, note="") for o in orders(5)]
    # The newer writer registers version 2 of the subject; both ids decode.
    data2 = new.serialize_batch([dict(o, note="x") for o in orders(2)])
    assert data2[0][1:5] != data[0][1:5]
    assert new.deserialize_batch(data[:1] + data2[:1]) == [
        dict(orders(1)[0], note=""), dict(orders(1)[0], note="x")]


def test_protobuf_newer_message_reads_records_written_with_the_older_one(url):
    old = cs.serde.protobuf(url, Order).bind("orders", False)
    data = old.serialize_batch([Order(id="o1", user="u", amount=5)])
    OrderV2 = order_class(note=True)
    new = cs.serde.protobuf(url, OrderV2).bind("orders", False)
    got = new.deserialize_batch(data)
    assert got == [OrderV2(id="o1", user="u", amount=5, note="")]


@pytest.mark.parametrize("fmt", ["avro", "json_schema", "protobuf"])
def test_bad_input_names_the_record_in_the_batch(url, fmt):
    if fmt == "avro":
        serde = cs.serde.avro(url, ORDER_V1).bind("orders", False)
        good = serde.serialize_batch(orders(2))
    elif fmt == "json_schema":
        serde = cs.serde.json_schema(url, ORDER_JSON).bind("orders", False)
        good = serde.serialize_batch(orders(2))
    else:
        serde = cs.serde.protobuf(url, Order).bind("orders", False)
        good = serde.serialize_batch([Order(id="a"), Order(id="b")])
    header = good[0][:5]
    unknown_id = b"\x00" + (4242).to_bytes(4, "big") + good[0][5:]
    with pytest.raises(SerdeError, match="wrong magic byte") as e:
        serde.deserialize_batch([good[0], b"\x01" + good[1][1:]])
    assert e.value.index == 1
    with pytest.raises(SerdeError, match="wrong magic byte"):
        serde.deserialize_batch([b"abc"])
    with pytest.raises(SerdeError, match="unknown schema id 4242") as e:
        serde.deserialize_batch([good[0], good[1], unknown_id])
    assert e.value.index == 2
    mismatch = {"avro": header + b"\x08ab",                 # string shorter than its length
                "json_schema": header + b'{"id": 1}',        # valid JSON, not the schema
                "protobuf": header + b"\x00\x0a\x05ab"}[fmt]  # truncated field
    with pytest.raises(SerdeError, match="does not match") as e:
        serde.deserialize_batch([good[0], mismatch])
    assert e.value.index == 1
    # Single records raise the same errors, without a batch index.
    with pytest.raises(SerdeError, match="wrong magic byte") as e:
        serde.deserialize(b"\x05" * 8)
    assert e.value.index == -1


def test_serializing_a_record_that_does_not_match_the_schema_names_it(url):
    serde = cs.serde.avro(url, ORDER_V1).bind("orders", False)
    with pytest.raises(SerdeError) as e:
        serde.serialize_batch(orders(3) + [{"id": "x"}])
    assert e.value.index == 3
    js = cs.serde.json_schema(url, ORDER_JSON).bind("orders-js", False)
    with pytest.raises(SerdeError, match="does not match its schema") as e:
        js.serialize_batch(orders(2) + [{"id": 5, "user": "u", "amount": 1}])
    assert e.value.index == 2
    pb = cs.serde.protobuf(url, Order).bind("orders-pb", False)
    with pytest.raises(SerdeError, match="expects shop.Order") as e:
        pb.serialize_batch([Order(id="a"), {"id": "b"}])
    assert e.value.index == 1


def test_unbound_serde_cannot_serialize_but_decodes(url):
    bound = cs.serde.avro(url, ORDER_V1).bind("orders", False)
    data = bound.serialize_batch(orders(2))
    unbound = cs.serde.avro(url)
    with pytest.raises(SerdeError, match="not bound to a topic"):
        unbound.serialize_batch(orders(1))
    assert unbound.deserialize_batch(data) == orders(2)


def test_unreachable_registry_is_retried_then_named_with_the_subject():
    url = f"http://127.0.0.1:{free_port()}"
    serde = cs.serde.avro(url, ORDER_V1, retries=2, retry_backoff_ms=10).bind("orders", False)
    with pytest.raises(RegistryUnavailableError) as e:
        serde.serialize_batch(orders(2))
    msg = str(e.value)
    assert url in msg and "'orders-value'" in msg and "after 3 attempts" in msg
    with pytest.raises(RegistryUnavailableError, match="schema id 7") as e:
        serde.deserialize_batch([b"\x00\x00\x00\x00\x07\x02"])
    assert url in str(e.value) and "topic 'orders' value" in str(e.value)


def test_topology_binds_registry_serdes_to_their_topics(url):
    serde = cs.serde.avro(url, ORDER_V1)
    topo = cs.Topology()
    topo.add_source("in", topics=["a"], key_serde=cs.serde.avro(url, {"type": "string"}),
                    value_serde=serde)
    topo.add_sink("out", topic="b", parents=["in"], value_serde=serde)
    topo.add_store(cs.stores.in_memory("s", value_serde=serde))
    src, sink = topo.node_spec("in"), topo.node_spec("out")
    assert (src.value_serde.topic, src.value_serde.is_key) == ("a", False)
    assert (src.key_serde.topic, src.key_serde.is_key) == ("a", True)
    assert (sink.value_serde.topic, sink.value_serde.is_key) == ("b", False)
    assert serde.topic is None       # the user's serde itself stays unbound


def test_registries_of_one_url_share_a_client(url):
    assert SchemaRegistry.of(url) is SchemaRegistry.of(url)
    assert cs.serde.avro(url).registry is cs.serde.json_schema(url).registry


def test_missing_extra_is_an_import_error_naming_it(url, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastavro", None)
    with pytest.raises(ImportError, match=r"cstreams\[avro\]"):
        cs.serde.avro(url, ORDER_V1)
    monkeypatch.setitem(sys.modules, "google.protobuf", None)
    with pytest.raises(ImportError, match=r"cstreams\[protobuf\]"):
        cs.serde.protobuf(url, Order)
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    with pytest.raises(ImportError, match=r"cstreams\[jsonschema\]"):
        cs.serde.json_schema(url, ORDER_JSON)


def test_json_schema_reader_schema_reads_records_written_with_the_older_schema(url):
    old = cs.serde.json_schema(url, ORDER_JSON).bind("orders", False)
    data = old.serialize_batch(orders(3))
    v2 = dict(ORDER_JSON, properties=dict(ORDER_JSON["properties"], note={"type": "string"}))
    new = cs.serde.json_schema(url, v2).bind("orders", False)
    assert new.deserialize_batch(data) == orders(3)
    strict = dict(v2, required=ORDER_JSON["required"] + ["note"])
    with pytest.raises(SerdeError, match="does not match its schema"):
        cs.serde.json_schema(url, strict).bind("orders", False).deserialize_batch(data)
