"""Malformed records under each error handler, and an unreachable broker."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("confluent_kafka")

from helpers import app_config, committed, consume_all, int64, produce, wait_for  # noqa: E402

import cstreams as cs  # noqa: E402
from cstreams import handlers  # noqa: E402
from cstreams.devbroker import free_port  # noqa: E402
from cstreams.errors import BrokerUnavailableError  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def passthrough(in_topic, out_topic):
    topo = cs.Topology()
    topo.add_source("in", topics=[in_topic], key_serde=cs.serde.STRING,
                    value_serde=cs.serde.INT64)
    topo.add_processor("double", cs.processors.map_values(lambda v: v * 2), parents=["in"])
    topo.add_sink("out", topic=out_topic, parents=["double"], key_serde=cs.serde.STRING,
                  value_serde=cs.serde.INT64)
    return topo


def good(i):
    return (f"k{i}".encode(), i.to_bytes(8, "big", signed=True))


BAD = {5: b"bad", 8: b"\x00\x01"}     # offsets (in a 1-partition topic) of malformed values


def records():
    return [(f"k{i}".encode(), BAD[i]) if i in BAD else good(i) for i in range(12)]


def start(broker, topo, tmp_path, handler, app_id):
    app = cs.App(topo, application_id=app_id, bootstrap_servers=broker.bootstrap_servers,
                 state_dir=str(tmp_path), commit_interval_ms=200, error_handler=handler,
                 config=app_config())
    return app.start()


def test_fail_stops_with_coordinates_and_commits_nothing_past_it(broker, topic_factory,
                                                                 tmp_path):
    src, out = topic_factory("in", 1), topic_factory("out", 1)
    app_id = f"fail-{src}"
    recs = records()
    app = start(broker, passthrough(src, out), tmp_path, "fail", app_id)
    try:
        produce(broker.bootstrap_servers, src, recs[:5], partition=0)
        wait_for(lambda: committed(broker.bootstrap_servers, app_id, src, 1)[0] == 5,
                 what="the good records committed")
        produce(broker.bootstrap_servers, src, recs[5:], partition=0)
        wait_for(lambda: not app.running, what="the app to stop on the bad record")
    finally:
        with pytest.raises(cs.DeserializationError) as info:
            app.close()
    e = info.value
    assert (e.topic, e.partition, e.offset) == (src, 0, 5)
    assert f"topic {src!r} partition 0 offset 5" in str(e)
    assert committed(broker.bootstrap_servers, app_id, src, 1)[0] == 5


def test_skip_drops_exactly_the_bad_records(broker, topic_factory, tmp_path):
    src, out = topic_factory("in", 1), topic_factory("out", 1)
    produce(broker.bootstrap_servers, src, records(), partition=0)
    app = start(broker, passthrough(src, out), tmp_path, "skip", f"skip-{src}")
    try:
        got = consume_all(broker.bootstrap_servers, out, until=lambda r: len(r) >= 10)
        wait_for(lambda: committed(broker.bootstrap_servers, f"skip-{src}", src, 1)[0] == 12,
                 what="every offset committed")
        m = app.metrics()
    finally:
        app.close()
    assert [(k.decode(), int64(v)) for _p, _o, k, v, _h in got] == [
        (f"k{i}", 2 * i) for i in range(12) if i not in BAD]
    assert m["records_skipped"] == 2
    assert m["tasks"]["0_0"]["records_skipped"] == 2


def test_dead_letter_topic_holds_original_bytes_and_error_headers(broker, topic_factory,
                                                                  tmp_path):
    src, out, dlq = topic_factory("in", 1), topic_factory("out", 1), topic_factory("dlq", 1)
    recs = records()
    produce(broker.bootstrap_servers, src, recs, partition=0)
    app = start(broker, passthrough(src, out), tmp_path, f"dead-letter:{dlq}", f"dlq-{src}")
    try:
        dead = consume_all(broker.bootstrap_servers, dlq, until=lambda r: len(r) >= 2)
        got = consume_all(broker.bootstrap_servers, out, until=lambda r: len(r) >= 10)
        wait_for(lambda: committed(broker.bootstrap_servers, f"dlq-{src}", src, 1)[0] == 12,
                 what="every offset committed")
        m = app.metrics()
    finally:
        app.close()
    assert len(got) == 10
    assert [(k, v) for _p, _o, k, v, _h in dead] == [recs[5], recs[8]]
    for (_p, _o, _k, _v, headers), offset in zip(dead, (5, 8)):
        h = dict(headers)
        assert h[handlers.TOPIC_HEADER] == src.encode()
        assert h[handlers.PARTITION_HEADER] == b"0"
        assert h[handlers.OFFSET_HEADER] == str(offset).encode()
        assert h[handlers.NODE_HEADER] == b"in"
        assert b"cannot deserialize the value" in h[handlers.ERROR_HEADER]
    assert m["records_dead_lettered"] == 2


def test_unreachable_broker_is_a_clear_error_in_bounded_time(tmp_path):
    topo = passthrough("in", "out")
    port = free_port()
    app = cs.App(topo, application_id="unreachable", bootstrap_servers=f"127.0.0.1:{port}",
                 state_dir=str(tmp_path), metadata_timeout_s=3)
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=f"127.0.0.1:{port}"):
        app.start()
    assert time.monotonic() - t0 < 15
    assert isinstance(BrokerUnavailableError("x"), cs.CStreamsError)


def test_missing_source_topics_are_named(broker, tmp_path):
    topo = passthrough("no-such-topic-a", "no-such-out")
    app = cs.App(topo, application_id="missing", bootstrap_servers=broker.bootstrap_servers,
                 state_dir=str(tmp_path), metadata_timeout_s=10)
    with pytest.raises(cs.CStreamsError, match="no-such-topic-a"):
        app.start()


def test_sources_of_one_subtopology_must_be_copartitioned(broker, topic_factory, tmp_path):
    a, b, out = topic_factory("a", 2), topic_factory("b", 3), topic_factory("out", 1)
    topo = cs.Topology()
    topo.add_source("sa", topics=[a])
    topo.add_source("sb", topics=[b])
    topo.add_sink("o", topic=out, parents=["sa", "sb"])
    app = cs.App(topo, application_id=f"copart-{a}", bootstrap_servers=broker.bootstrap_servers,
                 state_dir=str(tmp_path))
    with pytest.raises(cs.CStreamsError, match=f"{a}: 2.*{b}: 3|{b}: 3.*{a}: 2"):
        app.start()
