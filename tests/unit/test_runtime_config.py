"""Client settings: owned values, conflicts, per-client prefixes."""

from __future__ import annotations

import pytest

from cstreams.errors import ConfigurationError
from cstreams.runtime import config


def test_owned_settings_are_set():
    c = config.build("app", "h:1", {})
    assert c["consumer"]["group.id"] == "app"
    assert c["consumer"]["enable.auto.commit"] is False
    assert c["consumer"]["enable.auto.offset.store"] is False
    assert c["consumer"]["auto.offset.reset"] == "earliest"
    assert c["restore.consumer"]["enable.partition.eof"] is True
    assert c["restore.consumer"]["group.id"] == "app-restore"
    assert c["producer"]["delivery.report.only.error"] is True
    assert c["changelog.producer"]["delivery.report.only.error"] is False
    assert all(conf["bootstrap.servers"] == "h:1" for conf in c.values())


@pytest.mark.parametrize("key,value", [
    ("enable.auto.commit", True), ("group.id", "other"), ("enable.auto.offset.store", "true"),
    ("consumer.enable.auto.commit", "true"), ("producer.delivery.report.only.error", False),
    ("on_assign", print), ("bootstrap.servers", "elsewhere:9092"),
])
def test_conflicts_are_configuration_errors(key, value):
    with pytest.raises(ConfigurationError):
        config.build("app", "h:1", {key: value})


def test_same_value_as_owned_is_accepted():
    c = config.build("app", "h:1", {"enable.auto.commit": "false", "group.id": "app"})
    assert c["consumer"]["enable.auto.commit"] is False


def test_pass_through_and_prefixes():
    c = config.build("app", "h:1", {"session.timeout.ms": 6000, "linger.ms": 5,
                                    "producer.acks": "1", "consumer.fetch.min.bytes": 10,
                                    "restore.consumer.fetch.min.bytes": 1,
                                    "auto.offset.reset": "latest"})
    assert c["consumer"]["session.timeout.ms"] == 6000
    assert "session.timeout.ms" not in c["producer"]
    assert c["producer"]["linger.ms"] == 5 and "linger.ms" not in c["consumer"]
    assert c["producer"]["acks"] == "1" and c["changelog.producer"]["acks"] == "1"
    assert c["consumer"]["fetch.min.bytes"] == 10
    assert c["restore.consumer"]["fetch.min.bytes"] == 1
    assert c["consumer"]["auto.offset.reset"] == "latest"
