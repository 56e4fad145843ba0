"""Serdes: conversion between Python objects and the bytes Kafka carries (compiled twin).

None always maps to None both ways (a null key, or a tombstone value). The built-ins convert
whole batches in C loops; whenever a value is not of the type the fast loop handles (or fails),
that value goes through the same code as the pure twin, so results and errors are identical.
"""

import struct

import orjson

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8String, PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

from cstreams.errors import SerdeError

from cstreams._core._capi cimport (
    PyFloat_FromDouble,
    PyLong_AsLongLongAndOverflow,
    PyLong_FromLongLong,
    _as_list,
)

_INT32_STRUCT = struct.Struct(">i")
_INT64_STRUCT = struct.Struct(">q")
_FLOAT64_STRUCT = struct.Struct(">d")

cdef object _dumps = orjson.dumps
cdef object _loads = orjson.loads
cdef object _JSONDecodeError = orjson.JSONDecodeError

cdef enum:
    _INT32 = 0
    _INT64 = 1
    _FLOAT64 = 2


def _short(obj):
    r = repr(obj)
    return r if len(r) <= 60 else r[:57] + "..."


cdef object _raise_serialize_at(Serde serde, object objs, Py_ssize_t i):
    """Raise, as the pure batch loop does, the error of serializing objs[i]."""
    try:
        serde.serialize(objs[i])
    except SerdeError as e:
        raise SerdeError(str(e), i) from e.__cause__
    except Exception as e:
        raise SerdeError(
            f"{getattr(serde, 'name')} serde cannot serialize {_short(objs[i])}: {e}", i
        ) from e
    raise AssertionError(f"value {i} failed to serialize in the batch loop only")


cdef object _raise_deserialize_at(Serde serde, object datas, Py_ssize_t i):
    try:
        serde.deserialize(datas[i])
    except SerdeError as e:
        raise SerdeError(str(e), i) from e.__cause__
    except Exception as e:
        raise SerdeError(
            f"{getattr(serde, 'name')} serde cannot deserialize {_short(datas[i])}: {e}", i
        ) from e
    raise AssertionError(f"value {i} failed to deserialize in the batch loop only")


cdef class Serde:
    """Base of all serdes. Subclasses override serialize and deserialize; the batch methods
    loop over them and may be overridden with faster versions."""

    def __cinit__(self, *args, **kwargs):
        self.name = "custom"

    cpdef object serialize(self, object obj):
        raise NotImplementedError

    cpdef object deserialize(self, object data):
        raise NotImplementedError

    cpdef object serialize_batch(self, object objs):
        cdef list out = []
        cdef Py_ssize_t i = 0
        try:
            for o in objs:
                out.append(self.serialize(o))
                i += 1
        except SerdeError as e:
            raise SerdeError(str(e), i) from e.__cause__
        except Exception as e:
            raise SerdeError(
                f"{getattr(self, 'name')} serde cannot serialize {_short(objs[i])}: {e}", i
            ) from e
        return out

    cpdef object deserialize_batch(self, object datas):
        cdef list out = []
        cdef Py_ssize_t i = 0
        try:
            for d in datas:
                out.append(self.deserialize(d))
                i += 1
        except SerdeError as e:
            raise SerdeError(str(e), i) from e.__cause__
        except Exception as e:
            raise SerdeError(
                f"{getattr(self, 'name')} serde cannot deserialize {_short(datas[i])}: {e}", i
            ) from e
        return out

    def __repr__(self):
        return f"<Serde {getattr(self, 'name')}>"


cdef class BytesSerde(Serde):
    def __cinit__(self, *args, **kwargs):
        self.name = "bytes"

    cpdef object serialize(self, object obj):
        if obj is None or type(obj) is bytes:
            return obj
        if isinstance(obj, (bytearray, memoryview)):
            return bytes(obj)
        raise SerdeError(f"bytes serde expects bytes, got {type(obj).__name__}")

    cpdef object deserialize(self, object data):
        return data

    cpdef object serialize_batch(self, object objs):
        for i, o in enumerate(objs):
            if o is not None and type(o) is not bytes:
                return [self._at(i, o) for i, o in enumerate(objs)]
        return objs

    def _at(self, i, o):
        try:
            return self.serialize(o)
        except SerdeError as e:
            raise SerdeError(str(e), i) from None

    cpdef object deserialize_batch(self, object datas):
        return datas


cdef class StringSerde(Serde):
    def __cinit__(self, *args, **kwargs):
        self.name = "string"

    cpdef object serialize(self, object obj):
        if obj is None:
            return None
        if type(obj) is not str:
            raise SerdeError(f"string serde expects str, got {type(obj).__name__}")
        return PyUnicode_AsUTF8String(obj)

    cpdef object deserialize(self, object data):
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SerdeError(f"string serde: invalid UTF-8 in {_short(data)}: {e}") from e

    cpdef object serialize_batch(self, object objs):
        if type(self) is not StringSerde:
            return Serde.serialize_batch(self, objs)
        cdef list src = _as_list(objs)
        cdef Py_ssize_t i = 0, n = PyList_GET_SIZE(src), bad = -1
        cdef list out = []
        cdef object o
        try:
            while i < n:
                o = <object>PyList_GET_ITEM(src, i)
                if o is None:
                    out.append(None)
                elif type(o) is str:
                    out.append(PyUnicode_AsUTF8String(o))
                else:
                    bad = i
                    break
                i += 1
        except Exception:
            bad = i
        if bad >= 0:
            _raise_serialize_at(self, objs, bad)
        return out

    cpdef object deserialize_batch(self, object datas):
        if type(self) is not StringSerde:
            return Serde.deserialize_batch(self, datas)
        cdef list src = _as_list(datas)
        cdef Py_ssize_t i = 0, n = PyList_GET_SIZE(src), bad = -1
        cdef list out = []
        cdef object d
        try:
            while i < n:
                d = <object>PyList_GET_ITEM(src, i)
                if d is None:
                    out.append(None)
                elif type(d) is bytes:
                    out.append(PyUnicode_DecodeUTF8(PyBytes_AS_STRING(d), PyBytes_GET_SIZE(d),
                                                    NULL))
                else:
                    out.append(self.deserialize(d))
                i += 1
        except Exception:
            bad = i
        if bad >= 0:
            _raise_deserialize_at(self, datas, bad)
        return out


cdef inline bytes _be32(uint32_t u):
    cdef unsigned char buf[4]
    buf[0] = <unsigned char>(u >> 24)
    buf[1] = <unsigned char>(u >> 16)
    buf[2] = <unsigned char>(u >> 8)
    buf[3] = <unsigned char>u
    return PyBytes_FromStringAndSize(<char*>buf, 4)


cdef inline bytes _be64(uint64_t u):
    cdef unsigned char buf[8]
    cdef int j
    for j in range(8):
        buf[j] = <unsigned char>(u >> (56 - 8 * j))
    return PyBytes_FromStringAndSize(<char*>buf, 8)


cdef inline uint32_t _read32(const unsigned char *p) noexcept:
    return ((<uint32_t>p[0]) << 24) | ((<uint32_t>p[1]) << 16) | ((<uint32_t>p[2]) << 8) | p[3]


cdef inline uint64_t _read64(const unsigned char *p) noexcept:
    return ((<uint64_t>_read32(p)) << 32) | _read32(p + 4)


cdef class _StructSerde(Serde):
    """int32, int64 and float64 in big-endian byte order, as Kafka's serializers."""

    cpdef object serialize(self, object obj):
        if obj is None:
            return None
        return self._pack(obj)

    cpdef object deserialize(self, object data):
        if data is None:
            return None
        return self._unpack(data)

    cdef object _pack(self, object obj):
        cdef int overflow = 0
        cdef long long v
        cdef double d
        cdef uint64_t u
        if self._kind == _FLOAT64:
            if type(obj) is float:
                d = PyFloat_AS_DOUBLE(obj)
                memcpy(&u, &d, 8)
                return _be64(u)
        elif type(obj) is int:
            v = PyLong_AsLongLongAndOverflow(obj, &overflow)
            if not overflow:
                if self._kind == _INT64:
                    return _be64(<uint64_t>v)
                if -2147483648 <= v <= 2147483647:
                    return _be32(<uint32_t>(<int32_t>v))
        # Anything else takes struct's path, for its exact results and error messages.
        try:
            return self._struct.pack(obj)
        except (struct.error, TypeError) as e:
            raise SerdeError(
                f"{getattr(self, 'name')} serde cannot serialize {_short(obj)}: {e}"
            ) from e

    cdef object _unpack(self, object data):
        cdef const unsigned char *p
        cdef uint64_t u
        cdef double d
        if type(data) is bytes and PyBytes_GET_SIZE(data) == self._size:
            p = <const unsigned char *>PyBytes_AS_STRING(data)
            if self._kind == _INT32:
                return <long>(<int32_t>_read32(p))
            u = _read64(p)
            if self._kind == _INT64:
                return PyLong_FromLongLong(<int64_t>u)
            memcpy(&d, &u, 8)
            return PyFloat_FromDouble(d)
        if len(data) != self._size:
            raise SerdeError(
                f"{getattr(self, 'name')} serde expects {self._size} bytes, got {len(data)}: "
                f"{_short(data)}"
            )
        return self._struct.unpack(data)[0]

    cpdef object serialize_batch(self, object objs):
        if not (type(self) is Int32Serde or type(self) is Int64Serde
                or type(self) is Float64Serde):
            return Serde.serialize_batch(self, objs)
        cdef list src = _as_list(objs)
        cdef Py_ssize_t i = 0, n = PyList_GET_SIZE(src), bad = -1
        cdef list out = []
        cdef object o
        try:
            while i < n:
                o = <object>PyList_GET_ITEM(src, i)
                out.append(None if o is None else self._pack(o))
                i += 1
        except Exception:
            bad = i
        if bad >= 0:
            _raise_serialize_at(self, objs, bad)
        return out

    cpdef object deserialize_batch(self, object datas):
        if not (type(self) is Int32Serde or type(self) is Int64Serde
                or type(self) is Float64Serde):
            return Serde.deserialize_batch(self, datas)
        cdef list src = _as_list(datas)
        cdef Py_ssize_t i = 0, n = PyList_GET_SIZE(src), bad = -1
        cdef list out = []
        cdef object d
        try:
            while i < n:
                d = <object>PyList_GET_ITEM(src, i)
                out.append(None if d is None else self._unpack(d))
                i += 1
        except Exception:
            bad = i
        if bad >= 0:
            _raise_deserialize_at(self, datas, bad)
        return out


cdef class Int32Serde(_StructSerde):
    def __cinit__(self, *args, **kwargs):
        self.name = "int32"
        self._kind = _INT32
        self._size = 4
        self._struct = _INT32_STRUCT


cdef class Int64Serde(_StructSerde):
    def __cinit__(self, *args, **kwargs):
        self.name = "int64"
        self._kind = _INT64
        self._size = 8
        self._struct = _INT64_STRUCT


cdef class Float64Serde(_StructSerde):
    def __cinit__(self, *args, **kwargs):
        self.name = "float64"
        self._kind = _FLOAT64
        self._size = 8
        self._struct = _FLOAT64_STRUCT


cdef class JsonSerde(Serde):
    def __cinit__(self, *args, **kwargs):
        self.name = "json"

    cpdef object serialize(self, object obj):
        if obj is None:
            return None
        try:
            return _dumps(obj)
        except TypeError as e:
            raise SerdeError(f"json serde cannot serialize {_short(obj)}: {e}") from e

    cpdef object deserialize(self, object data):
        if data is None:
            return None
        try:
            return _loads(data)
        except _JSONDecodeError as e:
            raise SerdeError(f"json serde: invalid JSON {_short(data)}: {e}") from e

    cpdef object serialize_batch(self, object objs):
        if type(self) is not JsonSerde:
            return Serde.serialize_batch(self, objs)
        cdef list src = _as_list(objs)
        cdef Py_ssize_t i = 0, n = PyList_GET_SIZE(src), bad = -1
        cdef list out = []
        cdef object o
        cdef object dumps = _dumps
        try:
            while i < n:
                o = <object>PyList_GET_ITEM(src, i)
                out.append(None if o is None else dumps(o))
                i += 1
        except Exception:
            bad = i
        if bad >= 0:
            _raise_serialize_at(self, objs, bad)
        return out

    cpdef object deserialize_batch(self, object datas):
        if type(self) is not JsonSerde:
            return Serde.deserialize_batch(self, datas)
        cdef list src = _as_list(datas)
        cdef Py_ssize_t i = 0, n = PyList_GET_SIZE(src), bad = -1
        cdef list out = []
        cdef object d
        cdef object loads = _loads
        try:
            while i < n:
                d = <object>PyList_GET_ITEM(src, i)
                out.append(None if d is None else loads(d))
                i += 1
        except Exception:
            bad = i
        if bad >= 0:
            _raise_deserialize_at(self, datas, bad)
        return out


cdef class CallableSerde(Serde):
    """A serde made of two callables; either may be None when that direction is unused."""

    def __init__(self, serialize=None, deserialize=None, name="custom"):
        self._ser = serialize
        self._de = deserialize
        self.name = name

    cpdef object serialize(self, object obj):
        if obj is None:
            return None
        if self._ser is None:
            raise SerdeError(f"serde {self.name!r} has no serializer")
        return self._ser(obj)

    cpdef object deserialize(self, object data):
        if data is None:
            return None
        if self._de is None:
            raise SerdeError(f"serde {self.name!r} has no deserializer")
        return self._de(data)

    cpdef object serialize_batch(self, object objs):
        if type(self) is not CallableSerde or self._ser is None:
            return Serde.serialize_batch(self, objs)
        cdef list src = _as_list(objs)
        cdef Py_ssize_t i = 0, n = PyList_GET_SIZE(src)
        cdef list out = []
        cdef object o
        cdef object ser = self._ser
        try:
            while i < n:
                o = <object>PyList_GET_ITEM(src, i)
                out.append(None if o is None else ser(o))
                i += 1
        except SerdeError as e:
            raise SerdeError(str(e), i) from e.__cause__
        except Exception as e:
            raise SerdeError(
                f"{getattr(self, 'name')} serde cannot serialize {_short(objs[i])}: {e}", i
            ) from e
        return out

    cpdef object deserialize_batch(self, object datas):
        if type(self) is not CallableSerde or self._de is None:
            return Serde.deserialize_batch(self, datas)
        cdef list src = _as_list(datas)
        cdef Py_ssize_t i = 0, n = PyList_GET_SIZE(src)
        cdef list out = []
        cdef object d
        cdef object de = self._de
        try:
            while i < n:
                d = <object>PyList_GET_ITEM(src, i)
                out.append(None if d is None else de(d))
                i += 1
        except SerdeError as e:
            raise SerdeError(str(e), i) from e.__cause__
        except Exception as e:
            raise SerdeError(
                f"{getattr(self, 'name')} serde cannot deserialize {_short(datas[i])}: {e}", i
            ) from e
        return out


BYTES = BytesSerde()
STRING = StringSerde()
INT32 = Int32Serde()
INT64 = Int64Serde()
FLOAT64 = Float64Serde()
JSON = JsonSerde()
