"""Client settings: what the runtime owns and how user settings reach each client.

``App(config={...})`` takes any librdkafka / confluent-kafka setting. A plain key applies to
every client the app builds (main consumer, restore consumer, producers, admin client); a key
prefixed ``consumer.``, ``restore.consumer.``, ``producer.`` or ``admin.`` applies to that
client only (``restore.consumer.`` wins over ``consumer.`` for the restore consumer).

Settings the runtime owns (a different user value is a ConfigurationError; the same value is
accepted):

main consumer
    group.id = application_id, enable.auto.commit = false, enable.auto.offset.store = false,
    partition.assignment.strategy = cooperative-sticky when every sub-topology reads one topic
    (incremental rebalancing, as Kafka Streams since 2.4: partitions that stay keep being
    processed while others move, and only the tasks that leave are committed and closed),
    else range (co-partitioned topics of a join or merge must land on one member, which
    only range guarantees; the rebalance is then eager), on_assign / on_revoke / on_lost
    (the task manager)
restore consumer
    group.id = <application_id>-restore (never joined: assign() only),
    enable.auto.commit = false, enable.auto.offset.store = false, enable.partition.eof = true
    (restoration stops at partition EOF, not at a possibly stale high watermark)
sink producer
    delivery.report.only.error = true and on_delivery (the collector: no Python call per
    acknowledged record, failures remembered)
changelog producer
    delivery.report.only.error = false and on_delivery (acknowledged changelog offsets feed the
    checkpoint files)

Defaults the runtime sets but a user may change: auto.offset.reset = earliest (as Kafka
Streams), client.id = <application_id>-<client>.

Under ``processing_guarantee="exactly_once_v2"`` there is no changelog producer: ONE
transactional producer (the ``producer`` client; ``changelog.producer.`` keys are an error)
carries sink, changelog and dead-letter records, and the runtime also owns:

main consumer and restore consumer
    isolation.level = read_committed
producer
    transactional.id = <application_id>-<instance id> unless the user sets transactional.id
    (see cstreams.runtime.transaction), enable.idempotence = true,
    delivery.report.only.error = false with no default on_delivery (confluent-kafka then
    calls into Python only for the records given a callback: the last changelog record of
    each store flush, whose offset feeds the checkpoint file)
and defaults transaction.timeout.ms = 10000 (as Kafka Streams under exactly-once: an
instance that dies with a transaction open holds read_committed readers back for at most
that long). Outside exactly-once a transactional.id is an error.
"""

from __future__ import annotations

from cstreams.errors import ConfigurationError

CLIENTS = ("consumer", "restore.consumer", "producer", "changelog.producer", "admin")
_PREFIXES = ("restore.consumer.", "changelog.producer.", "consumer.", "producer.", "admin.")

_CALLBACK_KEYS = {"on_assign", "on_revoke", "on_lost", "on_delivery"}


def _split(config):
    """{client: {key: value}} from the user's flat dict."""
    common, per = {}, {c: {} for c in CLIENTS}
    for key, value in (config or {}).items():
        if not isinstance(key, str):
            raise ConfigurationError(f"config keys must be strings, got {key!r}")
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                per[prefix[:-1]][key[len(prefix):]] = value
                break
        else:
            common[key] = value
    out = {}
    for client in CLIENTS:
        conf = dict(common)
        if client == "restore.consumer":
            conf.update(per["consumer"])
        if client == "changelog.producer":
            conf.update(per["producer"])
        conf.update(per[client])
        out[client] = conf
    return out


def _same(a, b):
    norm = lambda v: str(v).strip().lower() if isinstance(v, (str, bool)) else v  # noqa: E731
    return norm(a) == norm(b)


def _own(client, conf, owned):
    for key, value in owned.items():
        if key in conf and not _same(conf[key], value):
            raise ConfigurationError(
                f"setting {key!r}={conf[key]!r} conflicts with the runtime, which sets it to "
                f"{value!r} for the {client} (see cstreams.runtime.config)"
            )
        conf[key] = value
    return conf


EOS_TRANSACTION_TIMEOUT_MS = 10_000


def user_transactional_id(config):
    """The transactional.id the user set (plain or ``producer.``-prefixed), else None."""
    config = config or {}
    return config.get("producer.transactional.id", config.get("transactional.id"))


def build(application_id, bootstrap_servers, config=None, *, transactional_id=None,
          cooperative=False):
    """Per-client settings for the app: {client name: dict}. Raises ConfigurationError.

    ``transactional_id`` (exactly-once only) is the default transactional.id; a user's
    transactional.id setting wins over it. ``cooperative``: the main consumer uses the
    cooperative-sticky assignor (incremental rebalancing) instead of range."""
    if not application_id or not isinstance(application_id, str):
        raise ConfigurationError(f"application_id must be a non-empty string, got "
                                 f"{application_id!r}")
    if not bootstrap_servers:
        raise ConfigurationError("bootstrap_servers is required")
    confs = _split(config)
    for conf in confs.values():
        for key in _CALLBACK_KEYS & set(conf):
            raise ConfigurationError(
                f"setting {key!r} is owned by the runtime (it installs its own callbacks)")
    for client, conf in confs.items():
        if "bootstrap.servers" in conf and conf["bootstrap.servers"] != bootstrap_servers:
            raise ConfigurationError(
                "pass the broker list as bootstrap_servers=, not in config "
                f"({conf['bootstrap.servers']!r} != {bootstrap_servers!r})"
            )
        conf["bootstrap.servers"] = bootstrap_servers
        conf.setdefault("client.id", f"{application_id}-{client.replace('.', '-')}")
    consumer_owned = {
        "group.id": application_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "partition.assignment.strategy": "cooperative-sticky" if cooperative else "range",
    }
    confs["consumer"].setdefault("auto.offset.reset", "earliest")
    _own("consumer", confs["consumer"], consumer_owned)
    # The restore consumer never joins a group; a group.id (checked on the main consumer)
    # only has to be set.
    confs["restore.consumer"]["group.id"] = f"{application_id}-restore"
    restore_owned = {
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
    }
    confs["restore.consumer"].setdefault("auto.offset.reset", "earliest")
    # A consumer-only group setting makes no sense for an assign()-only consumer.
    for k in ("group.instance.id",):
        confs["restore.consumer"].pop(k, None)
    _own("restore consumer", confs["restore.consumer"], restore_owned)
    for client in ("consumer", "restore.consumer", "admin"):
        confs[client].pop("transactional.id", None)
        confs[client].pop("transaction.timeout.ms", None)
    if transactional_id is None:
        for client in ("producer", "changelog.producer"):
            if "transactional.id" in confs[client]:
                raise ConfigurationError(
                    "transactional.id is only used under processing_guarantee="
                    "'exactly_once_v2'; at-least-once producers are not transactional")
        _own("producer", confs["producer"], {"delivery.report.only.error": True})
        _own("changelog producer", confs["changelog.producer"],
             {"delivery.report.only.error": False})
    else:
        _exactly_once(confs, config, transactional_id)
    for client in ("producer", "changelog.producer", "admin"):
        for k in ("group.id", "auto.offset.reset", "session.timeout.ms", "max.poll.interval.ms",
                  "heartbeat.interval.ms", "enable.partition.eof", "fetch.wait.max.ms",
                  "isolation.level", "fetch.min.bytes"):
            if k not in consumer_owned:
                confs[client].pop(k, None)
    if transactional_id is not None:
        del confs["changelog.producer"]
    for k in ("linger.ms", "batch.size", "batch.num.messages", "acks", "compression.type",
              "queue.buffering.max.messages", "queue.buffering.max.kbytes",
              "message.timeout.ms", "enable.idempotence"):
        for client in ("consumer", "restore.consumer", "admin"):
            confs[client].pop(k, None)
    return confs


_KIND = {"consumer": "consumer", "restore.consumer": "consumer", "producer": "producer",
         "changelog.producer": "producer", "admin": "admin"}


def _culprits(kind, conf):
    """The keys librdkafka rejects on their own (it names an alias by its canonical name:
    linger.ms as queue.buffering.max.ms). Only on the error path: a client per key."""
    from cstreams import kafka

    base = {k: conf[k] for k in ("group.id",) if k in conf}
    return [k for k in conf if k not in base and k != "bootstrap.servers"
            and kafka.check_settings(kind, {**base, k: conf[k]}) is not None]


def check_clients(confs):
    """librdkafka's own validation of each client's settings, before the app starts: an
    unknown key or an invalid value is a ConfigurationError naming the key and the client,
    not a KafkaException from inside the first client the runtime happens to build."""
    from cstreams import kafka

    for client, conf in confs.items():
        why = kafka.check_settings(_KIND[client], conf)
        if why is None:
            continue
        keys = [k for k in conf if f'"{k}"' in why or f"`{k}`" in why] or _culprits(
            _KIND[client], conf)
        named = f"setting {keys[0]!r}" if keys else "a setting"
        raise ConfigurationError(
            f"{named} is not valid for the {client.replace('.', ' ')} (librdkafka: {why}); "
            f"prefix a key with 'consumer.', 'restore.consumer.', 'producer.', "
            f"'changelog.producer.' or 'admin.' to give it to one client only")


def _exactly_once(confs, config, transactional_id):
    bad = sorted(k for k in (config or {}) if k.startswith("changelog.producer."))
    if bad:
        raise ConfigurationError(
            f"under exactly_once_v2 one transactional producer carries changelog records too: "
            f"use 'producer.' settings instead of {bad}")
    for client, name in (("consumer", "consumer"), ("restore.consumer", "restore consumer")):
        _own(name, confs[client], {"isolation.level": "read_committed"})
    producer = confs["producer"]
    producer.setdefault("transactional.id", transactional_id)
    if not producer["transactional.id"] or not isinstance(producer["transactional.id"], str):
        raise ConfigurationError(f"transactional.id must be a non-empty string, got "
                                 f"{producer['transactional.id']!r}")
    producer.setdefault("transaction.timeout.ms", EOS_TRANSACTION_TIMEOUT_MS)
    _own("producer", producer, {"enable.idempotence": True,
                                "delivery.report.only.error": False})
