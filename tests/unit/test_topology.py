"""Topology building, validation errors, sub-topologies and describe()."""

import pytest

import cstreams as cs
from cstreams.errors import TopologyError


class Pass(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx

    def process(self, record):
        self.ctx.forward(record.key, record.value)


def simple():
    t = cs.Topology()
    t.add_source("in", "words", key_serde=cs.serde.STRING, value_serde=cs.serde.STRING)
    t.add_processor("p", Pass, parents="in")
    t.add_sink("out", "out", parents="p")
    return t


def test_describe_kafka_streams_style():
    t = simple()
    t.add_store(cs.stores.in_memory("s"), processors=["p"])
    text = str(t.describe())
    assert text == (
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: in (topics: [words])\n"
        "      --> p\n"
        "    Processor: p (stores: [s])\n"
        "      --> out\n"
        "      <-- in\n"
        "    Sink: out (topic: out)\n"
        "      <-- p\n"
    )


def test_duplicate_node_name():
    t = simple()
    with pytest.raises(TopologyError, match="duplicate node name 'p'"):
        t.add_processor("p", Pass, parents="in")


def test_duplicate_store_name():
    t = simple()
    t.add_store(cs.stores.in_memory("s"), processors=["p"])
    with pytest.raises(TopologyError, match="duplicate store name 's'"):
        t.add_store(cs.stores.in_memory("s"))


def test_unknown_parent():
    t = simple()
    t.add_processor("q", Pass, parents="nope")
    with pytest.raises(TopologyError, match="node 'q' has an unknown parent 'nope'"):
        t.validate()


def test_cycle():
    t = cs.Topology()
    t.add_source("in", "a")
    t.add_processor("x", Pass, parents=["in", "z"])
    t.add_processor("y", Pass, parents="x")
    t.add_processor("z", Pass, parents="y")
    with pytest.raises(TopologyError, match="cycle: x -> y -> z -> x"):
        t.validate()


def test_missing_store():
    t = cs.Topology()
    t.add_source("in", "a")
    t.add_processor("p", Pass, parents="in", stores=["counts"])
    with pytest.raises(TopologyError, match="uses store 'counts', which was not added"):
        t.validate()


def test_unconnected_store():
    t = simple()
    t.add_store(cs.stores.in_memory("lonely"))
    with pytest.raises(TopologyError, match="store 'lonely' is not connected"):
        t.validate()


def test_sink_with_children():
    t = simple()
    t.add_processor("after", Pass, parents="out")
    with pytest.raises(TopologyError, match="sink 'out' cannot have children"):
        t.validate()


def test_instance_instead_of_factory():
    t = cs.Topology()
    t.add_source("in", "a")
    with pytest.raises(TopologyError, match="not an instance"):
        t.add_processor("p", Pass(), parents="in")


def test_not_a_processor_class():
    t = cs.Topology()
    t.add_source("in", "a")
    with pytest.raises(TopologyError, match="neither a cstreams.Processor"):
        t.add_processor("p", dict, parents="in")


def test_topic_read_twice():
    t = cs.Topology()
    t.add_source("a", "t")
    with pytest.raises(TopologyError, match="topic 't' is read by source 'a' already"):
        t.add_source("b", ["t"])


def test_source_needs_topics_or_pattern():
    t = cs.Topology()
    with pytest.raises(TopologyError, match="either topics or a pattern"):
        t.add_source("a")
    with pytest.raises(TopologyError, match="either topics or a pattern"):
        t.add_source("a", "t", pattern="x.*")


def test_no_source():
    with pytest.raises(TopologyError, match="no source"):
        cs.Topology().validate()


def test_processor_without_parent():
    t = cs.Topology()
    t.add_source("in", "a")
    with pytest.raises(TopologyError, match="needs at least one parent"):
        t.add_processor("p", Pass, parents=[])


def test_unknown_serde_name():
    t = cs.Topology()
    with pytest.raises(TopologyError, match="unknown serde name 'nope'"):
        t.add_source("in", "a", value_serde="nope")


def test_subtopologies_split_by_edges_and_joined_by_stores():
    t = cs.Topology()
    t.add_source("s1", "a")
    t.add_source("s2", "b")
    t.add_source("s3", "c")
    t.add_processor("p1", Pass, parents="s1")
    t.add_processor("p2", Pass, parents="s2")
    t.add_processor("p3", Pass, parents="s3")
    t.add_store(cs.stores.in_memory("shared"), processors=["p2", "p3"])
    subs = t.validate()
    assert [s.topics for s in subs] == [["a"], ["b", "c"]]
    assert subs[1].stores == ["shared"]
    assert t.subtopology_for_topic("c").id == 1
    assert t.subtopology_for_topic("zzz") is None


def test_pattern_source_describe_and_match():
    t = cs.Topology()
    t.add_source("in", pattern=r"events-\d+")
    t.add_processor("p", Pass, parents="in")
    assert "Source: in (pattern: events-\\d+)" in str(t.describe())
    assert t.subtopology_for_topic("events-12").id == 0
    assert t.subtopology_for_topic("events-x") is None


def test_factory_must_return_processor():
    t = cs.Topology()
    t.add_source("in", "a")
    t.add_processor("p", lambda: object(), parents="in")
    sub = t.validate()[0]
    with pytest.raises(TopologyError, match="factory of processor 'p' returned object"):
        t.build_nodes(sub, None)
