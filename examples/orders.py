"""The ``shop.Order`` record in the three Schema Registry formats, shared by the examples, the
tests and the benchmark of cstreams' registry serdes: its Avro and JSON schemas, its Protobuf
class (examples/order_pb2.py), and confluent-kafka's own serializer and deserializer for it, to
compare cstreams' serdes with."""

from __future__ import annotations

import json

from examples.order_pb2 import Order

FORMATS = ("avro", "json_schema", "protobuf")

ORDER_AVRO = {
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [{"name": "id", "type": "string"}, {"name": "user", "type": "string"},
               {"name": "amount", "type": "long"}],
}
ORDER_JSON = {
    "title": "Order", "type": "object",
    "properties": {"id": {"type": "string"}, "user": {"type": "string"},
                   "amount": {"type": "integer"}},
    "required": ["id", "user", "amount"],
}


def new_order(fmt, id, user, amount):
    """One order as the format's serde takes it: a dict, or an ``Order`` message."""
    if fmt == "protobuf":
        return Order(id=id, user=user, amount=amount)
    return {"id": id, "user": user, "amount": amount}


def order_serde(fmt, url, **options):
    """cstreams' serde of orders in ``fmt`` with the registry at ``url``."""
    import cstreams as cs

    if fmt == "avro":
        return cs.serde.avro(url, ORDER_AVRO, **options)
    if fmt == "json_schema":
        return cs.serde.json_schema(url, ORDER_JSON, **options)
    return cs.serde.protobuf(url, Order, **options)


def confluent_sides(fmt, url):
    """(cstreams serde, confluent-kafka serializer, confluent-kafka deserializer) of orders in
    ``fmt``, sharing the registry client of ``url`` (a mock:// registry lives in its client)."""
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
    from confluent_kafka.schema_registry.protobuf import (
        ProtobufDeserializer,
        ProtobufSerializer,
    )

    from cstreams.schema_registry import SchemaRegistry

    client = SchemaRegistry.of(url).client
    if fmt == "avro":
        return (order_serde(fmt, url), AvroSerializer(client, json.dumps(ORDER_AVRO)),
                AvroDeserializer(client))
    if fmt == "json_schema":
        return (order_serde(fmt, url), JSONSerializer(json.dumps(ORDER_JSON), client),
                JSONDeserializer(json.dumps(ORDER_JSON)))
    conf = {"use.deprecated.format": False}
    return (order_serde(fmt, url), ProtobufSerializer(Order, client, conf),
            ProtobufDeserializer(Order, conf))
