"""The README's schema registry examples run as written (on confluent-kafka's in-memory
registry instead of a registry at localhost) and compute what they say."""

from __future__ import annotations

import json
import pathlib
import re
import sys
import uuid

import pytest

pytest.importorskip("confluent_kafka.schema_registry")
pytest.importorskip("fastavro")
pytest.importorskip("google.protobuf")
pytest.importorskip("jsonschema")

from confluent_kafka.schema_registry.avro import AvroSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

from cstreams.schema_registry import SchemaRegistry  # noqa: E402
from cstreams.testing import TopologyTestDriver  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
REGISTRY_LINE = 'REGISTRY = "http://localhost:8081"'


@pytest.fixture
def readme():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Schema registry serdes"):]
    section = section[:section.index("\n## ")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 3 and REGISTRY_LINE in blocks[0]
    url = f"mock://{uuid.uuid4().hex}"
    src = "\n".join(blocks).replace(REGISTRY_LINE, f"REGISTRY = {url!r}")
    namespace: dict = {}
    sys.path.insert(0, str(ROOT))
    try:
        exec(compile(src, "README.md", "exec"), namespace)
    finally:
        sys.path.remove(str(ROOT))
    namespace["url"] = url
    return namespace


def test_avro_example_filters_and_reads_older_records(readme):
    with TopologyTestDriver(readme["avro_topo"]) as d:
        d.pipe_batch("orders", ["a", "b"], [{"id": "a", "amount": 50, "note": ""},
                                            {"id": "b", "amount": 150, "note": "gift"}])
        # A record written with the schema's older version (no note) by confluent-kafka.
        v1 = dict(readme["ORDER"], fields=readme["ORDER"]["fields"][:2])
        old = AvroSerializer(SchemaRegistry.of(readme["url"]).client, json.dumps(v1))
        d.pipe_raw("orders", [b"c"], [old({"id": "c", "amount": 300},
                                          SerializationContext("orders", MessageField.VALUE))])
        assert [(r.key, r.value) for r in d.output("big-orders")] == [
            ("b", {"id": "b", "amount": 150, "note": "gift"}),
            ("c", {"id": "c", "amount": 300, "note": ""})]
    assert "big-orders-value" in SchemaRegistry.of(readme["url"]).client.get_subjects()


def test_protobuf_and_json_schema_examples(readme):
    Order = readme["Order"]
    with TopologyTestDriver(readme["protobuf_topo"]) as d:
        d.pipe("orders-pb", "a", Order(id="a", user="ann", amount=3))
        assert [r.value for r in d.output("orders-pb-upper")] == [
            Order(id="a", user="ANN", amount=3)]
    with TopologyTestDriver(readme["json_topo"]) as d:
        d.pipe("orders-js", "a", {"id": "a", "amount": 7})
        assert [r.value for r in d.output("orders-js-cents")] == [{"id": "a", "amount": 700}]
