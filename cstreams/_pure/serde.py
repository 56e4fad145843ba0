"""Serdes: conversion between Python objects and the bytes Kafka carries.

None always maps to None both ways (a null key, or a tombstone value).
"""

from __future__ import annotations

import struct

import orjson

from cstreams.errors import SerdeError

_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")
_FLOAT64 = struct.Struct(">d")


class Serde:
    """Base of all serdes. Subclasses override serialize and deserialize; the batch methods
    loop over them and may be overridden with faster versions."""

    name = "custom"

    def serialize(self, obj):
        raise NotImplementedError

    def deserialize(self, data):
        raise NotImplementedError

    def serialize_batch(self, objs):
        ser = self.serialize
        out = []
        append = out.append
        i = 0
        try:
            for i, o in enumerate(objs):  # noqa: B007 - i names the failing one
                append(ser(o))
        except SerdeError as e:
            raise SerdeError(str(e), i) from e.__cause__
        except Exception as e:
            raise SerdeError(f"{self.name} serde cannot serialize {_short(objs[i])}: {e}", i) from e
        return out

    def deserialize_batch(self, datas):
        de = self.deserialize
        out = []
        append = out.append
        i = 0
        try:
            for i, d in enumerate(datas):  # noqa: B007 - i names the failing one
                append(de(d))
        except SerdeError as e:
            raise SerdeError(str(e), i) from e.__cause__
        except Exception as e:
            raise SerdeError(
                f"{self.name} serde cannot deserialize {_short(datas[i])}: {e}", i) from e
        return out

    def __repr__(self):
        return f"<Serde {self.name}>"


def _short(obj):
    r = repr(obj)
    return r if len(r) <= 60 else r[:57] + "..."


class BytesSerde(Serde):
    name = "bytes"

    def serialize(self, obj):
        if obj is None or type(obj) is bytes:
            return obj
        if isinstance(obj, (bytearray, memoryview)):
            return bytes(obj)
        raise SerdeError(f"bytes serde expects bytes, got {type(obj).__name__}")

    def deserialize(self, data):
        return data

    def serialize_batch(self, objs):
        for i, o in enumerate(objs):
            if o is not None and type(o) is not bytes:
                return [self._at(i, o) for i, o in enumerate(objs)]
        return objs

    def _at(self, i, o):
        try:
            return self.serialize(o)
        except SerdeError as e:
            raise SerdeError(str(e), i) from None

    def deserialize_batch(self, datas):
        return datas


class StringSerde(Serde):
    name = "string"

    def serialize(self, obj):
        if obj is None:
            return None
        if type(obj) is not str:
            raise SerdeError(f"string serde expects str, got {type(obj).__name__}")
        return obj.encode("utf-8")

    def deserialize(self, data):
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SerdeError(f"string serde: invalid UTF-8 in {_short(data)}: {e}") from e


class _StructSerde(Serde):
    _struct = None

    def serialize(self, obj):
        if obj is None:
            return None
        try:
            return self._struct.pack(obj)
        except (struct.error, TypeError) as e:
            raise SerdeError(f"{self.name} serde cannot serialize {_short(obj)}: {e}") from e

    def deserialize(self, data):
        if data is None:
            return None
        if len(data) != self._struct.size:
            raise SerdeError(
                f"{self.name} serde expects {self._struct.size} bytes, got {len(data)}: "
                f"{_short(data)}"
            )
        return self._struct.unpack(data)[0]


class Int32Serde(_StructSerde):
    name = "int32"
    _struct = _INT32


class Int64Serde(_StructSerde):
    name = "int64"
    _struct = _INT64


class Float64Serde(_StructSerde):
    name = "float64"
    _struct = _FLOAT64


class JsonSerde(Serde):
    name = "json"

    def serialize(self, obj):
        if obj is None:
            return None
        try:
            return orjson.dumps(obj)
        except TypeError as e:
            raise SerdeError(f"json serde cannot serialize {_short(obj)}: {e}") from e

    def deserialize(self, data):
        if data is None:
            return None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise SerdeError(f"json serde: invalid JSON {_short(data)}: {e}") from e


class CallableSerde(Serde):
    """A serde made of two callables; either may be None when that direction is unused."""

    def __init__(self, serialize=None, deserialize=None, name="custom"):
        self._ser = serialize
        self._de = deserialize
        self.name = name

    def serialize(self, obj):
        if obj is None:
            return None
        if self._ser is None:
            raise SerdeError(f"serde {self.name!r} has no serializer")
        return self._ser(obj)

    def deserialize(self, data):
        if data is None:
            return None
        if self._de is None:
            raise SerdeError(f"serde {self.name!r} has no deserializer")
        return self._de(data)


BYTES = BytesSerde()
STRING = StringSerde()
INT32 = Int32Serde()
INT64 = Int64Serde()
FLOAT64 = Float64Serde()
JSON = JsonSerde()
