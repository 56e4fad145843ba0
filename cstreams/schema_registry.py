"""Schema Registry serdes: Avro, Protobuf and JSON Schema in Confluent's wire format.

The wire format: magic byte 0, the schema id as a 4-byte big-endian integer, the payload
(Protobuf puts its message indexes before the payload). Built over confluent-kafka's
schema_registry client and serializers:

- encoding a batch asks confluent-kafka's serializer for its first record only (it registers
  or looks up the schema and caches the id, with every option it has); the other records get
  the same prefix and their payloads written in one loop with the schema of that id, so the
  bytes are those the serializer would write record by record;
- decoding a batch reads each record's schema id, looks every distinct id up once (cached for
  good: an id never changes its schema) and decodes in one loop (Avro with fastavro).

Errors are SerdeErrors naming the batch index; the source node turns them into errors naming
topic, partition, offset and node for the error handler. A registry that cannot be reached is
retried, then reported naming the registry and the subject (or schema id).
"""

from __future__ import annotations

import io
import json
import struct
import threading

from cstreams._impl import serde as _serde_impl
from cstreams.errors import SerdeError

_MAGIC = 0
_HEADER = struct.Struct(">bI")
_EXTRA_OF = {"avro": "avro", "protobuf": "protobuf", "json_schema": "jsonschema"}


def _require(fmt):
    """Import confluent-kafka's serializers for ``fmt``, or an ImportError naming the extra."""
    extra = _EXTRA_OF[fmt]
    try:
        import confluent_kafka.schema_registry as sr  # noqa: F401
        if fmt == "avro":
            import fastavro  # noqa: F401
            from confluent_kafka.schema_registry import avro as mod
        elif fmt == "protobuf":
            import google.protobuf  # noqa: F401
            from confluent_kafka.schema_registry import protobuf as mod
        else:
            import jsonschema  # noqa: F401
            from confluent_kafka.schema_registry import json_schema as mod
    except ImportError as e:
        raise ImportError(
            f"cstreams.serde.{fmt} needs the optional dependencies of the {extra!r} extra: "
            f"pip install 'cstreams[{extra}]' (missing: {e.name or e})"
        ) from e
    return mod


class RegistryUnavailableError(SerdeError):
    """The schema registry did not answer (after retries); names the registry and subject."""


class SchemaRegistry:
    """A schema registry client: confluent-kafka's SchemaRegistryClient, which caches schemas
    by id and registered subjects and retries a registry it cannot reach (``retries`` times,
    backing off from ``retry_backoff_ms``; its own ``max.retries`` and ``retries.wait.ms``
    settings win when given); what still fails is reported naming the registry.

    ``conf`` is a URL or confluent-kafka's client configuration (``url``,
    ``basic.auth.user.info``, ``ssl.*``, ...); ``mock://<scope>`` is its in-memory registry.
    Serdes given the same URL and configuration share one client and its caches.
    """

    _shared: dict = {}
    _shared_lock = threading.Lock()

    def __init__(self, conf, *, retries=3, retry_backoff_ms=100):
        from confluent_kafka.schema_registry import SchemaRegistryClient

        conf = {"url": conf} if isinstance(conf, str) else dict(conf)
        if not conf.get("url"):
            raise ValueError("a schema registry needs a url")
        conf.setdefault("max.retries", int(retries))
        conf.setdefault("retries.wait.ms", int(retry_backoff_ms))
        self.url = conf["url"]
        self.attempts = int(conf["max.retries"]) + 1
        self.client = SchemaRegistryClient.new_client(conf)

    @classmethod
    def of(cls, registry, retries=3, retry_backoff_ms=100):
        """A SchemaRegistry from itself, a URL or a configuration dict; one per setting."""
        if isinstance(registry, SchemaRegistry):
            return registry
        if not isinstance(registry, (str, dict)):
            raise TypeError(f"a schema registry is a URL or a configuration dict, not "
                            f"{type(registry).__name__}")
        conf = {"url": registry} if isinstance(registry, str) else dict(registry)
        key = (tuple(sorted((k, repr(v)) for k, v in conf.items())), retries, retry_backoff_ms)
        with cls._shared_lock:
            reg = cls._shared.get(key)
            if reg is None:
                reg = cls._shared[key] = cls(conf, retries=retries,
                                             retry_backoff_ms=retry_backoff_ms)
        return reg

    def call(self, what, fn, *args):
        """``fn(*args)``. A registry that could not be reached (a transport error, or an HTTP
        5xx/408/429 answer, after the client's retries) becomes a RegistryUnavailableError
        naming the registry and ``what`` (a string, or a callable that gives one); any other
        answer (unknown id, invalid schema) is raised as it is."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return fn(*args)
        except SchemaRegistryError as e:
            status = getattr(e, "http_status_code", 0) or 0
            if not (status >= 500 or status in (408, 429)):
                raise
            last = e
        except Exception as e:
            if not _is_transport_error(e):
                raise
            last = e
        if callable(what):
            what = what()
        raise RegistryUnavailableError(
            f"schema registry {self.url} unreachable ({what}) after {self.attempts} "
            f"attempts: {type(last).__name__}: {last}"
        ) from last

    def schema(self, schema_id, what):
        return self.call(f"{what}, schema id {schema_id}", self.client.get_schema, schema_id)

    def __repr__(self):
        return f"<SchemaRegistry {self.url}>"


def _is_transport_error(e):
    """The HTTP client's 'could not connect / timed out' (httpx's TransportError family)."""
    if isinstance(e, OSError):
        return True
    return any(cls.__name__ == "TransportError" and (cls.__module__ or "").startswith("httpx")
               for cls in type(e).__mro__)


_STRATEGIES = ("topic", "record", "topic_record")


def _strategy(name):
    from confluent_kafka import schema_registry as sr

    if callable(name):
        return name
    try:
        return {"topic": sr.topic_subject_name_strategy,
                "record": sr.record_subject_name_strategy,
                "topic_record": sr.topic_record_subject_name_strategy}[name]
    except KeyError:
        raise ValueError(
            f"subject_name_strategy must be one of {_STRATEGIES} or a callable, not {name!r}"
        ) from None


def _short(obj):
    r = repr(obj)
    return r if len(r) <= 60 else r[:57] + "..."


class RegistrySerde(_serde_impl.Serde):  # type: ignore[misc,valid-type]
    """Base of the schema registry serdes: one format, one registry, bound to a topic and to
    the key or value field (the subject of TopicNameStrategy is ``<topic>-key`` or
    ``<topic>-value``). The topology binds a serde to its source, sink or store."""

    name = "registry"

    def __init__(self, registry, *, auto_register=True, use_latest=False,
                 subject_name_strategy="topic", normalize=False, retries=3,
                 retry_backoff_ms=100, topic=None, is_key=False, **options):
        self._module = _require(self.name)
        self.registry = SchemaRegistry.of(registry, retries, retry_backoff_ms)
        self.auto_register = bool(auto_register)
        self.use_latest = bool(use_latest)
        self.subject_name_strategy = subject_name_strategy
        self._strategy = _strategy(subject_name_strategy)
        self.normalize = bool(normalize)
        self.retries, self.retry_backoff_ms = retries, retry_backoff_ms
        self.topic = topic
        self.is_key = bool(is_key)
        self.options = options
        self._serializer = None
        self._ctx = None
        self._writers = {}     # schema id -> record -> payload bytes
        self._readers = {}     # schema id -> wire bytes -> object
        self._lock = threading.Lock()
        self._setup()

    def _setup(self):
        pass

    def bind(self, topic, is_key):
        """This serde for ``topic``'s key or value (a new serde unless already so bound)."""
        if topic == self.topic and bool(is_key) == self.is_key:
            return self
        return type(self)(
            self.registry, auto_register=self.auto_register, use_latest=self.use_latest,
            subject_name_strategy=self.subject_name_strategy, normalize=self.normalize,
            retries=self.retries, retry_backoff_ms=self.retry_backoff_ms, topic=topic,
            is_key=is_key, **self.options)

    # -- confluent-kafka's serializer for the first record of a batch --------------------

    def _serializer_conf(self):
        return {"auto.register.schemas": self.auto_register,
                "use.latest.version": self.use_latest,
                "normalize.schemas": self.normalize,
                "subject.name.strategy": self._strategy}

    def _context(self):
        if self._ctx is None:
            from confluent_kafka.serialization import MessageField, SerializationContext

            self._ctx = SerializationContext(self.topic, MessageField.KEY if self.is_key
                                             else MessageField.VALUE)
        return self._ctx

    def subject(self, record_name=None):
        """The subject this serde registers under (or looks up), when the strategy can tell."""
        try:
            return self._strategy(self._context(), record_name)
        except Exception:  # a record strategy without a record name
            return None

    def _first(self, obj, i):
        if self.topic is None:
            raise SerdeError(
                f"{self.name} serde is not bound to a topic: use it as the serde of a source, "
                f"sink or store, or call bind(topic, is_key)", i)
        if self._serializer is None:
            with self._lock:
                if self._serializer is None:
                    self._serializer = self._make_serializer()
        try:
            data = self.registry.call(
                lambda: f"serializing for subject {self.subject_for(obj)!r}",
                self._serializer, obj, self._context())
        except RegistryUnavailableError as e:
            raise RegistryUnavailableError(str(e), i) from e.__cause__
        except Exception as e:
            raise SerdeError(
                f"{self.name} serde cannot serialize {_short(obj)} for subject "
                f"{self.subject_for(obj)!r} at registry {self.registry.url}: "
                f"{type(e).__name__}: {e}", i) from e
        return data

    def subject_for(self, obj):
        return self.subject(self._record_name(obj))

    def _record_name(self, obj):
        return None

    def serialize(self, obj):
        try:
            return self.serialize_batch([obj])[0]
        except SerdeError as e:
            raise type(e)(str(e)) from e.__cause__

    def deserialize(self, data):
        try:
            return self.deserialize_batch([data])[0]
        except SerdeError as e:
            raise type(e)(str(e)) from e.__cause__

    def serialize_batch(self, objs):
        n = len(objs)
        out = [None] * n
        first = 0
        while first < n and objs[first] is None:
            first += 1
        if first == n:
            return out
        data = self._first(objs[first], first)
        out[first] = data
        if first + 1 == n:
            return out
        schema_id = _HEADER.unpack_from(data)[1]
        prefix = data[:self._prefix_length(data)]
        write = self._writer(schema_id, first)
        i = first + 1
        try:
            for i in range(first + 1, n):
                o = objs[i]
                if o is not None:
                    out[i] = prefix + write(o)
        except SerdeError as e:
            raise type(e)(str(e), i) from e.__cause__
        except Exception as e:
            raise SerdeError(
                f"{self.name} serde cannot serialize {_short(objs[i])} with schema id "
                f"{schema_id}: {type(e).__name__}: {e}", i) from e
        return out

    def _prefix_length(self, data):
        return 5

    def _writer(self, schema_id, i):
        w = self._writers.get(schema_id)
        if w is None:
            schema = self._schema(schema_id, i)
            w = self._writers[schema_id] = self._make_writer(schema, schema_id)
        return w

    def _schema(self, schema_id, i):
        try:
            return self.registry.schema(schema_id, f"{self.name} schema of {self._where()}")
        except RegistryUnavailableError as e:
            raise RegistryUnavailableError(str(e), i) from e.__cause__
        except Exception as e:
            raise SerdeError(
                f"{self.name} serde: unknown schema id {schema_id} at registry "
                f"{self.registry.url} ({type(e).__name__}: {e})", i) from e

    def _where(self):
        if self.topic is None:
            return "an unbound serde"
        return f"topic {self.topic!r} {'key' if self.is_key else 'value'}"

    # -- decoding ----------------------------------------------------------------------------

    def deserialize_batch(self, datas):
        readers = self._readers
        unpack = _HEADER.unpack_from
        out = []
        append = out.append
        i = -1
        schema_id = -1
        try:
            for i, d in enumerate(datas):  # noqa: B007 - i names the failing one
                if d is None:
                    append(None)
                    continue
                if len(d) < 5 or d[0] != _MAGIC:
                    raise SerdeError(
                        f"{self.name} serde: wrong magic byte: expected a record in the "
                        f"schema registry wire format (byte 0, then a 4-byte schema id), got "
                        f"{_short(bytes(d[:16]))}", i)
                schema_id = unpack(d)[1]
                read = readers.get(schema_id)
                if read is None:
                    read = self._reader(schema_id, i)
                append(read(d))
        except SerdeError as e:
            if e.index >= 0:
                raise
            raise type(e)(str(e), i) from e.__cause__
        except Exception as e:
            raise SerdeError(
                f"{self.name} serde: payload does not match schema id {schema_id}: "
                f"{type(e).__name__}: {e}", i) from e
        return out

    def _reader(self, schema_id, i):
        schema = self._schema(schema_id, i)
        if schema.schema_type != self.schema_type:
            raise SerdeError(
                f"{self.name} serde: schema id {schema_id} is a {schema.schema_type} schema, "
                f"not {self.schema_type}", i)
        with self._lock:
            read = self._readers.get(schema_id)
            if read is None:
                read = self._readers[schema_id] = self._make_reader(schema, schema_id)
        return read

    def __repr__(self):
        return f"<Serde {self.name} {self.registry.url} {self._where()}>"


class AvroSerde(RegistrySerde):
    """Avro: ``schema`` (a JSON string or dict) is the writer schema for encoding and, when
    given, the reader schema for decoding (records written with an older compatible schema are
    resolved into it). ``to_dict(obj, ctx)`` / ``from_dict(dict, ctx)`` convert objects."""

    name = "avro"
    schema_type = "AVRO"

    def _setup(self):
        import fastavro

        self._fastavro = fastavro
        schema = self.options.get("schema")
        if isinstance(schema, dict):
            schema = json.dumps(schema)
            self.options["schema"] = schema
        self._schema_str = schema
        self._reader_schema = None
        if schema is not None:
            self._reader_schema = fastavro.parse_schema(json.loads(schema))
        self._to_dict = self.options.get("to_dict")
        self._from_dict = self.options.get("from_dict")

    def _make_serializer(self):
        if self._schema_str is None and not self.use_latest:
            raise SerdeError("avro serde needs a schema to serialize (or use_latest=True)")
        return self._module.AvroSerializer(self.registry.client, self._schema_str,
                                           to_dict=self._to_dict, conf=self._serializer_conf())

    def _record_name(self, obj):
        s = self._reader_schema
        return s.get("name") if isinstance(s, dict) else None

    def _make_writer(self, schema, schema_id):
        parsed = self._fastavro.parse_schema(json.loads(schema.schema_str))
        write = self._fastavro.schemaless_writer
        to_dict, ctx = self._to_dict, self._context()
        BytesIO = io.BytesIO

        def writer(obj):
            if to_dict is not None:
                obj = to_dict(obj, ctx)
            fo = BytesIO()
            write(fo, parsed, obj)
            return fo.getvalue()

        return writer

    def _make_reader(self, schema, schema_id):
        writer_schema = self._fastavro.parse_schema(json.loads(schema.schema_str))
        read = self._fastavro.schemaless_reader
        reader_schema = self._reader_schema
        BytesIO = io.BytesIO
        from_dict = self._from_dict
        ctx = self._context() if from_dict is not None else None

        if reader_schema is None:
            def reader(d):
                fo = BytesIO(d)
                fo.seek(5)
                return read(fo, writer_schema, None)
        else:
            def reader(d):
                fo = BytesIO(d)
                fo.seek(5)
                return read(fo, writer_schema, reader_schema)
        if from_dict is None:
            return reader
        return lambda d: from_dict(reader(d), ctx)


class JsonSchemaSerde(RegistrySerde):
    """JSON Schema: ``schema`` (a JSON string or dict) validates and registers on encoding; on
    decoding each record is validated against its writer's schema (or ``schema`` if given)."""

    name = "json_schema"
    schema_type = "JSON"

    def _setup(self):
        schema = self.options.get("schema")
        if isinstance(schema, dict):
            schema = json.dumps(schema)
            self.options["schema"] = schema
        self._schema_str = schema
        self._to_dict = self.options.get("to_dict")
        self._from_dict = self.options.get("from_dict")
        self._validator = self._title = None
        if schema is not None:
            parsed = json.loads(schema)
            self._validator = _validator(parsed)
            self._title = parsed.get("title") if isinstance(parsed, dict) else None

    def _make_serializer(self):
        if self._schema_str is None and not self.use_latest:
            raise SerdeError("json_schema serde needs a schema to serialize (or use_latest)")
        return self._module.JSONSerializer(self._schema_str, self.registry.client,
                                           to_dict=self._to_dict,
                                           conf=self._serializer_conf())

    def _record_name(self, obj):
        return self._title

    def _make_writer(self, schema, schema_id):
        import orjson

        validator = _validator(json.loads(schema.schema_str))
        dumps = orjson.dumps     # compact, as confluent-kafka's JSON serializer writes
        to_dict, ctx = self._to_dict, self._context()

        def writer(obj):
            if to_dict is not None:
                obj = to_dict(obj, ctx)
            _validate(validator, obj)
            return dumps(obj)

        return writer

    def _make_reader(self, schema, schema_id):
        import orjson

        loads = orjson.loads
        validator = self._validator or _validator(json.loads(schema.schema_str))
        from_dict = self._from_dict
        ctx = self._context() if from_dict is not None else None

        def reader(d):
            obj = loads(memoryview(d)[5:])
            _validate(validator, obj)
            return obj if from_dict is None else from_dict(obj, ctx)

        return reader


def _validator(schema):
    """A compiled validator: jsonschema-rs when installed (several times faster), else the
    jsonschema package confluent-kafka's JSON serializers use. Both say is_valid/iter_errors."""
    try:
        import jsonschema_rs
    except ImportError:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema)
        return cls(schema)
    return jsonschema_rs.validator_for(schema)


def _validate(validator, obj):
    if not validator.is_valid(obj):
        err = next(iter(validator.iter_errors(obj)))
        raise SerdeError(f"json_schema serde: {_short(obj)} does not match its schema: "
                         f"{getattr(err, 'message', err)}")


class ProtobufSerde(RegistrySerde):
    """Protobuf: ``message_type`` is the generated message class, encoded and decoded as such
    (records written with an older compatible version of the message decode into it)."""

    name = "protobuf"
    schema_type = "PROTOBUF"

    def _setup(self):
        self._type = self.options.get("message_type")
        if self._type is None or not hasattr(self._type, "DESCRIPTOR"):
            raise TypeError("protobuf serde needs message_type, a generated message class")

    def _make_serializer(self):
        conf = self._serializer_conf()
        conf["use.deprecated.format"] = False
        return self._module.ProtobufSerializer(self._type, self.registry.client, conf=conf)

    def _record_name(self, obj):
        return self._type.DESCRIPTOR.full_name

    def _prefix_length(self, data):
        return _indexes_end(data)

    def _make_writer(self, schema, schema_id):
        cls = self._type

        def writer(obj):
            if type(obj) is not cls:
                raise SerdeError(f"protobuf serde expects {cls.DESCRIPTOR.full_name}, got "
                                 f"{type(obj).__name__}")
            return obj.SerializeToString()

        return writer

    def _make_reader(self, schema, schema_id):
        parse = self._type.FromString

        def reader(d):
            pos = 6 if d[5] == 0 else _indexes_end(d)
            return parse(d[pos:])

        return reader


def _indexes_end(d):
    """Where the payload starts after the message indexes (zigzag varints: a count, then the
    indexes; a lone 0 stands for [0])."""
    pos = 5
    count, pos = _zigzag(d, pos)
    for _ in range(count):
        _, pos = _zigzag(d, pos)
    return pos


def _zigzag(d, pos):
    shift = result = 0
    while True:
        if pos >= len(d):
            raise SerdeError("protobuf serde: truncated message indexes")
        b = d[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), pos
