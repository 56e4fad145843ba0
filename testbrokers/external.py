"""A cluster someone else runs: ``CSTREAMS_TEST_BOOTSTRAP=host:port[,host:port]``.

The tests create uniquely named topics on it and never stop it.  Tests that
stop, kill or pause the broker skip on it (it has no PID of ours).
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from .tansu import create_topics

__all__ = ["ExternalBroker"]


class ExternalBroker:
    kind = "external"
    pid = None

    def __init__(self, bootstrap_servers: str | None = None) -> None:
        bootstrap_servers = bootstrap_servers or os.environ.get("CSTREAMS_TEST_BOOTSTRAP")
        if not bootstrap_servers:
            raise RuntimeError("CSTREAMS_TEST_BROKER=external needs CSTREAMS_TEST_BOOTSTRAP="
                               "host:port (the cluster's bootstrap servers)")
        self.bootstrap_servers = bootstrap_servers

    def start(self, timeout: float = 30) -> "ExternalBroker":
        from confluent_kafka.admin import AdminClient  # lazy import

        md = AdminClient({"bootstrap.servers": self.bootstrap_servers}).list_topics(
            timeout=timeout)
        if not md.brokers:
            raise RuntimeError(f"no broker answers at {self.bootstrap_servers}")
        return self

    def stop(self, timeout: float = 0) -> None:
        pass

    close = stop

    @property
    def running(self) -> bool:
        return True

    def create_topics(self, names_or_specs: Iterable[Any] | str, partitions: int = 1,
                      config: Mapping[str, str] | None = None, timeout: float = 30) -> None:
        create_topics(self.bootstrap_servers, names_or_specs, partitions, config, timeout)

    def __repr__(self) -> str:
        return f"ExternalBroker({self.bootstrap_servers!r})"
