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

from cstreams import _impl
from cstreams._impl import produce as _produce

_rdkafka_log = logging.getLogger("cstreams.librdkafka")

PARTITION_EOF = KafkaError._PARTITION_EOF


def _with_logger(conf):
    conf = dict(conf)
    conf.setdefault("logger", _rdkafka_log)
    return conf


def make_consumer(conf) -> Consumer:
    return Consumer(_with_logger(conf))


_native_producer_type = None


def make_producer(conf):
    """confluent-kafka's Producer, or cstreams' native one (cstreams._core.native) when the
    native data path is in use: the same methods and errors, its produce loop in C. A
    producer whose settings only confluent-kafka's can take (a Python callback such as
    error_cb or stats_cb) stays on confluent-kafka's."""
    global _native_producer_type
    conf = _with_logger(conf)
    native = _impl.native_kafka()
    if native is not None:
        try:
            producer = native.NativeProducer(conf)
        except native.NativeUnavailable as e:
            _impl.native_producer_unavailable(str(e))
        else:
            _native_producer_type = type(producer)
            return producer
    return Producer(conf)


def produce_batch(producer, topic, **columns):
    """Produce a batch's columns (cstreams._pure.produce.produce_batch's keywords) through
    whichever producer ``producer`` is."""
    if type(producer) is _native_producer_type:
        return producer.produce_columns(topic, **columns)
    return _produce.produce_batch(producer, topic, **columns)


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
    reports, its Consumer type, confluent-kafka's version, its KafkaError and KafkaException
    types)."""
    import confluent_kafka
    from confluent_kafka import cimpl

    return (cimpl.__file__, confluent_kafka.libversion()[1], cimpl.Consumer,
            confluent_kafka.version()[0], KafkaError, KafkaException)


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
    "produce_batch",
]
