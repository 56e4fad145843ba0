"""RecordCollector: delivery failures are remembered and fail the next commit (no broker:
the records time out against an address nobody listens on)."""

from __future__ import annotations

import pytest

pytest.importorskip("confluent_kafka")

from cstreams.devbroker import free_port  # noqa: E402
from cstreams.errors import ProductionError  # noqa: E402
from cstreams.runtime import config  # noqa: E402
from cstreams.runtime.collector import RecordCollector  # noqa: E402


def collector(handler="fail"):
    confs = config.build("unit", f"127.0.0.1:{free_port()}",
                         {"message.timeout.ms": 200, "log_level": 0})
    c = RecordCollector(confs["producer"], production_error_handler=handler)
    c.set_partition_counts({"out": 4})
    return c


def test_failed_delivery_fails_the_flush_naming_topic_and_partition():
    c = collector()
    assert c.partitions_for("out") == 4
    c.send_batch("out", [b"k1", b"k2"], [b"v1", None], [1000, 1001], None, [3, 3])
    assert c.sent == 2
    with pytest.raises(ProductionError, match=r"2 record\(s\) failed delivery; first: topic "
                                              r"'out' partition 3") as info:
        c.flush(10)
    assert (info.value.topic, info.value.partition) == ("out", 3)
    c.flush(1)      # reported once: the failure does not stick to later commits


def test_skip_handler_ignores_failures_and_counts_them():
    c = collector("skip")
    c.send_batch("out", [b"k"], [b"v"], [5], [[("h", b"x")]], [0])
    c.flush(10)
    assert c.ignored_failures == 1


def test_callable_handler_decides():
    seen = []
    c = collector(lambda e: seen.append(e) or False)
    c.send_batch("out", [None], [b"v"], [5], None, [-1])
    with pytest.raises(ProductionError):
        c.flush(10)
    assert len(seen) == 1 and isinstance(seen[0], ProductionError)
