"""Errors of one record through the TopologyTestDriver (no broker), on both twins: a null key
into a store, a value the sink cannot serialize, a BatchProcessor failing on one record of a
batch; each under fail (the error names topic, partition, offset and node), skip (exactly the
failing records dropped) and dead-letter (exactly they, as consumed, with the error headers).
"""

from __future__ import annotations

import pytest

import cstreams as cs
from cstreams import handlers
from cstreams.testing import TopologyTestDriver

BAD = (2, 4)
N = 6


class PutThenForward(cs.Processor):
    def init(self, ctx):
        self.ctx, self.store = ctx, ctx.get_store("last")

    def process(self, record):
        self.store.put(record.key, record.value)
        self.ctx.forward(record.key, str(record.value))


class FailOnBad(cs.BatchProcessor):
    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        if any(v in BAD for v in batch.values):
            raise ValueError("bad value in batch")
        self.ctx.forward_batch(list(batch.keys), [str(v) for v in batch.values])


CASES = {
    "null-key-into-store": (PutThenForward, True, cs.ProcessingError, "proc"),
    "unserializable-sink-value": (
        cs.processors.map_values(lambda v: object() if v in BAD else str(v)), False,
        cs.SerializationError, "out"),
    "failing-batch-processor": (FailOnBad, False, cs.ProcessingError, "proc"),
}


def topology(case):
    proc, with_store, _e, _n = CASES[case]
    topo = cs.Topology()
    topo.add_source("in", topics=["in"], key_serde=cs.serde.STRING, value_serde=cs.serde.INT64)
    topo.add_processor("proc", proc, parents=["in"])
    if with_store:
        topo.add_store(cs.stores.in_memory("last", cs.serde.STRING, cs.serde.INT64), ["proc"])
    topo.add_sink("out", topic="out", parents=["proc"], key_serde=cs.serde.STRING,
                  value_serde=cs.serde.STRING)
    return topo


def keys(case):
    return [None if (i in BAD and case == "null-key-into-store") else f"k{i}" for i in range(N)]


def pipe(driver, case):
    driver.pipe_batch("in", keys(case), list(range(N)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_fail_names_the_failing_record(case):
    with TopologyTestDriver(topology(case), error_handler="fail") as d:
        with pytest.raises(CASES[case][2]) as e:
            pipe(d, case)
    err = e.value
    assert (err.topic, err.partition, err.offset, err.node) == ("in", 0, BAD[0], CASES[case][3])
    assert f"topic 'in' partition 0 offset {BAD[0]}" in str(err)


@pytest.mark.parametrize("case", sorted(CASES))
def test_skip_drops_exactly_the_failing_records(case):
    handler = handlers.SkipHandler()
    with TopologyTestDriver(topology(case), error_handler=handler) as d:
        pipe(d, case)
        out = [(r.key, r.value) for r in d.read_output("out")]
        skipped = sum(t.metrics["records_skipped"] for t in d.tasks().values())
    assert out == [(f"k{i}", str(i)) for i in range(N) if i not in BAD]
    assert skipped == len(BAD)


@pytest.mark.parametrize("case", sorted(CASES))
def test_dead_letter_gets_exactly_the_failing_records(case):
    topo = topology(case)
    with TopologyTestDriver(topo, error_handler="dead-letter:dlq") as d:
        pipe(d, case)
        out = [(r.key, r.value) for r in d.read_output("out")]
        dead = d.output_raw("dlq")
    assert out == [(f"k{i}", str(i)) for i in range(N) if i not in BAD]
    assert len(dead) == len(BAD)
    for (_k, value, _ts, headers, _p), offset in zip(dead, BAD):
        h = dict(headers)
        assert h[handlers.OFFSET_HEADER] == str(offset).encode()
        assert h[handlers.NODE_HEADER] == CASES[case][3].encode()
        assert value == offset.to_bytes(8, "big", signed=True)


def test_errors_not_about_a_record_stop_under_skip():
    from cstreams.errors import StoreIOError

    class DiskGone(cs.Processor):
        def process(self, record):
            raise StoreIOError("RocksDB store 's' at /x: write failed: No space left")

    topo = cs.Topology()
    topo.add_source("in", topics=["in"])
    topo.add_processor("proc", DiskGone, parents=["in"])
    with TopologyTestDriver(topo, error_handler="skip") as d:
        with pytest.raises(StoreIOError):
            d.pipe("in", b"k", b"v")


@pytest.mark.parametrize("handler", ["skip", "dead-letter:dlq"])
def test_forward_misuse_stops_under_every_handler(handler):
    # A processor that forwards to a child it does not have is a bug, not a bad record:
    # skipping would drop every record, so it stops the app whatever the handler.
    class Route(cs.Processor):
        def init(self, ctx):
            self.ctx = ctx

        def process(self, record):
            self.ctx.forward(record.key, record.value, to="nowhere")

    topo = cs.Topology()
    topo.add_source("in", topics=["in"])
    topo.add_processor("route", Route, parents=["in"])
    with TopologyTestDriver(topo, error_handler=handler) as d:
        with pytest.raises(cs.ForwardError, match="'route' forwards to 'nowhere'"):
            d.pipe("in", b"k", b"v")
