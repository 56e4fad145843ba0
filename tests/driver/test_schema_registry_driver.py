"""Schema registry serdes in topologies through the TopologyTestDriver: each format round
trips from a source through a processor and a store to a sink, and bad records reach every
error handler naming topic, partition and offset."""

from __future__ import annotations

import pathlib
import sys
import uuid

import pytest

pytest.importorskip("confluent_kafka.schema_registry")
pytest.importorskip("fastavro")
pytest.importorskip("google.protobuf")
pytest.importorskip("jsonschema")

import cstreams as cs  # noqa: E402
from cstreams import handlers  # noqa: E402
from cstreams.testing import TopologyTestDriver  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from examples.orders import ORDER_AVRO as ORDER  # noqa: E402
from examples.orders import Order, new_order, order_serde  # noqa: E402

sys.path.remove(str(ROOT))

TOTAL = {"type": "record", "name": "Total", "namespace": "shop",
         "fields": [{"name": "user", "type": "string"}, {"name": "total", "type": "long"}]}
TOTAL_JSON = {"title": "Total", "type": "object",
              "properties": {"user": {"type": "string"}, "total": {"type": "integer"}},
              "required": ["user", "total"]}


class Totals(cs.BatchProcessor):
    """Sums each user's amounts in a store whose values use the same registry serde."""

    def __init__(self, fmt):
        self.fmt = fmt

    def init(self, ctx):
        self.ctx, self.store = ctx, ctx.get_store("totals")

    def process_batch(self, batch):
        users, outs = [], []
        for o in batch.values:
            user, amount = (o.user, o.amount) if self.fmt == "protobuf" else (o["user"],
                                                                               o["amount"])
            prev = self.store.get(user)
            if self.fmt == "protobuf":
                total = Order(id="total", user=user, amount=amount + (prev.amount if prev
                                                                      else 0))
            else:
                total = {"user": user, "total": amount + (prev["total"] if prev else 0)}
            self.store.put(user, total)
            users.append(user)
            outs.append(total)
        self.ctx.forward_batch(users, outs)


def serdes(fmt, url):
    """(order serde, total serde): protobuf totals reuse the Order message."""
    if fmt == "avro":
        return order_serde(fmt, url), cs.serde.avro(url, TOTAL)
    if fmt == "json_schema":
        return order_serde(fmt, url), cs.serde.json_schema(url, TOTAL_JSON)
    return order_serde(fmt, url), order_serde(fmt, url)


def make_order(fmt, i, user, amount):
    return new_order(fmt, f"o{i}", user, amount)


def total_of(fmt, v):
    return v.amount if fmt == "protobuf" else v["total"]


def topology(fmt, url):
    order_serde, total_serde = serdes(fmt, url)
    topo = cs.Topology()
    topo.add_source("orders", topics=["orders"], key_serde=cs.serde.STRING,
                    value_serde=order_serde)
    topo.add_processor("totals", lambda: Totals(fmt), parents=["orders"], stores=["totals"])
    topo.add_store(cs.stores.rocksdb("totals", key_serde=cs.serde.STRING,
                                     value_serde=total_serde))
    topo.add_sink("out", topic="totals", parents=["totals"], key_serde=cs.serde.STRING,
                  value_serde=total_serde)
    return topo


FORMATS = ["avro", "json_schema", "protobuf"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_through_source_store_and_sink(fmt):
    url = f"mock://{uuid.uuid4().hex}"
    users = ["ann", "bob", "cy"]
    with TopologyTestDriver(topology(fmt, url)) as d:
        expected = {}
        for start in range(0, 60, 20):
            keys, values = [], []
            for i in range(start, start + 20):
                user, amount = users[i % 3], i * 7 - 40
                expected[user] = expected.get(user, 0) + amount
                keys.append(f"o{i}")
                values.append(make_order(fmt, i, user, amount))
            d.pipe_batch("orders", keys, values)
        out = d.output("totals")
        assert len(out) == 60
        assert {k: total_of(fmt, v) for k, v in d.output_as_dict("totals").items()} == expected
        # The sink wrote the wire format under the topic's subject; the store kept its own.
        raw = d.output_raw("totals")[0][1]
        assert raw[0] == 0
        store = d.get_store("totals")
        assert total_of(fmt, store.get("ann")) == expected["ann"]
    subjects = cs.serde.avro(url).registry.client.get_subjects()
    assert {"orders-value", "totals-value"} <= set(subjects)


def bad_records(fmt, url):
    """Offsets 0..5 of a 1-partition topic, 2 (wrong magic byte) and 4 (unknown schema id)
    bad, 5 a payload that does not match its schema."""
    order_serde, _ = serdes(fmt, url)
    order_serde = order_serde.bind("orders", False)
    good = order_serde.serialize_batch([make_order(fmt, i, "ann", 10) for i in range(6)])
    values = list(good)
    values[2] = b"\x01" + good[2][1:]
    values[4] = b"\x00\x00\x00\x10\x00" + good[4][5:]
    values[5] = good[5][:5] + {"avro": b"\x08ab", "json_schema": b"[1]",
                               "protobuf": b"\x00\x0a\x05ab"}[fmt]
    return [f"o{i}".encode() for i in range(6)], values


@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_records_fail_with_their_coordinates(fmt):
    url = f"mock://{uuid.uuid4().hex}"
    keys, values = bad_records(fmt, url)
    with TopologyTestDriver(topology(fmt, url), error_handler="fail") as d:
        with pytest.raises(cs.DeserializationError) as e:
            d.pipe_raw("orders", keys, values)
    assert (e.value.topic, e.value.partition, e.value.offset, e.value.node) == (
        "orders", 0, 2, "orders")
    assert "wrong magic byte" in str(e.value)
    assert "topic 'orders' partition 0 offset 2" in str(e.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_records_are_skipped_and_counted(fmt):
    url = f"mock://{uuid.uuid4().hex}"
    keys, values = bad_records(fmt, url)
    with TopologyTestDriver(topology(fmt, url), error_handler="skip") as d:
        d.pipe_raw("orders", keys, values)
        assert [r.key for r in d.output("totals")] == ["ann", "ann", "ann"]
        assert total_of(fmt, d.output_as_dict("totals")["ann"]) == 30
        assert sum(t.metrics["records_skipped"] for t in d.tasks().values()) == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_records_go_to_the_dead_letter_topic_with_their_error(fmt):
    url = f"mock://{uuid.uuid4().hex}"
    keys, values = bad_records(fmt, url)
    with TopologyTestDriver(topology(fmt, url), error_handler="dead-letter:dlq") as d:
        d.pipe_raw("orders", keys, values)
        dead = d.output_raw("dlq")
    assert [v for _k, v, _t, _h, _p in dead] == [values[2], values[4], values[5]]
    errors = [dict(h)[handlers.ERROR_HEADER].decode() for _k, _v, _t, h, _p in dead]
    assert "wrong magic byte" in errors[0]
    assert "unknown schema id 4096" in errors[1]
    assert "does not match" in errors[2]
    assert [dict(h)[handlers.OFFSET_HEADER] for _k, _v, _t, h, _p in dead] == [
        b"2", b"4", b"5"]


def test_unreachable_registry_reaches_the_handler_naming_registry_and_schema_id():
    from cstreams.devbroker import free_port

    url = f"http://127.0.0.1:{free_port()}"
    topo = cs.Topology()
    topo.add_source("orders", topics=["orders"], key_serde=cs.serde.STRING,
                    value_serde=cs.serde.avro(url, ORDER, retries=1, retry_backoff_ms=10))
    topo.add_sink("out", topic="copy", parents=["orders"], key_serde=cs.serde.STRING,
                  value_serde=cs.serde.BYTES)
    with TopologyTestDriver(topo, error_handler="fail") as d:
        with pytest.raises(cs.DeserializationError) as e:
            d.pipe_raw("orders", [b"k"], [b"\x00\x00\x00\x00\x01\x02"])
    msg = str(e.value)
    assert (e.value.topic, e.value.offset) == ("orders", 0)
    assert url in msg and "unreachable" in msg and "schema id 1" in msg
    assert "after 2 attempts" in msg
