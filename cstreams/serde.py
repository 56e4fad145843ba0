"""Serdes: BYTES, STRING, INT32, INT64 (big-endian, as Kafka's), FLOAT64, JSON, custom, and the
schema registry serdes avro, protobuf and json_schema (optional extras)."""

from __future__ import annotations

from cstreams._impl import serde as _serde

Serde = _serde.Serde
BYTES = _serde.BYTES
STRING = _serde.STRING
INT32 = _serde.INT32
INT64 = _serde.INT64
FLOAT64 = _serde.FLOAT64
JSON = _serde.JSON


def custom(serialize=None, deserialize=None, name="custom"):
    """A serde from two callables (object -> bytes, bytes -> object)."""
    return _serde.CallableSerde(serialize, deserialize, name)


def avro(registry, schema=None, **options):
    """Avro in the schema registry wire format (extra ``cstreams[avro]``).

    ``registry``: a URL (``mock://scope`` for confluent-kafka's in-memory registry), a
    confluent-kafka registry configuration dict (url, basic.auth.user.info, ssl.*, ...) or a
    client. ``schema``: the writer schema (JSON string or dict) for encoding and the reader
    schema for decoding when given. Options: auto_register (True), use_latest (False),
    subject_name_strategy ("topic", "record", "topic_record" or a callable), normalize,
    to_dict, from_dict, retries (3) and retry_backoff_ms (100) for an unreachable registry."""
    from cstreams.schema_registry import AvroSerde

    return AvroSerde(registry, schema=schema, **options)


def protobuf(registry, message_type, **options):
    """Protobuf in the schema registry wire format (extra ``cstreams[protobuf]``);
    ``message_type`` is the generated message class. Options as for avro()."""
    from cstreams.schema_registry import ProtobufSerde

    return ProtobufSerde(registry, message_type=message_type, **options)


def json_schema(registry, schema=None, **options):
    """JSON Schema in the schema registry wire format (extra ``cstreams[jsonschema]``);
    ``schema`` validates and registers on encoding, validates on decoding when given (else the
    writer's schema does). Options as for avro()."""
    from cstreams.schema_registry import JsonSchemaSerde

    return JsonSchemaSerde(registry, schema=schema, **options)


_BY_NAME = {"bytes": BYTES, "string": STRING, "str": STRING, "int32": INT32, "int64": INT64,
            "float64": FLOAT64, "json": JSON}


def resolve(serde, where, topic=None, is_key=False):
    """Accept a Serde, a built-in's name, or a (serialize, deserialize) pair. A serde that
    needs its topic (the schema registry serdes: subject names) is bound to ``topic``'s key
    or value."""
    from cstreams.errors import TopologyError

    if serde is None:
        return BYTES
    if isinstance(serde, Serde):
        bind = getattr(serde, "bind", None)
        if bind is not None and topic is not None:
            return bind(topic, is_key)
        return serde
    if isinstance(serde, str):
        try:
            return _BY_NAME[serde.lower()]
        except KeyError:
            raise TopologyError(
                f"{where}: unknown serde name {serde!r}; known: {sorted(_BY_NAME)}"
            ) from None
    if isinstance(serde, tuple) and len(serde) == 2:
        return custom(serde[0], serde[1])
    raise TopologyError(
        f"{where}: a serde must be a cstreams.serde.Serde, a name or a (serialize, deserialize) "
        f"pair, not {type(serde).__name__}"
    )


__all__ = ["Serde", "BYTES", "STRING", "INT32", "INT64", "FLOAT64", "JSON", "custom", "avro",
           "protobuf", "json_schema"]
