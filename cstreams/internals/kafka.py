"""The one module of cstreams that imports confluent_kafka.

The runtime builds its clients and reads Kafka's constants through these names, so the rest
of the package stays importable (and testable) without the client library loaded.
"""

from __future__ import annotations

import logging

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

_rdkafka_log = logging.getLogger("cstreams.librdkafka")

PARTITION_EOF = KafkaError._PARTITION_EOF


def _with_logger(conf):
    conf = dict(conf)
    conf.setdefault("logger", _rdkafka_log)
    return conf


def make_consumer(conf) -> Consumer:
    return Consumer(_with_logger(conf))


def make_producer(conf) -> Producer:
    return Producer(_with_logger(conf))


def producer_for(conf, on_delivery, transaction=None) -> Producer:
    """The instance's transactional producer when there is one (exactly-once: every writer
    shares it), else a producer of its own reporting deliveries to ``on_delivery``."""
    if transaction is not None:
        return transaction.producer
    return make_producer({**conf, "on_delivery": on_delivery})


_check_log = logging.getLogger("cstreams.librdkafka.check")
_check_log.addHandler(logging.NullHandler())
_check_log.propagate = False

_CHECK_CLIENT = {"consumer": Consumer, "producer": Producer, "admin": AdminClient}


def check_settings(kind, conf):
    """Build and discard a ``kind`` ("consumer", "producer" or "admin") client from ``conf``
    without its broker list, so that librdkafka validates every setting (unknown keys,
    invalid values, conflicts) without connecting anywhere. Returns librdkafka's complaint,
    or None."""
    conf = {k: v for k, v in conf.items() if k != "bootstrap.servers"}
    conf["logger"] = _check_log
    try:
        client = _CHECK_CLIENT[kind](conf)
    except (KafkaException, ValueError, TypeError) as e:
        err = e.args[0] if e.args else e
        return err.str() if hasattr(err, "str") else str(err)
    if kind == "consumer":
        client.close()
    del client
    return None


def native_client_info():
    """What the native data path (cstreams._core.native) needs to find confluent-kafka's
    librdkafka: (path of confluent-kafka's extension module, the librdkafka version it
    reports, its Consumer type, confluent-kafka's version)."""
    import confluent_kafka
    from confluent_kafka import cimpl

    return (cimpl.__file__, confluent_kafka.libversion()[1], cimpl.Consumer,
            confluent_kafka.version()[0])


def make_admin(conf) -> AdminClient:
    return AdminClient(_with_logger(conf))


def error_code(exc):
    """The KafkaError code inside a KafkaException (or a KafkaError), else None."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    code = getattr(err, "code", None)
    return code() if callable(code) else None


__all__ = [
    "AdminClient",
    "ConfigResource",
    "Consumer",
    "KafkaError",
    "KafkaException",
    "NewTopic",
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "PARTITION_EOF",
    "Producer",
    "TopicPartition",
    "check_settings",
    "error_code",
    "make_admin",
    "make_consumer",
    "make_producer",
    "native_client_info",
]
