"""Topology semantics through the TopologyTestDriver (no broker)."""

import pytest

import cstreams as cs
from cstreams.errors import DeserializationError, ProcessingError
from cstreams.handlers import DeadLetterHandler, SkipHandler
from cstreams.testing import TopologyTestDriver

S, I64 = cs.serde.STRING, cs.serde.INT64


class Recorder(cs.BatchProcessor):
    calls = []

    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        Recorder.calls.append((batch.topic, batch.partition, list(batch.offsets), list(batch.keys)))
        self.ctx.forward_batch(batch.keys, batch.values, like=batch)


def recorder_topology():
    t = cs.Topology()
    t.add_source("in", "input", key_serde=S, value_serde=S)
    t.add_processor("rec", Recorder, parents="in")
    t.add_sink("out", "output", parents="rec", key_serde=S, value_serde=S)
    return t


def test_batch_processor_gets_one_call_per_partition_per_batch_in_offset_order():
    Recorder.calls = []
    with TopologyTestDriver(recorder_topology()) as d:
        d.pipe_batch("input", ["a", "b", "c"], ["1", "2", "3"], partition=0)
        d.pipe_batch("input", ["d", "e"], ["4", "5"], partition=3)
        d.pipe_batch("input", ["f", "g"], ["6", "7"], partition=0)
        assert Recorder.calls == [
            ("input", 0, [0, 1, 2], ["a", "b", "c"]),
            ("input", 3, [0, 1], ["d", "e"]),
            ("input", 0, [3, 4], ["f", "g"]),
        ]
        assert [(r.key, r.value) for r in d.output("output")] == [
            ("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5"), ("f", "6"), ("g", "7")]
        assert len(d.tasks()) == 2


class Split(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx

    def process(self, record):
        for w in record.value.split():
            self.ctx.forward(w, 1)


class BatchSizes(cs.BatchProcessor):
    sizes = []

    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        BatchSizes.sizes.append((len(batch), list(batch.offsets)))
        self.ctx.forward_batch(batch.keys, batch.values, like=batch)


def test_per_record_output_reaches_child_as_one_batch_in_order():
    BatchSizes.sizes = []
    t = cs.Topology()
    t.add_source("in", "lines", key_serde=S, value_serde=S)
    t.add_processor("split", Split, parents="in")
    t.add_processor("sizes", BatchSizes, parents="split")
    t.add_sink("out", "words", parents="sizes", key_serde=S, value_serde=I64)
    with TopologyTestDriver(t) as d:
        d.pipe_batch("lines", [None, None, None], ["a b", "c", "d e f"])
        assert BatchSizes.sizes == [(6, [0, 0, 1, 2, 2, 2])]
        assert [r.key for r in d.output("words")] == ["a", "b", "c", "d", "e", "f"]


def wordcount(store=cs.stores.in_memory):
    t = cs.Topology()
    t.add_source("in", "lines", key_serde=S, value_serde=S)
    t.add_processor("split", Split, parents="in")
    t.add_store(store("counts", S, I64))
    t.add_processor("count", cs.processors.count("counts"), parents="split", stores=["counts"])
    t.add_sink("out", "counts", parents="count", key_serde=S, value_serde=I64)
    return t


def test_word_count_updates_per_record_and_store_state():
    with TopologyTestDriver(wordcount()) as d:
        d.pipe("lines", None, "the cat the hat", timestamp=10)
        d.pipe("lines", None, "the end", timestamp=20)
        assert [(r.key, r.value, r.timestamp) for r in d.output("counts")] == [
            ("the", 1, 10), ("cat", 1, 10), ("the", 2, 10), ("hat", 1, 10),
            ("the", 3, 20), ("end", 1, 20)]
        store = d.get_store("counts")
        assert store.get("the") == 3
        assert store.get_batch(["cat", "nope"]) == [1, None]
        assert list(store.all()) == [("cat", 1), ("end", 1), ("hat", 1), ("the", 3)]
        assert list(store.range("d", "i")) == [("end", 1), ("hat", 1)]
        assert store.approximate_num_entries() == 4


def test_stores_are_per_partition():
    with TopologyTestDriver(wordcount()) as d:
        d.pipe("lines", None, "x x", partition=0)
        d.pipe("lines", None, "x", partition=1)
        assert d.get_store("counts", 0).get("x") == 2
        assert d.get_store("counts", 1).get("x") == 1


def test_null_keys_are_not_counted():
    t = cs.Topology()
    t.add_source("in", "keys", key_serde=S, value_serde=S)
    t.add_store(cs.stores.in_memory("c", S, I64))
    t.add_processor("count", cs.processors.count("c"), parents="in", stores=["c"])
    t.add_sink("out", "o", parents="count", key_serde=S, value_serde=I64)
    with TopologyTestDriver(t) as d:
        d.pipe_batch("keys", ["a", None, "a"], ["", "", ""], timestamps=[1, 2, 3])
        assert [(r.key, r.value, r.timestamp) for r in d.output("o")] == [("a", 1, 1), ("a", 2, 3)]


class Router(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx

    def process(self, record):
        to = "even" if int(record.value) % 2 == 0 else "odd"
        self.ctx.forward(record.key, record.value, to=to)


def test_forward_to_named_child():
    t = cs.Topology()
    t.add_source("in", "n", key_serde=S, value_serde=S)
    t.add_processor("route", Router, parents="in")
    t.add_sink("even", "evens", parents="route", key_serde=S, value_serde=S)
    t.add_sink("odd", "odds", parents="route", key_serde=S, value_serde=S)
    with TopologyTestDriver(t) as d:
        d.pipe_batch("n", ["a", "b", "c", "d"], ["1", "2", "3", "4"])
        assert [r.value for r in d.output("evens")] == ["2", "4"]
        assert [r.value for r in d.output("odds")] == ["1", "3"]


class BadRoute(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx

    def process(self, record):
        self.ctx.forward(record.key, record.value, to="nowhere")


def test_forward_to_unknown_child_names_the_node():
    t = cs.Topology()
    t.add_source("in", "n")
    t.add_processor("route", BadRoute, parents="in")
    t.add_sink("out", "o", parents="route")
    with TopologyTestDriver(t) as d, \
            pytest.raises(ProcessingError, match="'route' forwards to 'nowhere'"):
        d.pipe("n", b"k", b"v")


class Punctuator(cs.Processor):
    fired = []

    def init(self, ctx):
        self.ctx = ctx
        ctx.schedule(100, cs.STREAM_TIME, self.on_stream)
        self.wall = ctx.schedule(1000, cs.WALL_CLOCK_TIME, self.on_wall)

    def process(self, record):
        pass

    def on_stream(self, ts):
        Punctuator.fired.append(("stream", ts))
        self.ctx.forward("tick", str(ts))

    def on_wall(self, ts):
        Punctuator.fired.append(("wall", ts))
        if ts >= 2000:
            self.wall.cancel()


def test_punctuation_stream_time_and_wall_clock():
    Punctuator.fired = []
    t = cs.Topology()
    t.add_source("in", "e", key_serde=S, value_serde=S)
    t.add_processor("p", Punctuator, parents="in")
    t.add_sink("out", "ticks", parents="p", key_serde=S, value_serde=S)
    with TopologyTestDriver(t) as d:
        d.pipe("e", "k", "v", timestamp=50)     # first stream time seen: next at 150
        d.pipe("e", "k", "v", timestamp=120)
        d.pipe("e", "k", "v", timestamp=150)    # fires at 150
        d.pipe("e", "k", "v", timestamp=420)    # fires once at 420 (missed intervals skipped)
        d.pipe("e", "k", "v", timestamp=100)    # out of order: stream time does not go back
        d.advance_wall_clock(999)
        d.advance_wall_clock(1)                 # 1000
        d.advance_wall_clock(1000)              # 2000, then cancelled
        d.advance_wall_clock(5000)
        assert Punctuator.fired == [("stream", 150), ("stream", 420),
                                    ("wall", 1000), ("wall", 2000)]
        assert [r.value for r in d.output("ticks")] == ["150", "420"]
        assert [r.timestamp for r in d.output("ticks")] == [150, 420]


def test_deserialization_error_names_topic_partition_offset_and_node():
    with TopologyTestDriver(wordcount()) as d:
        d.pipe("lines", None, "ok", partition=2)
        with pytest.raises(DeserializationError) as ei:
            d.pipe_raw("lines", [None, None], [b"fine", b"\xff\xfe"], partition=2)
        e = ei.value
        assert (e.topic, e.partition, e.offset, e.node, e.field) == ("lines", 2, 2, "in", "value")
        assert "topic 'lines' partition 2 offset 2" in str(e)


def test_skip_handler_drops_only_bad_records():
    handler = SkipHandler()
    with TopologyTestDriver(wordcount(), error_handler=handler) as d:
        d.pipe_raw("lines", [None, None, None], [b"a", b"\xff", b"a b"])
        assert [(r.key, r.value) for r in d.output("counts")] == [("a", 1), ("a", 2), ("b", 1)]
        assert sum(t.metrics["records_skipped"] for t in d.tasks().values()) == 1


def test_dead_letter_handler_keeps_original_bytes_and_coordinates():
    with TopologyTestDriver(wordcount(), error_handler=DeadLetterHandler("dlq")) as d:
        d.pipe_raw("lines", [b"k1", b"k2"], [b"\xffbad", b"good"], timestamps=[5, 6], partition=0)
        dlq = d.output_raw("dlq")
        assert len(dlq) == 1
        key, value, ts, headers, _ = dlq[0]
        assert (key, value, ts) == (b"k1", b"\xffbad", 5)
        h = dict(headers)
        assert h["cstreams.source.topic"] == b"lines"
        assert h["cstreams.source.partition"] == b"0"
        assert h["cstreams.source.offset"] == b"0"
        assert h["cstreams.source.node"] == b"in"
        assert b"UTF-8" in h["cstreams.error"]
        assert [(r.key, r.value) for r in d.output("counts")] == [("good", 1)]


class FailsOnX(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx

    def process(self, record):
        if record.value == "x":
            raise ValueError("no x please")
        self.ctx.forward(record.key, record.value)


class BatchFailsOnX(cs.BatchProcessor):
    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        if "x" in batch.values:
            raise ValueError("no x please")
        self.ctx.forward_batch(batch.keys, batch.values, like=batch)


@pytest.mark.parametrize("proc", [FailsOnX, BatchFailsOnX])
def test_processing_error_fail_and_skip(proc):
    def topo():
        t = cs.Topology()
        t.add_source("in", "v", key_serde=S, value_serde=S)
        t.add_processor("picky", proc, parents="in")
        t.add_sink("out", "o", parents="picky", key_serde=S, value_serde=S)
        return t

    with TopologyTestDriver(topo()) as d:
        with pytest.raises(ProcessingError) as ei:
            d.pipe_batch("v", ["a", "b", "c"], ["1", "x", "2"], partition=1)
        assert ei.value.node == "picky" and ei.value.partition == 1
        assert "no x please" in str(ei.value)
        if proc is FailsOnX:
            assert ei.value.offset == 1
    with TopologyTestDriver(topo(), error_handler="skip") as d:
        d.pipe_batch("v", ["a", "b", "c"], ["1", "x", "2"])
        assert [r.value for r in d.output("o")] == ["1", "2"]
    with TopologyTestDriver(topo(), error_handler="dead-letter:bad") as d:
        d.pipe_batch("v", ["a", "b", "c"], ["1", "x", "2"])
        assert [r.value for r in d.output("o")] == ["1", "2"]
        assert [(k, v) for k, v, *_ in d.output_raw("bad")] == [(b"b", b"x")]


def test_headers_round_trip_and_sink_partitioner():
    t = cs.Topology()
    t.add_source("in", "h", key_serde=S, value_serde=S)
    t.add_processor("p", Recorder, parents="in")
    t.add_sink("out", "o", parents="p", key_serde=S, value_serde=S,
               partitioner=lambda k, v, n: int(v) % n)
    with TopologyTestDriver(t, partitions={"o": 4}) as d:
        d.pipe_batch("h", ["a", "b"], ["5", "6"], headers=[[("x", b"1")], None])
        out = d.output("o")
        assert [(r.headers, r.partition) for r in out] == [([("x", b"1")], 1), (None, 2)]


def test_default_partitioner_is_kafkas_murmur2():
    t = cs.Topology()
    t.add_source("in", "h", key_serde=S, value_serde=S)
    t.add_processor("p", Recorder, parents="in")
    t.add_sink("out", "o", parents="p", key_serde=S, value_serde=S)
    with TopologyTestDriver(t, partitions={"o": 10}) as d:
        # Partitions of these keys with Java's DefaultPartitioner on 10 partitions:
        # toPositive(murmur2(key)) % 10, murmur2("21") = -973932308 -> 973932308 ... etc.
        keys = ["21", "foobar", "abc"]
        d.pipe_batch("h", keys, ["v"] * 3)
        expected = [(-973932308 & 0x7FFFFFFF) % 10, (-790332482 & 0x7FFFFFFF) % 10,
                    479470107 % 10]
        assert [r.partition for r in d.output("o")] == expected


def test_sink_output_to_a_source_topic_is_processed_again():
    t = cs.Topology()
    t.add_source("in", "first", key_serde=S, value_serde=S)
    t.add_processor("p", Recorder, parents="in")
    t.add_sink("mid", "second", parents="p", key_serde=S, value_serde=S)
    t.add_source("in2", "second", key_serde=S, value_serde=S)
    t.add_store(cs.stores.in_memory("c", S, I64))
    t.add_processor("count", cs.processors.count("c"), parents="in2", stores=["c"])
    t.add_sink("out", "final", parents="count", key_serde=S, value_serde=I64)
    with TopologyTestDriver(t, partitions={"second": 2}) as d:
        d.pipe_batch("first", ["a", "b", "a"], ["", "", ""])
        assert d.output_as_dict("final") == {"a": 2, "b": 1}


def test_rocksdb_store_through_the_driver(tmp_path):
    pytest.importorskip("cstreams.stores.rocksdb_backend")
    with TopologyTestDriver(wordcount(cs.stores.rocksdb), state_dir=str(tmp_path)) as d:
        d.pipe("lines", None, "a b a")
        d.flush()
        assert list(d.get_store("counts").all()) == [("a", 2), ("b", 1)]
    assert (tmp_path / "test-driver" / "0_0" / "counts").is_dir()


def test_nodes_count_the_records_and_batches_they_receive():
    with TopologyTestDriver(wordcount()) as d:
        d.pipe_batch("lines", [None, None], ["a b", "c"])
        d.pipe("lines", None, "d e f")
        nodes = {n.name: (n.records, n.batches) for n in d.tasks()[(0, 0)].nodes}
        assert nodes == {"in": (3, 2), "split": (3, 2), "count": (6, 2), "out": (6, 2)}


def test_builtin_filter_and_flat_map_keep_timestamps_and_headers():
    t = cs.Topology()
    t.add_source("in", "i", key_serde=S, value_serde=S)
    t.add_processor("f", cs.processors.filter(lambda k, v: v != "drop"), parents="in")
    t.add_processor("fm", cs.processors.flat_map(lambda k, v: [(k, v), (k, v + "!")]),
                    parents="f")
    t.add_sink("out", "o", parents="fm", key_serde=S, value_serde=S)
    with TopologyTestDriver(t) as d:
        d.pipe_batch("i", ["a", "b", "c"], ["x", "drop", "y"], timestamps=[1, 2, 3],
                     headers=[[("h", b"1")], None, [("h", b"3")]])
        assert [(r.key, r.value, r.timestamp, r.headers) for r in d.output("o")] == [
            ("a", "x", 1, [("h", b"1")]), ("a", "x!", 1, [("h", b"1")]),
            ("c", "y", 3, [("h", b"3")]), ("c", "y!", 3, [("h", b"3")])]


class _Message:
    """What confluent-kafka's consume() returns, as the stream thread reads it."""

    def __init__(self, partition, offset):
        self._p, self._o = partition, offset

    def error(self):
        return None

    def topic(self):
        return "in"

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def key(self):
        return f"k{self._o}".encode()

    def value(self):
        return str(self._o).encode()

    def timestamp(self):
        return (1, 1000 + self._o)

    def headers(self):
        return None


def test_a_poll_of_10000_records_over_4_partitions_is_4_process_batch_calls():
    # DESIGN: batches are real. The stream thread's path: one consume() result, grouped by
    # partition, each group through its partition's task.
    from cstreams._impl import grouping
    from cstreams.internals.task import Task

    topo = cs.Topology()
    topo.add_source("in", topics=["in"])
    topo.add_processor("sizes", BatchSizes, parents=["in"])
    sub = topo.subtopologies[0]
    tasks = {p: Task(topo, sub, p, None) for p in range(4)}
    for task in tasks.values():
        task.init()
    polled = [_Message(i % 4, i // 4) for i in range(10_000)]    # partitions interleaved
    BatchSizes.sizes = []
    batches, errors = grouping.group_messages(polled)
    assert errors == []
    for batch in batches:
        tasks[batch.partition].process(batch)
    assert BatchSizes.sizes == [(2500, list(range(2500)))] * 4
