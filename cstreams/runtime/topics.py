"""Broker metadata at start: source topics exist and are co-partitioned, sink topics exist,
changelog topics are created (compacted, one partition per task) when missing."""

from __future__ import annotations

import logging
import time

from cstreams.errors import (
    BrokerUnavailableError,
    CopartitioningError,
    MissingTopicsError,
)
from cstreams.internals import kafka

log = logging.getLogger("cstreams.topics")


def fetch_metadata(admin, bootstrap_servers, timeout):
    """Cluster metadata, or BrokerUnavailableError within ``timeout`` seconds."""
    try:
        return admin.list_topics(timeout=timeout)
    except kafka.KafkaException as e:
        raise BrokerUnavailableError(
            f"cannot reach the Kafka cluster at {bootstrap_servers!r} within {timeout:g} s: "
            f"{e.args[0] if e.args else e}"
        ) from None


def partition_count(md, topic):
    tm = md.topics.get(topic)
    if tm is None or tm.error is not None or not tm.partitions:
        return None
    return len(tm.partitions)


def source_partitions(topology, md):
    """{sub-topology id: partition count}; raises on missing or non co-partitioned sources."""
    missing, counts = [], {}
    for sub in topology.subtopologies:
        per_topic = {}
        for t in sub.topics:
            n = partition_count(md, t)
            if n is None:
                missing.append(t)
            else:
                per_topic[t] = n
        for pattern in sub.patterns:
            for t in md.topics:
                if pattern.fullmatch(t) and not t.startswith("__"):
                    n = partition_count(md, t)
                    if n is not None:
                        per_topic[t] = n
        if len(set(per_topic.values())) > 1:
            raise CopartitioningError(
                f"the sources of sub-topology {sub.id} must have equal partition counts "
                f"(they are processed as one task per partition), but the broker reports "
                + ", ".join(f"{t}: {n}" for t, n in sorted(per_topic.items()))
                + "; give the topics equal counts, or repartition one side (KStream."
                "repartition(), whose topic gets the other side's count)"
            )
        if per_topic:
            counts[sub.id] = next(iter(per_topic.values()))
    if missing:
        raise MissingTopicsError(
            f"source topic(s) missing on the broker: {', '.join(sorted(missing))}; create them "
            f"before starting the app"
        )
    return counts


def check_output_topics(topics, md):
    missing = sorted(t for t in topics if partition_count(md, t) is None)
    if missing:
        raise MissingTopicsError(
            f"output topic(s) missing on the broker: {', '.join(missing)}; create them before "
            f"starting the app"
        )
    return {t: partition_count(md, t) for t in topics}


def changelog_specs(topology, application_id, counts):
    """[(changelog topic, partitions, topic config)] for every logged store."""
    out = []
    for sub in topology.subtopologies:
        for name in sub.stores:
            spec = topology.store_spec(name)
            if not spec.logging or sub.id not in counts or spec.source_changelog is not None:
                continue
            cfg = {"cleanup.policy": "compact"}
            cfg.update({k: str(v) for k, v in spec.changelog_config.items()})
            out.append((spec.changelog_topic(application_id), counts[sub.id], cfg))
    return out


def internal_topic_specs(topology, md):
    """[(internal topic, partitions, topic config)]: repartition topics sized as the
    largest partition count of the sub-topologies writing to them (Kafka Streams' rule)."""
    internal = set(topology.internal_topics())

    def external(sub):
        found = [partition_count(md, t) for t in sub.topics if t not in internal]
        for pattern in sub.patterns:
            found += [partition_count(md, t) for t in md.topics
                      if pattern.fullmatch(t) and not t.startswith("__")]
        found = [n for n in found if n]
        return max(found) if found else None

    return [(t, n, {}) for t, n in topology.internal_topic_partitions(external).items()
            if n is not None]


def ensure_changelogs(admin, specs, md, *, replication_factor=-1, timeout=30.0,
                      what="changelog"):
    """Create missing changelog (or ``what``) topics; check the partition count of existing
    ones."""
    to_create = []
    for topic, n, cfg in specs:
        have = partition_count(md, topic)
        if have is None:
            to_create.append(kafka.NewTopic(topic, num_partitions=n,
                                            replication_factor=replication_factor, config=cfg))
        elif have != n:
            raise CopartitioningError(
                f"{what} topic {topic!r} has {have} partitions but its source topics have "
                f"{n}: delete it (the state is rebuilt) or restore the source partition count"
            )
    if not to_create:
        return
    futures = admin.create_topics(to_create, operation_timeout=timeout, request_timeout=timeout)
    for topic, fut in futures.items():
        try:
            fut.result(timeout=timeout)
            log.info("created %s topic %s", what, topic)
        except kafka.KafkaException as e:
            if kafka.error_code(e) != kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                raise MissingTopicsError(f"cannot create {what} topic {topic!r}: {e}") from e
    # Wait until metadata shows them, so the restore consumer and producer find them.
    deadline = time.monotonic() + timeout
    want = {t.topic: t.num_partitions for t in to_create}
    while True:
        md = admin.list_topics(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
        if all(partition_count(md, t) == n for t, n in want.items()):
            return
        if time.monotonic() > deadline:
            raise MissingTopicsError(f"{what} topics not visible after {timeout:g} s: "
                                     f"{sorted(want)}")
        time.sleep(0.1)
