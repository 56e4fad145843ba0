"""Parity: the same assertions on the pure-Python twins and on the compiled core.

Each test takes ``impl``, a namespace holding one implementation's modules (all of
cstreams._impl.MODULES). The compiled parameter is skipped when the extensions are
not built, unless CSTREAMS_REQUIRE_EXTENSIONS=1 is set: then a missing module fails the test.
"""

from __future__ import annotations

import importlib
import math
import os
import types

import pytest

from cstreams._impl import MODULES, is_compiled
from cstreams._pure.dispatch import TaskContext
from cstreams.errors import CStreamsError, ProcessingError, SerdeError, StoreError
from cstreams.processor import Processor
from cstreams.stores.memory import InMemoryBackend


def _flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _modules(kind):
    package = "cstreams._pure" if kind == "pure" else "cstreams._core"
    try:
        mods = {m: importlib.import_module(f"{package}.{m}") for m in MODULES}
        if kind == "compiled":
            for m, mod in mods.items():
                if not is_compiled(mod):
                    raise ImportError(f"{package}.{m} is not an extension module")
    except ImportError as e:
        if kind == "compiled" and not _flag("CSTREAMS_REQUIRE_EXTENSIONS"):
            pytest.skip(f"compiled core not built: {e}")
        pytest.fail(f"{package} did not import: {e}")
    return types.SimpleNamespace(kind=kind, **mods)


@pytest.fixture(params=["pure", "compiled"])
def impl(request):
    return _modules(request.param)


@pytest.fixture
def pure():
    return _modules("pure")


# --- Record and RecordBatch ---------------------------------------------------------------


def _batch(impl, n=5, headers=None):
    return impl.record.RecordBatch(
        "t", 3, [f"k{i}" for i in range(n)], [i * 10 for i in range(n)],
        [1000 + i for i in range(n)], [50 + i for i in range(n)], headers,
    )


def test_record_fields_equality_and_repr(impl):
    R = impl.record.Record
    r = R("k", "v", 5, [("h", b"1")], "t", 2, 9)
    assert (r.key, r.value, r.timestamp, r.headers, r.topic, r.partition, r.offset) == (
        "k", "v", 5, [("h", b"1")], "t", 2, 9)
    d = R("k", "v")
    assert (d.timestamp, d.headers, d.topic, d.partition, d.offset) == (0, None, None, -1, -1)
    assert r == R("k", "v", 5, [("h", b"1")], "t", 2, 9)
    assert r != R("k", "v", 6, [("h", b"1")], "t", 2, 9)
    assert (r == "k") is False
    assert repr(d) == "Record(key='k', value='v', timestamp=0, topic=None, partition=-1, offset=-1)"
    with pytest.raises(TypeError):
        hash(r)
    r.value = "w"
    assert r.value == "w"


def test_batch_length_indexing_and_iteration(impl):
    b = _batch(impl)
    assert len(b) == 5
    assert b[0] == impl.record.Record("k0", 0, 1000, None, "t", 3, 50)
    assert b[-1].key == "k4" and b[-1].offset == 54
    assert b.record(2).value == 20
    with pytest.raises(IndexError, match="RecordBatch index out of range"):
        b[5]
    with pytest.raises(IndexError):
        b[-6]
    assert [r.key for r in b] == [f"k{i}" for i in range(5)]
    assert [r.offset for r in b] == [50, 51, 52, 53, 54]
    assert (b.first_offset, b.last_offset, b.max_timestamp) == (50, 54, 1004)
    empty = impl.record.RecordBatch("t", 0, [], [], [], [])
    assert (len(empty), empty.first_offset, empty.last_offset,
            empty.max_timestamp) == (0, -1, -1, -1)
    assert list(empty) == []
    assert repr(b) == "RecordBatch(topic='t', partition=3, records=5, offsets=50..54)"


def test_batch_slicing_keeps_columns_and_type(impl):
    b = _batch(impl, headers=[None, [("a", b"1")], None, None, [("b", b"2")]])
    s = b[1:4]
    assert isinstance(s, impl.record.RecordBatch)
    assert (s.topic, s.partition) == ("t", 3)
    assert s.keys == ["k1", "k2", "k3"] and s.offsets == [51, 52, 53]
    assert s.headers == [[("a", b"1")], None, None]
    assert b[::2].keys == ["k0", "k2", "k4"]
    assert b[::2].headers == [None, None, [("b", b"2")]]
    assert _batch(impl)[1:3].headers is None


def test_batch_select_and_with_columns(impl):
    b = _batch(impl)
    s = b.select([0, 3, 4])
    assert s.keys == ["k0", "k3", "k4"] and s.values == [0, 30, 40]
    assert s.timestamps == [1000, 1003, 1004] and s.offsets == [50, 53, 54]
    assert s.headers is None and (s.topic, s.partition) == ("t", 3)
    assert b.select([]).keys == []
    h = _batch(impl, headers=[None, [("x", b"1")], None, None, None])
    assert h.select([1, 2]).headers == [[("x", b"1")], None]
    w = b.with_columns(["a"] * 5, list(range(5)))
    assert w.keys == ["a"] * 5 and w.values == [0, 1, 2, 3, 4]
    assert w.timestamps is b.timestamps and w.offsets is b.offsets
    with pytest.raises(ValueError, match="columns differ in length"):
        b.with_columns(["a"], [1, 2, 3, 4, 5])


def test_batch_length_mismatch_errors(impl):
    RB = impl.record.RecordBatch
    with pytest.raises(ValueError) as e:
        RB("t", 0, [1, 2], [1], [1, 2], [1, 2])
    assert str(e.value) == ("RecordBatch columns differ in length: keys=2, values=1, "
                            "timestamps=2, offsets=2")
    with pytest.raises(ValueError, match="timestamps=1"):
        RB("t", 0, [1, 2], [1, 2], [1], [1, 2])
    with pytest.raises(ValueError, match="offsets=3"):
        RB("t", 0, [1, 2], [1, 2], [1, 2], [1, 2, 3])
    with pytest.raises(ValueError) as e:
        RB("t", 0, [1, 2], [1, 2], [1, 2], [1, 2], [None])
    assert str(e.value) == "RecordBatch headers has 1 entries for 2 records"


def test_batch_headers_none_vs_list(impl):
    b = _batch(impl, n=2)
    assert b.headers is None and b[0].headers is None
    h = _batch(impl, n=2, headers=[None, [("k", b"v")]])
    assert h[0].headers is None and h[1].headers == [("k", b"v")]


def test_batch_columns_are_the_lists_given(impl):
    keys, values, ts, offs = ["a"], [1], [2], [3]
    b = impl.record.RecordBatch("t", 0, keys, values, ts, offs)
    assert b.keys is keys and b.values is values and b.timestamps is ts and b.offsets is offs


def test_batch_tuple_columns_become_lists(impl, pure):
    # The compiled RecordBatch types its columns as lists; both twins copy another sequence
    # into a list, so code that appends to or type-checks a column behaves the same.
    b = impl.record.RecordBatch("t", 0, ("a", "b"), (1, 2), (5, 6), (7, 8), ([("h", b"1")], None))
    assert [type(c) for c in (b.keys, b.values, b.timestamps, b.offsets)] == [list] * 4
    assert (b.keys, b.values, b.timestamps, b.offsets) == (["a", "b"], [1, 2], [5, 6], [7, 8])
    assert b.headers == ([("h", b"1")], None)
    assert b[0].headers == [("h", b"1")] and b[1].headers is None
    p = pure.record.RecordBatch("t", 0, ("a", "b"), (1, 2), (5, 6), (7, 8))
    assert (p.keys, p.values, p.timestamps, p.offsets) == (b.keys, b.values, b.timestamps,
                                                           b.offsets)


# --- grouping -------------------------------------------------------------------------------


class FakeMessage:
    def __init__(self, topic, partition, offset, key=b"k", value=b"v", ts=0, headers=None,
                 error=None):
        self._t, self._p, self._o = topic, partition, offset
        self._k, self._v, self._ts, self._h, self._e = key, value, ts, headers, error

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def key(self):
        return self._k

    def value(self):
        return self._v

    def timestamp(self):
        return (1, self._ts)

    def headers(self):
        return self._h

    def error(self):
        return self._e


def test_grouping_interleaved_partitions(impl):
    msgs = [
        FakeMessage("a", 1, 10, b"x", b"1", 100),
        FakeMessage("a", 0, 5, b"y", b"2", 101),
        FakeMessage("a", 1, 11, b"z", b"3", 102),
        FakeMessage("b", 1, 7, None, None, 103, [("h", b"1")]),
        FakeMessage("a", 0, 6, b"w", b"4", 104),
        FakeMessage("a", 1, 12, b"v", b"5", 105),
    ]
    batches, errors = impl.grouping.group_messages(msgs)
    assert errors == []
    assert [(b.topic, b.partition) for b in batches] == [("a", 1), ("a", 0), ("b", 1)]
    a1, a0, b1 = batches
    assert isinstance(a1, impl.record.RecordBatch)
    assert a1.offsets == [10, 11, 12] and a1.keys == [b"x", b"z", b"v"]
    assert a1.values == [b"1", b"3", b"5"] and a1.timestamps == [100, 102, 105]
    assert a0.offsets == [5, 6] and a0.values == [b"2", b"4"]
    assert a1.headers is None and a0.headers is None
    assert b1.keys == [None] and b1.values == [None] and b1.headers == [[("h", b"1")]]


def test_grouping_headers_list_when_any_record_has_them(impl):
    msgs = [FakeMessage("a", 0, 0), FakeMessage("a", 0, 1, headers=[("h", b"1")])]
    (b,), _ = impl.grouping.group_messages(msgs)
    assert b.headers == [None, [("h", b"1")]]


def test_grouping_separates_errors(impl):
    bad1 = FakeMessage("a", 0, -1, error="EOF")
    bad2 = FakeMessage("a", 1, -1, error="boom")
    msgs = [FakeMessage("a", 0, 1), bad1, FakeMessage("a", 0, 2), bad2]
    batches, errors = impl.grouping.group_messages(msgs)
    assert errors == [bad1, bad2] and errors[0] is bad1
    assert [b.offsets for b in batches] == [[1, 2]]
    assert impl.grouping.group_messages([]) == ([], [])


# --- serdes ---------------------------------------------------------------------------------

ROUND_TRIPS = {
    "BYTES": [b"", b"\x00\xff", None, b"abc"],
    "STRING": ["", "héllo", "日本語", "😀 emoji", None, "a\x00b"],
    "INT32": [0, 1, -1, 2**31 - 1, -(2**31), None, 123456],
    "INT64": [0, -1, 2**63 - 1, -(2**63), None, 2**40 + 7],
    "FLOAT64": [0.0, -0.0, 1.5, -2.25e300, math.inf, -math.inf, None, 5e-324],
    "JSON": [{"user": "a", "amount": 3}, [1, 2, "x"], "s", 1, 1.5, True, None, {"é": None}],
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_serde_round_trips(impl, pure, name):
    serde = getattr(impl.serde, name)
    values = ROUND_TRIPS[name]
    encoded = serde.serialize_batch(values)
    assert encoded == getattr(pure.serde, name).serialize_batch(values)
    assert [serde.serialize(v) for v in values] == encoded
    assert serde.deserialize_batch(encoded) == values
    assert [serde.deserialize(b) for b in encoded] == values
    assert serde.serialize(None) is None and serde.deserialize(None) is None


def test_serde_encodings_are_kafkas(impl):
    s = impl.serde
    assert s.INT32.serialize(1) == b"\x00\x00\x00\x01"
    assert s.INT32.serialize(-2) == b"\xff\xff\xff\xfe"
    assert s.INT64.serialize(258) == b"\x00\x00\x00\x00\x00\x00\x01\x02"
    assert s.FLOAT64.serialize(1.0) == b"\x3f\xf0\x00\x00\x00\x00\x00\x00"
    assert s.STRING.serialize("é") == b"\xc3\xa9"
    assert s.JSON.serialize({"a": 1}) == b'{"a":1}'
    assert s.INT64.deserialize(b"\xff" * 8) == -1
    assert math.isnan(s.FLOAT64.deserialize(s.FLOAT64.serialize(math.nan)))
    # Values the fast loops do not take (bool, int for float64, bytearray input) still work.
    assert s.INT32.serialize_batch([True, 3]) == [b"\x00\x00\x00\x01", b"\x00\x00\x00\x03"]
    assert s.FLOAT64.serialize_batch([2]) == [b"\x40\x00\x00\x00\x00\x00\x00\x00"]
    assert s.INT32.deserialize_batch([bytearray(b"\x00\x00\x00\x07")]) == [7]
    assert s.STRING.deserialize_batch([bytearray(b"ab")]) == ["ab"]
    assert s.BYTES.serialize_batch([bytearray(b"x"), None]) == [b"x", None]


def test_bytes_serde_batches_pass_through(impl):
    kbs = [b"a", None, b"b"]
    assert impl.serde.BYTES.serialize_batch(kbs) is kbs
    assert impl.serde.BYTES.deserialize_batch(kbs) is kbs


BAD_INPUT = [
    ("STRING", "serialize", ["a", 5, "b"], 1, "string serde expects str, got int"),
    ("STRING", "serialize", ["a", "\ud800"], 1, "string serde cannot serialize '\\ud800'"),
    ("STRING", "deserialize", [b"a", b"b", b"\xff"], 2, "string serde: invalid UTF-8 in b'\\xff'"),
    ("INT32", "serialize", [1, 2**31], 1, "int32 serde cannot serialize 2147483648"),
    ("INT32", "serialize", [-(2**31) - 1], 0, "int32 serde cannot serialize -2147483649"),
    ("INT32", "serialize", [1, 2, "x"], 2, "int32 serde cannot serialize 'x'"),
    ("INT64", "serialize", [2**63], 0, "int64 serde cannot serialize 9223372036854775808"),
    ("INT64", "serialize", [1.5], 0, "int64 serde cannot serialize 1.5"),
    ("INT32", "deserialize", [b"\x00\x00\x00\x01", b"\x00"], 1,
     "int32 serde expects 4 bytes, got 1: b'\\x00'"),
    ("INT64", "deserialize", [b"\x00" * 4], 0, "int64 serde expects 8 bytes, got 4"),
    ("FLOAT64", "serialize", [1.0, "x"], 1, "float64 serde cannot serialize 'x'"),
    ("FLOAT64", "deserialize", [b"\x00" * 9], 0, "float64 serde expects 8 bytes, got 9"),
    ("JSON", "serialize", [1, {1, 2}], 1, "json serde cannot serialize {1, 2}"),
    ("JSON", "deserialize", [b"1", b"{oops"], 1, "json serde: invalid JSON b'{oops'"),
    ("BYTES", "serialize", [b"a", "s"], 1, "bytes serde expects bytes, got str"),
]


@pytest.mark.parametrize("name,direction,values,index,message", BAD_INPUT)
def test_serde_bad_input(impl, pure, name, direction, values, index, message):
    serde = getattr(impl.serde, name)
    with pytest.raises(SerdeError) as e:
        getattr(serde, f"{direction}_batch")(values)
    assert e.value.index == index
    assert str(e.value).startswith(message)
    # The exact same text as the pure twin (struct and codec messages included).
    with pytest.raises(SerdeError) as p:
        getattr(getattr(pure.serde, name), f"{direction}_batch")(values)
    assert str(e.value) == str(p.value)
    assert type(e.value.__cause__) is type(p.value.__cause__)
    # The single-value call raises an error with index -1 or the original exception.
    with pytest.raises(Exception) as single:
        getattr(serde, direction)(values[index])
    assert not isinstance(single.value, SerdeError) or single.value.index == -1


def test_custom_serdes(impl):
    c = impl.serde.CallableSerde(lambda o: str(o).encode(), lambda b: int(b), name="ints")
    assert c.name == "ints" and repr(c) == "<Serde ints>"
    assert c.serialize_batch([1, None, 22]) == [b"1", None, b"22"]
    assert c.deserialize_batch([b"1", None]) == [1, None]
    with pytest.raises(SerdeError) as e:
        c.deserialize_batch([b"1", b"x"])
    assert e.value.index == 1
    assert str(e.value).startswith("ints serde cannot deserialize b'x': invalid literal")
    assert isinstance(e.value.__cause__, ValueError)
    half = impl.serde.CallableSerde(None, bytes.decode)
    with pytest.raises(SerdeError) as e:
        half.serialize_batch([None, "x"])
    assert str(e.value) == "serde 'custom' has no serializer" and e.value.index == 1
    assert half.serialize_batch([None]) == [None]

    class Upper(impl.serde.Serde):
        name = "upper"

        def serialize(self, obj):
            return obj.upper().encode()

        def deserialize(self, data):
            if data == b"!":
                raise SerdeError("no bangs")
            return data.decode().lower()

    u = Upper()
    assert u.name == "upper" and repr(u) == "<Serde upper>"
    assert isinstance(u, impl.serde.Serde)
    assert u.serialize_batch(["ab", "c"]) == [b"AB", b"C"]
    assert u.deserialize_batch([b"AB"]) == ["ab"]
    with pytest.raises(SerdeError) as e:
        u.deserialize_batch([b"A", b"!"])
    assert (str(e.value), e.value.index) == ("no bangs", 1)
    with pytest.raises(SerdeError) as e:
        u.serialize_batch(["a", 5])
    assert e.value.index == 1 and str(e.value).startswith("upper serde cannot serialize 5:")

    class Shouty(type(impl.serde.STRING)):
        def serialize(self, obj):
            return obj.upper().encode()

    # A subclass of a built-in keeps its own serialize in the batch path.
    assert Shouty().serialize_batch(["a"]) == [b"A"]
    with pytest.raises(NotImplementedError):
        impl.serde.Serde().serialize(1)


# --- murmur2 --------------------------------------------------------------------------------

KAFKA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize("data,expected", KAFKA_VECTORS)
def test_murmur2_kafka_vectors(impl, data, expected):
    assert impl.partitioner.murmur2(data) == expected
    assert impl.partitioner.murmur2(bytearray(data)) == expected
    assert impl.partitioner.murmur2(memoryview(data)) == expected


def test_murmur2_partitions(impl, pure):
    keys = [b"21", None, b"foobar", b"", b"abc", None] + [bytes([i]) * i for i in range(40)]
    parts = impl.partitioner.murmur2_partitions(keys, 8)
    assert parts[1] == -1 and parts[5] == -1
    assert parts[0] == (-973932308 & 0x7FFFFFFF) % 8
    assert all(0 <= p < 8 for i, p in enumerate(parts) if keys[i] is not None)
    assert parts == pure.partitioner.murmur2_partitions(keys, 8)
    assert impl.partitioner.murmur2_partitions(keys, 1) == [
        -1 if k is None else 0 for k in keys]
    assert impl.partitioner.murmur2_partitions([], 3) == []
    with pytest.raises(ZeroDivisionError):
        impl.partitioner.murmur2_partitions([b"a"], 0)


# --- KeyValueStore and count_batch ----------------------------------------------------------


class CountingBackend(InMemoryBackend):
    def __init__(self):
        super().__init__()
        self.gets, self.get_batches, self.writes = [], [], []

    def get(self, kb):
        self.gets.append(kb)
        return super().get(kb)

    def get_batch(self, kbs):
        self.get_batches.append(list(kbs))
        return super().get_batch(kbs)

    def write_batch(self, kbs, vbs):
        self.writes.append((list(kbs), list(vbs)))
        super().write_batch(kbs, vbs)


class Changelog:
    def __init__(self):
        self.sends = []

    def send(self, kbs, vbs):
        self.sends.append((list(kbs), list(vbs)))


def _store(impl, cache=100, key_serde=None, value_serde=None):
    s = impl.serde
    st = impl.store.KeyValueStore("counts", CountingBackend(), key_serde or s.STRING,
                                  value_serde or s.INT64, cache)
    st.changelog = Changelog()
    return st


def test_store_attributes(impl):
    st = _store(impl)
    assert (st.name, st.cache_max_entries) == ("counts", 100)
    assert st.key_serde is impl.serde.STRING and st.value_serde is impl.serde.INT64
    assert isinstance(st.backend, CountingBackend)
    assert impl.store.KeyValueStore("x", InMemoryBackend(), None, None, -5).cache_max_entries == 0
    assert impl.store.KeyValueStore("x", InMemoryBackend(), None, None).changelog is None
    assert repr(st) == "<KeyValueStore 'counts' backend=CountingBackend>"


def test_store_cache_coalesces_and_flush_writes_one_batch(impl):
    st = _store(impl)
    st.put("a", 1)
    st.put("b", 2)
    st.put("a", 3)
    st.put_batch(["c", "a", "d"], [4, 5, None])
    assert st.backend.writes == [] and st.changelog.sends == []
    assert st.get("a") == 5 and st.get("d") is None
    assert st.dirty_count() == 4
    assert st.flush() == 4
    enc = impl.serde.INT64.serialize
    assert st.backend.writes == [([b"a", b"b", b"c", b"d"], [enc(5), enc(2), enc(4), None])]
    assert st.changelog.sends == st.backend.writes
    assert st.flush() == 0 and len(st.backend.writes) == 1
    assert st.backend.gets == []


def test_store_get_batch_misses_hit_backend_once(impl):
    st = _store(impl)
    st.restore_batch([b"x", b"y"], [impl.serde.INT64.serialize(7), impl.serde.INT64.serialize(8)])
    st.put("a", 1)
    assert st.get_batch(["a", "x", "q", "x", "y", "a"]) == [1, 7, None, 7, 8, 1]
    assert st.backend.get_batches == [[b"x", b"q", b"y"]]
    assert st.get_batch(["x", "q", "y"]) == [7, None, 8]
    assert len(st.backend.get_batches) == 1
    assert st.get_batch_by_bytes([b"y", b"z"]) == [8, None]
    assert st.backend.get_batches[-1] == [b"z"]
    assert st.get("z") is None and st.backend.gets == []
    assert st.get("w") is None and st.backend.gets == [b"w"]


def test_store_delete(impl):
    st = _store(impl)
    st.put("a", 1)
    st.put("b", 2)
    st.flush()
    assert st.delete("a") == 1
    assert st.delete("nope") is None
    assert st.get("a") is None
    st.delete_batch(["b"])
    st.flush()
    assert st.backend.writes[-1] == ([b"a", b"nope", b"b"], [None, None, None])
    assert list(st.all()) == []


def test_store_eviction_bound(impl):
    st = _store(impl, cache=10)
    for i in range(11):
        st.put(f"k{i:02d}", i)
    # Over the bound: flushed once, the older entries dropped down to half the bound.
    assert len(st.backend.writes) == 1 and len(st.backend.writes[0][0]) == 11
    assert len(st._cache) == 5 and list(st._cache) == [f"k{i:02d}".encode() for i in range(6, 11)]
    assert st.get("k00") == 0 and st.backend.gets == [b"k00"]
    st.put_batch([f"j{i}" for i in range(30)], list(range(30)))
    assert len(st._cache) <= 10
    assert st.dirty_count() == 0
    zero = _store(impl, cache=0)
    zero.put("a", 1)
    assert len(zero._cache) == 0 and zero.get("a") == 1


def test_store_range_and_all_in_serialized_key_order(impl):
    st = _store(impl, key_serde=impl.serde.INT32)
    st.put_batch([5, -1, 300, 0, 2], [50, -10, 3000, 0, 20])
    # INT32 big-endian: negative numbers sort after positive ones by bytes.
    assert list(st.all()) == [(0, 0), (2, 20), (5, 50), (300, 3000), (-1, -10)]
    assert list(st.range(2, 300)) == [(2, 20), (5, 50), (300, 3000)]
    assert list(st.range(None, 2)) == [(0, 0), (2, 20)]
    assert st.approximate_num_entries() == 5


def test_store_errors(impl):
    st = _store(impl)
    with pytest.raises(StoreError, match="keys cannot be None"):
        st.put(None, 1)
    with pytest.raises(StoreError, match="keys cannot be None"):
        st.put_batch(["a", None], [1, 2])
    with pytest.raises(StoreError, match="cannot serialize key 5"):
        st.get(5)
    with pytest.raises(StoreError, match="put_batch got 2 keys and 1 values"):
        st.put_batch(["a", "b"], [1])
    st.put("a", "not an int")
    with pytest.raises(StoreError, match="cannot serialize value"):
        st.flush()


def test_store_discard_cache(impl):
    st = _store(impl)
    st.put("a", 1)
    st.discard_cache()
    assert st.dirty_count() == 0 and st.flush() == 0 and st.get("a") is None


def test_count_batch_repeated_keys(impl):
    st = _store(impl)
    st.restore_batch([b"b"], [impl.serde.INT64.serialize(10)])
    out = impl.counting.count_batch(st, ["a", "b", "a", "c", "a", "b"])
    assert out == [1, 11, 2, 1, 3, 12]
    assert st.backend.get_batches == [[b"a", b"b", b"c"]]
    assert st.get_batch(["a", "b", "c"]) == [3, 12, 1]
    assert impl.counting.count_batch(st, ["c", "c"]) == [2, 3]
    assert len(st.backend.get_batches) == 1
    assert impl.counting.count_batch(st, []) == []
    st.flush()
    enc = impl.serde.INT64.serialize
    assert st.changelog.sends == [([b"a", b"b", b"c"], [enc(3), enc(12), enc(3)])]


def test_count_batch_bytes_keys_and_big_counts(impl):
    st = _store(impl, key_serde=impl.serde.BYTES)
    st.put(b"big", 2**62)
    st.put(b"huge", 2**70)
    assert impl.counting.count_batch(st, [b"big", b"huge", b"big"]) == [2**62 + 1, 2**70 + 1,
                                                                    2**62 + 2]
    with pytest.raises(StoreError, match="keys cannot be None"):
        impl.counting.count_batch(st, [b"a", None])


# --- dispatch -------------------------------------------------------------------------------


class Collector:
    def __init__(self, partitions=4):
        self.partitions = partitions
        self.sent = []

    def partitions_for(self, topic):
        return self.partitions

    def send_batch(self, topic, keys, values, timestamps, headers, partitions):
        self.sent.append((topic, keys, values, timestamps, headers, partitions))


class FakeTask(TaskContext):
    """The declared task interface, with a collector that keeps what sinks send."""

    def __init__(self, stores=None):
        super().__init__("app", "0_2", 2, Collector())
        self.stream_time = 77
        self.stores = stores or {}
        self.errors = []

    def handle_error(self, error, record, cause=None):
        self.errors.append(error)
        raise error

    def error_handler_fails(self, error):
        return True


class Capture:
    """A child node that records the batches it receives."""

    def __init__(self, name):
        self.name = name
        self.batches = []

    def process_batch(self, batch):
        self.batches.append(batch)


def _graph(impl, processor, children=("c1", "c2"), stores=()):
    task = FakeTask()
    node = impl.dispatch.ProcessorNode("p", task, processor, stores)
    caps = [Capture(n) for n in children]
    for c in caps:
        node.add_child(c)
    node.init()
    return node, caps, task


def test_context_properties(impl):
    seen = {}

    class P(impl.processor.BatchProcessor):
        def init(self, ctx):
            self.ctx = ctx

        def process_batch(self, batch):
            c = self.ctx
            seen.update(app=c.application_id, task=c.task_id, node=c.node_name,
                        st=c.stream_time, topic=c.topic, part=c.partition, off=c.offset,
                        ts=c.timestamp, hdr=c.headers, batch=c.batch)

    node, _, _ = _graph(impl, P())
    b = _batch(impl, 3)
    node.process_batch(b)
    assert seen == dict(app="app", task="0_2", node="p", st=77, topic="t", part=3, off=52,
                        ts=1002, hdr=None, batch=b)
    ctx = node.context
    assert isinstance(ctx, impl.dispatch.ProcessorContext)
    assert (ctx.batch, ctx.topic, ctx.partition, ctx.offset, ctx.timestamp) == (
        None, None, 2, -1, -1)
    ctx.commit()
    assert node.task.commit_requested is True
    with pytest.raises(CStreamsError, match="not connected to store 'nope'"):
        ctx.get_store("nope")


def test_forward_and_forward_batch_keep_call_order(impl):
    class P(impl.processor.BatchProcessor):
        def init(self, ctx):
            self.ctx = ctx

        def process_batch(self, batch):
            self.ctx.forward("first", 1)
            self.ctx.forward_batch(["x", "y"], [2, 3])
            self.ctx.forward("last", 4, timestamp=5)

    node, (c1, c2), _ = _graph(impl, P())
    node.process_batch(_batch(impl, 3))
    assert len(c1.batches) == 1 and len(c2.batches) == 1
    out = c1.batches[0]
    assert isinstance(out, impl.record.RecordBatch)
    assert out.keys == ["first", "x", "y", "last"] and out.values == [1, 2, 3, 4]
    assert out.timestamps == [1002, 1002, 1002, 5]
    assert out.offsets == [52, 52, 52, 52]
    assert (out.topic, out.partition, out.headers) == ("t", 3, None)
    assert c2.batches[0].keys == out.keys


def test_forward_to_named_child(impl):
    class P(impl.processor.BatchProcessor):
        def init(self, ctx):
            self.ctx = ctx

        def process_batch(self, batch):
            self.ctx.forward_batch(batch.keys, batch.values, to="c2")
            self.ctx.forward("only-c1", 0, to="c1")

    node, (c1, c2), _ = _graph(impl, P())
    node.process_batch(_batch(impl, 2))
    assert [b.keys for b in c1.batches] == [["only-c1"]]
    assert [b.keys for b in c2.batches] == [["k0", "k1"]]

    class Bad(P):
        def process_batch(self, batch):
            self.ctx.forward("k", "v", to="nobody")

    node, _, _ = _graph(impl, Bad())
    with pytest.raises(ProcessingError, match="forwards to 'nobody', which is not one of its"):
        node.process_batch(_batch(impl, 1))


def test_forward_batch_of_whole_batch_passes_lists_without_copy(impl):
    class P(impl.processor.BatchProcessor):
        def init(self, ctx):
            self.ctx = ctx

        def process_batch(self, batch):
            self.ctx.forward_batch(batch.keys, batch.values, like=batch)

    node, (c1, _), _ = _graph(impl, P())
    b = _batch(impl, 4, headers=[None, [("h", b"1")], None, None])
    node.process_batch(b)
    out = c1.batches[0]
    assert out.keys is b.keys and out.values is b.values
    assert out.timestamps is b.timestamps and out.offsets is b.offsets
    assert out.headers is b.headers


def test_forward_batch_provenance_only_when_told(impl):
    # Outputs take the input's offsets, timestamps and headers position by position only with
    # like=; equal lengths alone attach nothing (the outputs may be any 4 records).
    class P(impl.processor.BatchProcessor):
        def init(self, ctx):
            self.ctx = ctx

        def process_batch(self, batch):
            self.ctx.forward_batch(*self.args(batch), **self.kwargs(batch))

    p = P()
    node, (c1, _), _ = _graph(impl, p)
    b = _batch(impl, 4, headers=[None, [("h", b"1")], None, None])
    b.timestamps[1] = 9999  # the latest timestamp is not the last record's

    p.args, p.kwargs = (lambda b: (["w", "x", "y", "z"], [1, 2, 3, 4])), (lambda b: {})
    node.process_batch(b)
    out = c1.batches.pop()
    assert out.offsets == [53] * 4 and out.timestamps == [9999] * 4 and out.headers is None

    p.args, p.kwargs = (lambda b: (["a", "b"], [1, 2], [7, 8])), (lambda b: {})
    node.process_batch(b)
    out = c1.batches.pop()
    assert out.offsets == [53, 53] and out.timestamps == [7, 8] and out.headers is None

    def derived(b):
        sub = b.select([1, 3])
        return {"like": sub.with_columns(["K1", "K3"], [10, 30])}

    p.args, p.kwargs = (lambda b: (["K1", "K3"], [10, 30])), derived
    node.process_batch(b)
    out = c1.batches.pop()
    assert out.offsets == [51, 53] and out.timestamps == [9999, 1003]
    assert out.headers == [[("h", b"1")], None]

    p.args = lambda b: (["K1", "K3"], [10, 30], [5, 6], [[("o", b"")], None])
    node.process_batch(b)
    out = c1.batches.pop()
    assert out.offsets == [51, 53] and out.timestamps == [5, 6]
    assert out.headers == [[("o", b"")], None]

    p.args, p.kwargs = (lambda b: (["a"], [1])), (lambda b: {"like": b})
    with pytest.raises(ProcessingError, match="forward_batch got 1 records like a batch of 4"):
        node.process_batch(b)
    p.args, p.kwargs = (lambda b: (["a"], [1], None, [None, None])), (lambda b: {})
    with pytest.raises(ProcessingError, match="forward_batch got 2 headers for 1 records"):
        node.process_batch(b)


def test_forward_batch_errors(impl):
    class P(impl.processor.BatchProcessor):
        def init(self, ctx):
            self.ctx = ctx

        def process_batch(self, batch):
            self.ctx.forward_batch(*self.args)

    p = P()
    node, _, _ = _graph(impl, p)
    p.args = (["a"], [1, 2])
    with pytest.raises(ProcessingError, match="forward_batch got 1 keys and 2 values"):
        node.process_batch(_batch(impl, 2))
    p.args = (["a"], [1], [1, 2])
    with pytest.raises(ProcessingError, match="forward_batch got 2 timestamps for 1 records"):
        node.process_batch(_batch(impl, 2))


def test_per_record_processor_output_arrives_as_one_batch(impl):
    class Double(Processor):
        def init(self, ctx):
            self.ctx = ctx

        def process(self, record):
            assert self.ctx.offset == record.offset and self.ctx.timestamp == record.timestamp
            self.ctx.forward(record.key, record.value * 2)
            if record.value == 20:
                self.ctx.forward(record.key + "!", -1, headers=[("x", b"y")])

    node, (c1, _), _ = _graph(impl, Double())
    assert node.is_batch is False
    node.process_batch(_batch(impl, 4))
    assert len(c1.batches) == 1
    out = c1.batches[0]
    assert out.keys == ["k0", "k1", "k2", "k2!", "k3"]
    assert out.values == [0, 20, 40, -1, 60]
    assert out.offsets == [50, 51, 52, 52, 53] and out.timestamps == [1000, 1001, 1002, 1002, 1003]
    assert out.headers == [None, None, None, [("x", b"y")], None]


def test_batch_processor_per_record_call_and_errors(impl):
    got = []

    class P(impl.processor.BatchProcessor):
        def process_batch(self, batch):
            got.append((batch.keys, batch.offsets, batch.headers))

    P().process(impl.record.Record("k", "v", 1, [("h", b"")], "t", 0, 9))
    assert got == [(["k"], [9], [[("h", b"")]])]
    with pytest.raises(NotImplementedError, match="Q must override process_batch"):
        type("Q", (impl.processor.BatchProcessor,), {})().process_batch(_batch(impl, 1))

    class Boom(impl.processor.BatchProcessor):
        def process_batch(self, batch):
            raise KeyError("x")

    node, _, _ = _graph(impl, Boom())
    assert node.is_batch is True
    with pytest.raises(ProcessingError) as e:
        node.process_batch(_batch(impl, 3))
    # The failed batch is re-run a record at a time, under fail too: the error names the
    # record that fails.
    assert str(e.value) == ("processor 'p' failed on the record at topic 't' partition 3 "
                            "offset 50: KeyError: 'x'")
    assert (e.value.topic, e.value.partition, e.value.offset, e.value.node) == ("t", 3, 50, "p")


def test_source_and_sink_nodes(impl):
    s = impl.serde
    task = FakeTask()
    src = impl.dispatch.SourceNode("in", task, ["t"], s.STRING, s.INT32)
    sink = impl.dispatch.SinkNode("out", task, "o", s.STRING, s.INT32)
    src.add_child(sink)
    src.init()
    sink.init()
    assert (src.kind, sink.kind, impl.dispatch.ProcessorNode.kind) == ("source", "sink",
                                                                       "processor")
    raw = impl.record.RecordBatch("t", 1, [b"21", None, b"abc"], [s.INT32.serialize(i) for i in
                                                                 (1, 2, 3)],
                                  [5, 6, 7], [0, 1, 2])
    src.process_raw(raw)
    (topic, kbs, vbs, ts, headers, parts), = task.collector.sent
    assert topic == "o" and kbs == [b"21", None, b"abc"] and vbs == raw.values
    assert ts == [5, 6, 7] and headers is None
    assert parts == [(-973932308 & 0x7FFFFFFF) % 4, -1, (479470107 & 0x7FFFFFFF) % 4]
    bad = impl.record.RecordBatch("t", 1, [b"a"], [b"\x00"], [5], [9])
    with pytest.raises(CStreamsError, match="cannot deserialize the value of the record at topic"):
        src.process_raw(bad)

    sink2 = impl.dispatch.SinkNode("out2", task, "o2", s.STRING, s.STRING,
                                   partitioner=lambda k, v, n: len(v) % n)
    sink2.init()
    with pytest.raises(CStreamsError) as e:
        sink2.process_batch(impl.record.RecordBatch("t", 0, ["a", "b"], ["xyz", 5], [0, 0],
                                                    [3, 4]))
    assert e.value.offset == 4 and e.value.field == "value" and e.value.node == "out2"
    sink2.process_batch(impl.record.RecordBatch("t", 0, ["a"], ["xyz"], [0], [3]))
    assert task.collector.sent[-1][5] == [3]


def test_store_reads_keep_the_cache_bounded_without_losing_dirty_writes(impl):
    st = _store(impl, cache=10)
    st.put("dirty", 7)
    st.backend.write_batch([f"k{i}".encode() for i in range(300)],
                           [impl.serde.INT64.serialize(i) for i in range(300)])
    for i in range(200):
        assert st.get(f"k{i}") == i
    assert st.get_batch([f"k{i}" for i in range(100, 300)]) == list(range(100, 300))
    assert len(st._cache) <= 10
    assert st.get("dirty") == 7
    st.flush()
    assert impl.serde.INT64.deserialize(st.backend.get(b"dirty")) == 7


# --- KeyValueStore in transactional mode (exactly-once) --------------------------------------


def _txn_store(impl, cache=100, key_serde=None):
    st = _store(impl, cache, key_serde=key_serde)
    st.transactional = True
    return st


def test_txn_store_flush_sends_changelog_and_holds_writes_pending(impl):
    st = _txn_store(impl)
    assert _store(impl).transactional is False
    st.put_batch(["a", "b", "a"], [1, 2, 3])
    assert st.flush() == 2
    enc = impl.serde.INT64.serialize
    # The changelog records went out (into the transaction); the backend has nothing yet.
    assert st.changelog.sends == [([b"a", b"b"], [enc(3), enc(2)])]
    assert st.backend.writes == [] and st.pending_count() == 2 and st.dirty_count() == 0
    # Reads still see the transaction's writes.
    assert st.get_batch(["a", "b"]) == [3, 2] and st.backend.get_batches == []
    assert st.commit_pending() == 2
    assert st.backend.writes == [([b"a", b"b"], [enc(3), enc(2)])]
    assert st.pending_count() == 0 and st.commit_pending() == 0


def test_txn_store_commit_pending_writes_every_flush_in_one_batch(impl):
    st = _txn_store(impl)
    st.put("a", 1)
    st.flush()
    st.put("a", 2)
    st.put("b", 5)
    st.flush()
    assert st.commit_pending() == 3
    enc = impl.serde.INT64.serialize
    # One write batch, in flush order: the later value of "a" wins.
    assert st.backend.writes == [([b"a", b"a", b"b"], [enc(1), enc(2), enc(5)])]
    assert st.backend.get(b"a") == enc(2)


def test_txn_store_rewind_discards_dirty_and_pending(impl):
    st = _txn_store(impl)
    st.put_batch(["a", "b"], [1, 2])
    st.flush()
    st.commit_pending()                     # committed: a=1, b=2
    st.put("a", 10)
    st.flush()                              # pending: a=10
    st.put("c", 3)                          # dirty: c=3
    st.delete("b")
    st.rewind()
    assert st.pending_count() == 0 and st.dirty_count() == 0 and st.flush() == 0
    assert st.get_batch(["a", "b", "c"]) == [1, 2, None]
    assert st.commit_pending() == 0
    assert len(st.backend.writes) == 1


def test_txn_store_eviction_never_drops_or_writes_dirty_entries(impl):
    st = _txn_store(impl, cache=10)
    st.restore_batch([f"c{i}".encode() for i in range(8)],
                     [impl.serde.INT64.serialize(i) for i in range(8)])
    assert st.get_batch([f"c{i}" for i in range(8)]) == list(range(8))
    st.backend.writes.clear()
    for i in range(12):
        st.put(f"k{i:02d}", i)
    # Over the bound: clean entries went first, nothing reached the backend, the cache holds
    # every dirty entry even past the bound.
    assert st.backend.writes == [] and st.changelog.sends == []
    assert st.dirty_count() == 12 and len(st._cache) == 12
    assert all(kb.startswith(b"k") for kb in st._cache)
    assert st.get_batch([f"k{i:02d}" for i in range(12)]) == list(range(12))
    assert st.get("c3") == 3                  # clean data is read back from the backend
    assert st.flush() == 12 and st.backend.writes == []
    st.commit_pending()
    assert len(st.backend.writes) == 1 and len(st.backend.writes[0][0]) == 12


def test_txn_store_range_overlays_uncommitted_writes(impl):
    st = _txn_store(impl, key_serde=impl.serde.INT32)
    st.put_batch([1, 3, 5, 7], [10, 30, 50, 70])
    st.flush()
    st.commit_pending()
    st.put_batch([4, 5, 9], [40, 55, 90])     # dirty: insert, overwrite, append
    st.delete(3)
    st.flush()                                # pending now
    st.put(0, 0)                              # dirty
    st.delete(7)
    assert list(st.all()) == [(0, 0), (1, 10), (4, 40), (5, 55), (9, 90)]
    assert list(st.range(2, 5)) == [(4, 40), (5, 55)]
    assert list(st.range(6, None)) == [(9, 90)]
    # range() did not flush: the backend still holds only the committed state.
    assert len(st.backend.writes) == 1 and st.dirty_count() == 2
    assert st.approximate_num_entries() == 4 and len(st.backend.writes) == 1
    st.rewind()
    assert list(st.all()) == [(1, 10), (3, 30), (5, 50), (7, 70)]


def test_txn_store_count_batch_keeps_counts_until_commit(impl):
    st = _txn_store(impl, cache=4)
    assert impl.counting.count_batch(st, ["a", "b", "a", "c", "d", "e", "a"]) == [
        1, 1, 2, 1, 1, 1, 3]
    assert st.backend.writes == [] and st.dirty_count() == 5
    st.flush()
    st.rewind()
    assert impl.counting.count_batch(st, ["a"]) == [1]
    st.flush()
    st.commit_pending()
    assert impl.counting.count_batch(st, ["a", "a"]) == [2, 3]


# --- produce loop -----------------------------------------------------------------------------


class _FakeProducer:
    """Producer.produce's positional interface; the local queue holds ``room`` records until
    poll() drains it."""

    def __init__(self, room=None):
        self.room = room
        self.queued = 0
        self.produced = []
        self.polls = []

    def produce(self, topic, value=None, key=None, partition=-1, on_delivery=None,
                callback=None, timestamp=0, headers=None):
        if self.room is not None and self.queued >= self.room:
            raise BufferError("Local: Queue full")
        self.queued += 1
        self.produced.append((topic, value, key, partition, on_delivery, timestamp, headers))

    def poll(self, timeout):
        self.polls.append(timeout)
        self.queued = 0
        return 0


def test_produce_batch_columns_in_order(impl):
    p = _FakeProducer()
    n = impl.produce.produce_batch(p, "out", values=[b"v1", None, b"v3"],
                                   keys=[b"k1", b"k2", None], partitions=[0, 1, -1],
                                   timestamps=[10, None, 30],
                                   headers=[None, [("h", b"x")], None])
    assert n == 3
    assert p.produced == [("out", b"v1", b"k1", 0, None, 10, None),
                          ("out", None, b"k2", 1, None, 0, [("h", b"x")]),
                          ("out", b"v3", None, -1, None, 30, None)]


def test_produce_batch_one_partition_and_last_callback(impl):
    p = _FakeProducer()
    cb = object()
    impl.produce.produce_batch(p, "cl", values=(b"a", b"b"), keys=(b"ka", b"kb"), partitions=5,
                               last_on_delivery=cb)
    assert [r[3] for r in p.produced] == [5, 5]
    assert [r[4] for r in p.produced] == [None, cb]
    assert [r[5] for r in p.produced] == [0, 0]
    assert impl.produce.produce_batch(p, "cl", keys=[], values=[], partitions=5,
                                      last_on_delivery=cb) == 0


def test_produce_batch_full_queue_polls_and_resumes(impl):
    p = _FakeProducer(room=3)
    keys = [str(i).encode() for i in range(10)]
    assert impl.produce.produce_batch(p, "out", keys=keys, values=keys, partitions=[0] * 10,
                                      poll_timeout=0.01) == 10
    assert [r[2] for r in p.produced] == keys      # each once, in order
    assert p.polls == [0.01, 0.01, 0.01]


def test_produce_batch_length_mismatch(impl):
    p = _FakeProducer()
    with pytest.raises(ValueError):
        impl.produce.produce_batch(p, "out", values=[b"v"], keys=[b"k", b"k2"], partitions=[0, 0])
    with pytest.raises(ValueError):
        impl.produce.produce_batch(p, "out", values=[b"v"], keys=[b"k"], partitions=[0, 1])
    with pytest.raises(ValueError):
        impl.produce.produce_batch(p, "out", values=[b"v"], keys=[b"k"], partitions=[0],
                                   timestamps=[1, 2])
    with pytest.raises(TypeError):
        impl.produce.produce_batch(p, "out", [b"v"], [b"k"], [0])  # columns go by keyword
    assert p.produced == []


def test_produce_batch_other_errors_propagate(impl):
    class Failing(_FakeProducer):
        def produce(self, *args):
            raise TypeError("bad value")
    with pytest.raises(TypeError):
        impl.produce.produce_batch(Failing(), "out", values=[b"v"], keys=[b"k"], partitions=[0])


# --- reuse of consumed key bytes --------------------------------------------------------------


def _pass_through(impl, src_key_serde, sink_key_serde, processor):
    s = impl.serde
    task = FakeTask()
    src = impl.dispatch.SourceNode("in", task, ["t"], src_key_serde, s.BYTES)
    node = impl.dispatch.ProcessorNode("p", task, processor, ())
    sink = impl.dispatch.SinkNode("out", task, "o", sink_key_serde, s.BYTES)
    src.add_child(node)
    node.add_child(sink)
    for n in (src, node, sink):
        n.init()
    return src, task


class _Forward:
    def __init__(self, impl, change=None):
        self.base = impl.processor.BatchProcessor
        self.change = change

    def make(self):
        change = self.change

        class P(self.base):
            def init(self, ctx):
                self.ctx = ctx

            def process_batch(self, batch):
                keys = batch.keys
                if change is not None:
                    change(keys)
                self.ctx.forward_batch(keys, batch.values, like=batch)
        return P()


@pytest.mark.parametrize("name,raw_keys", [
    ("STRING", [b"a", b"\xc3\xa9t\xc3\xa9", None, b"a"]),
    ("BYTES", [b"\x00\xff", b"", None]),
    ("INT32", [b"\x00\x00\x00\x07", b"\xff\xff\xff\xff"]),
    ("INT64", [b"\x00" * 7 + b"\x01", b"\x80" + b"\x00" * 7]),
])
def test_sink_reuses_consumed_key_bytes_of_unchanged_keys(impl, name, raw_keys):
    serde = getattr(impl.serde, name)
    src, task = _pass_through(impl, serde, serde, _Forward(impl).make())
    raw = impl.record.RecordBatch("t", 1, list(raw_keys), [b"v"] * len(raw_keys),
                                  [5] * len(raw_keys), list(range(len(raw_keys))))
    src.process_raw(raw)
    (_, kbs, *_), = task.collector.sent
    assert kbs == serde.serialize_batch(serde.deserialize_batch(raw_keys)) == raw_keys
    assert kbs is raw.keys                      # reused, not serialized again


def test_key_bytes_are_serialized_when_keys_changed_or_serdes_differ(impl):
    s = impl.serde
    raw_keys = [b"a", b"b", b"c"]

    def run(src_serde, sink_serde, change=None):
        src, task = _pass_through(impl, src_serde, sink_serde, _Forward(impl, change).make())
        raw = impl.record.RecordBatch("t", 1, list(raw_keys), [b"v"] * 3, [5] * 3, [0, 1, 2])
        src.process_raw(raw)
        (_, kbs, *_), = task.collector.sent
        return kbs, raw

    def replace_middle(keys):
        keys[1] = "z"                           # the decoded list changed in place
    kbs, raw = run(s.STRING, s.STRING, replace_middle)
    assert kbs == [b"a", b"z", b"c"] and kbs is not raw.keys
    kbs, raw = run(s.STRING, s.BYTES, lambda keys: keys.__setitem__(slice(None), [b"x"] * 3))
    assert kbs == [b"x"] * 3 and kbs is not raw.keys
    json_keys = [b'"a"', b'"b"', b'"c"']
    src, task = _pass_through(impl, s.JSON, s.JSON, _Forward(impl).make())
    raw = impl.record.RecordBatch("t", 1, list(json_keys), [b"v"] * 3, [5] * 3, [0, 1, 2])
    src.process_raw(raw)
    (_, kbs, *_), = task.collector.sent
    assert kbs == json_keys and kbs is not raw.keys   # JSON is not an exact round trip


def test_reused_key_bytes_and_serialized_keys(impl):
    d, s = impl.dispatch, impl.serde
    keys = s.STRING.deserialize_batch([b"k1", b"k2"])
    raw = [b"k1", b"k2"]
    task = FakeTask()
    task._key_origin = d.key_origin(keys, raw, s.STRING)
    assert d.reused_key_bytes(task, keys, s.STRING) is raw
    assert d.reused_key_bytes(task, list(keys), s.STRING) is raw      # same objects
    assert d.reused_key_bytes(task, keys[:1], s.STRING) is None
    assert d.reused_key_bytes(task, ["k1", "k2x"[:2]], s.STRING) in (None, raw)
    assert d.reused_key_bytes(task, keys, s.BYTES) is None
    assert d.reused_key_bytes(task, tuple(keys), s.STRING) is None
    assert d.key_origin(keys, raw, s.JSON) is None
    assert d.key_origin(keys, raw, s.FLOAT64) is None
    assert d.reused_key_bytes(FakeTask(), keys, s.STRING) is None
    node = d.ProcessorNode("p", task, _Forward(impl).make(), ())
    node.init()
    assert node.context.serialized_keys(keys, s.STRING) is raw
    assert node.context.serialized_keys(["x"], s.STRING) == [b"x"]


def test_count_batch_with_key_bytes(impl):
    s = impl.serde
    st1 = _store(impl, key_serde=s.STRING, value_serde=s.INT64)
    st2 = _store(impl, key_serde=s.STRING, value_serde=s.INT64)
    keys = ["a", "b", "a", "c", "a"]
    kbs = [k.encode() for k in keys]
    assert impl.counting.count_batch(st1, keys) == [1, 1, 2, 1, 3]
    assert impl.counting.count_batch(st2, keys, kbs) == [1, 1, 2, 1, 3]
    assert impl.counting.count_batch(st2, keys, tuple(kbs)) == [4, 2, 5, 2, 6]
    assert st2.get("a") == 6 and st1.get("a") == 3
