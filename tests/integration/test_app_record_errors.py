"""Every error of one record reaches the error handler, over the broker: a null key into a
store, a value the sink cannot serialize, a record over the producer's size limit, and a
BatchProcessor that fails on one record, each under fail, skip and dead-letter, with exact
counts of good records and dead letters and nothing committed past a failure."""

from __future__ import annotations

import pytest

pytest.importorskip("confluent_kafka")

from helpers import app_config, committed, consume_all, produce, wait_for  # noqa: E402

import cstreams as cs  # noqa: E402
from cstreams import handlers  # noqa: E402
from cstreams.record_errors import RecordProductionError  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

N = 12
BAD = (5, 8)        # offsets (1-partition input) of the records that fail


class PutThenForward(cs.Processor):
    """Stores each value under its key, then forwards it doubled."""

    def init(self, ctx):
        self.ctx, self.store = ctx, ctx.get_store("last")

    def process(self, record):
        self.store.put(record.key, record.value)
        self.ctx.forward(record.key, str(record.value * 2))


class FailOnBad(cs.BatchProcessor):
    """Fails on any batch holding a bad value: only a record-at-a-time re-run finds it."""

    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        if any(v in BAD for v in batch.values):
            raise ValueError("bad value in batch")
        self.ctx.forward_batch(list(batch.keys), [str(v * 2) for v in batch.values])


def _double_or(bad_value):
    return cs.processors.map_values(lambda v: bad_value if v in BAD else str(v * 2))


CASES = {
    # case: (processor factory, stores, key of a bad record, producer settings, error class)
    "null-key-into-store": (PutThenForward, True, None, {}, cs.ProcessingError),
    "unserializable-sink-value": (_double_or(object()), False, b"k", {},
                                  cs.SerializationError),
    "oversized-record": (_double_or("x" * 5000), False, b"k",
                         {"producer.message.max.bytes": 2000}, RecordProductionError),
    "failing-batch-processor": (FailOnBad, False, b"k", {}, cs.ProcessingError),
}


def topology(case, src, out):
    proc, with_store, _k, _c, _e = CASES[case]
    topo = cs.Topology()
    topo.add_source("in", topics=[src], key_serde=cs.serde.STRING, value_serde=cs.serde.INT64)
    topo.add_processor("proc", proc, parents=["in"])
    if with_store:
        topo.add_store(cs.stores.rocksdb("last", cs.serde.STRING, cs.serde.INT64), ["proc"])
    topo.add_sink("out", topic=out, parents=["proc"], key_serde=cs.serde.STRING,
                  value_serde=cs.serde.STRING)
    return topo


def records(case):
    bad_key = CASES[case][2]
    out = []
    for i in range(N):
        key = (bad_key if bad_key is None else f"k{i}".encode()) if i in BAD else \
            f"k{i}".encode()
        out.append((key, i.to_bytes(8, "big", signed=True)))
    return out


def start(broker, case, src, out, tmp_path, handler, app_id):
    app = cs.App(topology(case, src, out), application_id=app_id,
                 bootstrap_servers=broker.bootstrap_servers, state_dir=str(tmp_path),
                 commit_interval_ms=200, error_handler=handler,
                 config=app_config(**CASES[case][3]))
    return app.start()


def expected_output():
    return [(f"k{i}", str(2 * i)) for i in range(N) if i not in BAD]


@pytest.mark.parametrize("case", sorted(CASES))
def test_fail_stops_naming_the_record_and_commits_nothing_past_it(broker, topic_factory,
                                                                  tmp_path, case):
    src, out = topic_factory("in", 1), topic_factory("out", 1)
    app_id = f"fail-{case}-{src}"
    recs = records(case)
    app = start(broker, case, src, out, tmp_path, "fail", app_id)
    try:
        produce(broker.bootstrap_servers, src, recs[:5], partition=0)
        wait_for(lambda: committed(broker.bootstrap_servers, app_id, src, 1)[0] == 5,
                 what="the good records committed")
        produce(broker.bootstrap_servers, src, recs[5:], partition=0)
        wait_for(lambda: not app.running, what="the app to stop on the bad record")
    finally:
        with pytest.raises(CASES[case][4]) as info:
            app.close()
    e = info.value
    assert (e.topic, e.partition, e.offset) == (src, 0, 5)
    assert e.node in ("proc", "out")
    assert f"topic {src!r} partition 0 offset 5" in str(e)
    assert committed(broker.bootstrap_servers, app_id, src, 1)[0] == 5


@pytest.mark.parametrize("case", sorted(CASES))
def test_skip_drops_exactly_the_failing_records(broker, topic_factory, tmp_path, case):
    src, out = topic_factory("in", 1), topic_factory("out", 1)
    app_id = f"skip-{case}-{src}"
    produce(broker.bootstrap_servers, src, records(case), partition=0)
    app = start(broker, case, src, out, tmp_path, "skip", app_id)
    try:
        wait_for(lambda: committed(broker.bootstrap_servers, app_id, src, 1)[0] == N,
                 what="every offset committed")
        got = consume_all(broker.bootstrap_servers, out, idle=1.0,
                          until=lambda r: len(r) >= N - len(BAD))
        m = app.metrics()
    finally:
        app.close()
    assert [(k.decode(), v.decode()) for _p, _o, k, v, _h in got] == expected_output()
    assert m["records_skipped"] == len(BAD)


@pytest.mark.parametrize("case", sorted(CASES))
def test_dead_letter_gets_exactly_the_failing_records(broker, topic_factory, tmp_path, case):
    src, out, dlq = topic_factory("in", 1), topic_factory("out", 1), topic_factory("dlq", 1)
    app_id = f"dlq-{case}-{src}"
    recs = records(case)
    produce(broker.bootstrap_servers, src, recs, partition=0)
    app = start(broker, case, src, out, tmp_path, f"dead-letter:{dlq}", app_id)
    try:
        wait_for(lambda: committed(broker.bootstrap_servers, app_id, src, 1)[0] == N,
                 what="every offset committed")
        got = consume_all(broker.bootstrap_servers, out, idle=1.0,
                          until=lambda r: len(r) >= N - len(BAD))
        dead = consume_all(broker.bootstrap_servers, dlq, idle=1.0,
                           until=lambda r: len(r) >= len(BAD))
        m = app.metrics()
    finally:
        app.close()
    assert [(k.decode(), v.decode()) for _p, _o, k, v, _h in got] == expected_output()
    assert [(k, v) for _p, _o, k, v, _h in dead] == [recs[i] for i in BAD]
    for (_p, _o, _k, _v, headers), offset in zip(dead, BAD):
        h = dict(headers)
        assert h[handlers.TOPIC_HEADER] == src.encode()
        assert h[handlers.OFFSET_HEADER] == str(offset).encode()
        assert h[handlers.NODE_HEADER] in (b"proc", b"out")
    assert m["records_dead_lettered"] == len(BAD)


class BadInit(cs.Processor):
    def init(self, ctx):
        raise RuntimeError("cannot reach the lookup service")

    def process(self, record):
        pass


def test_init_failure_stops_the_app_naming_node_and_task(broker, topic_factory, tmp_path):
    src = topic_factory("in", 2)
    topo = cs.Topology()
    topo.add_source("in", topics=[src])
    topo.add_processor("enrich", BadInit, parents=["in"])
    app = cs.App(topo, application_id=f"badinit-{src}",
                 bootstrap_servers=broker.bootstrap_servers, state_dir=str(tmp_path),
                 config=app_config()).start()
    try:
        wait_for(lambda: not app.running, timeout=60, what="the app to stop on init()")
    finally:
        with pytest.raises(cs.ProcessingError) as info:
            app.close()
    msg = str(info.value)
    assert info.value.node == "enrich" and "init()" in msg
    assert "task 0_0" in msg or "task 0_1" in msg
    assert "cannot reach the lookup service" in msg
