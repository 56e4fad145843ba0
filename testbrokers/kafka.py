"""A single-node Apache Kafka 4.x broker in KRaft combined mode, for tests.

The jars come from Maven Central through :mod:`testbrokers.kafka_jars`.  The
broker runs as ``java -cp libs/* kafka.Kafka server.properties`` on free
loopback ports (one for clients, one for the KRaft controller), keeps its log
in a temporary directory on disk (so :meth:`KafkaBroker.restart` keeps the
data) and is stopped by PID.  Settings favour tests: group joins without the
initial rebalance delay, replication factor 1 and min ISR 1 for every internal
topic (offsets, transaction state), few internal partitions, and a log cleaner
that compacts within seconds so compaction can be observed.

Command line::

    python -m testbrokers.kafka       # prints bootstrap_servers=127.0.0.1:PORT, pid=PID
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Mapping

from .kafka_jars import KAFKA_VERSION, ensure_jars
from .tansu import BrokerProcess, _NullLogger, free_port

__all__ = ["KafkaBroker", "TEST_SETTINGS", "main"]

# Broker settings for tests (server.properties), on top of the KRaft listener wiring.
TEST_SETTINGS: dict[str, str] = {
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "4",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "min.insync.replicas": "1",
    "num.partitions": "1",
    "num.network.threads": "2",
    "num.io.threads": "4",
    "background.threads": "2",
    # Compaction observable within seconds: segments roll after 2 s, the cleaner checks
    # every 500 ms and cleans any dirty share; a small dedupe buffer keeps the heap small.
    "log.roll.ms": "2000",
    "log.cleaner.backoff.ms": "500",
    "log.cleaner.min.cleanable.ratio": "0.01",
    "log.cleaner.threads": "1",
    "log.cleaner.dedupe.buffer.size": "8388608",
    "log.cleaner.io.buffer.size": "524288",
    # Aborted or hung transactions of a killed app are timed out within seconds.
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "2000",
}

_JVM_OPTS = ["-Xms128m", "-Xmx768m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
             "-Dorg.slf4j.simpleLogger.showDateTime=true"]


def _cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes, URL-safe base64 without padding (Kafka's Uuid).
    As Kafka's Uuid.randomUuid(), never one starting with "-" (read as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class KafkaBroker(BrokerProcess):
    """A throwaway single-node Apache Kafka broker (KRaft, broker and controller in one).

    Usage::

        with KafkaBroker() as broker:
            broker.create_topics([("in", 3)])

    Attributes after :meth:`start`: ``bootstrap_servers``, ``port``, ``pid``,
    ``log_path`` (the broker's stdout and stderr), ``data_dir`` (its log dirs).
    ``stop()``/``start()`` (or :meth:`restart`) keep ports and data, as a broker
    restarted in place; ``pause()``/``resume()`` send SIGSTOP/SIGCONT to the PID.
    """

    host = "127.0.0.1"
    kind = "kafka"

    def __init__(
        self,
        *,
        version: str = KAFKA_VERSION,
        settings: Mapping[str, str] | None = None,
        log_path: str | None = None,
        java: str = "java",
    ) -> None:
        self.version = version
        self.settings = dict(TEST_SETTINGS)
        self.settings.update(settings or {})
        self.java = java
        self.cluster_id = _cluster_id()
        self.log_path = log_path
        self.work_dir: str | None = None
        self.data_dir: str | None = None
        self.port: int | None = None
        self.controller_port: int | None = None
        self.bootstrap_servers: str | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._libs: str | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self, timeout: float = 180) -> "KafkaBroker":
        """Start (or restart in place) and wait until the broker answers metadata requests.

        The first start resolves the jars and formats the storage; the ports are picked
        then and kept for restarts.  Raises ``RuntimeError`` with the log tail on failure.
        """
        if self.running:
            return self
        self._libs = self._libs or ensure_jars(self.version)
        if self.work_dir is None:
            self._prepare()
        deadline = time.monotonic() + timeout
        assert self.log_path is not None and self.work_dir is not None
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        cmd = [self.java, *_JVM_OPTS, "-cp", os.path.join(self._libs, "*"), "kafka.Kafka",
               os.path.join(self.work_dir, "server.properties")]
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True,
                                          close_fds=True)
        self.pid = self._proc.pid
        try:
            self._await_ready(deadline, offset)
        except BaseException:
            self._kill()
            raise
        return self

    def _prepare(self) -> None:
        self.work_dir = tempfile.mkdtemp(prefix="cstreams-kafka-")
        self.data_dir = os.path.join(self.work_dir, "data")
        if self.log_path is None:
            self.log_path = os.path.join(self.work_dir, "broker.log")
        self.port = free_port(self.host)
        self.controller_port = free_port(self.host)
        while self.controller_port == self.port:
            self.controller_port = free_port(self.host)
        self.bootstrap_servers = f"{self.host}:{self.port}"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},"
                         f"CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self.data_dir,
            **self.settings,
        }
        path = os.path.join(self.work_dir, "server.properties")
        with open(path, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in props.items())
        assert self._libs is not None
        fmt = [self.java, *_JVM_OPTS, "-cp", os.path.join(self._libs, "*"),
               "kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c", path]
        proc = subprocess.run(fmt, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=180)
        with open(self.log_path, "a") as log:
            log.write(f"--- {' '.join(fmt)}\n{proc.stdout}")
        if proc.returncode != 0:
            raise RuntimeError(f"formatting the Kafka storage failed (exit {proc.returncode}):\n"
                               f"{proc.stdout[-4000:]}")

    def _await_ready(self, deadline: float, offset: int) -> None:
        from confluent_kafka.admin import AdminClient  # lazy import

        admin = AdminClient({
            "bootstrap.servers": self.bootstrap_servers,
            "socket.connection.setup.timeout.ms": 2000,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 500,
            "log_level": 0,
            "logger": _NullLogger(),
            "error_cb": lambda _err: None,
        })
        last = "no answer yet"
        while True:
            assert self._proc is not None
            rc = self._proc.poll()
            if rc is not None:
                raise RuntimeError(f"Kafka broker exited with status {rc}; log {self.log_path}:"
                                   f"\n{self._log_since(offset)[-4000:]}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"Kafka broker did not answer in time ({last}); "
                                   f"log {self.log_path}:\n{self.log_tail()}")
            try:
                md = admin.list_topics(timeout=min(2.0, max(0.5, remaining)))
            except Exception as exc:  # KafkaException: not up yet
                last = str(exc)
                time.sleep(0.2)
                continue
            if md.cluster_id != self.cluster_id:
                raise RuntimeError(f"another broker (cluster {md.cluster_id}) answers on "
                                   f"{self.bootstrap_servers}")
            if md.brokers:
                return
            time.sleep(0.2)

    def stop(self, timeout: float = 30) -> None:
        """Stop the broker by PID (SIGTERM, then SIGKILL); data and ports are kept."""
        self._kill(timeout)

    def kill(self) -> None:
        """SIGKILL the broker by PID (a crash); data and ports are kept."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        self._kill(timeout=30)

    def restart(self, timeout: float = 180) -> "KafkaBroker":
        self.stop()
        return self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP the broker: it stays up but answers nothing (a hung broker)."""
        if self.pid is not None and self.running:
            os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.pid is not None and self.running:
            os.kill(self.pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop the broker and delete its data directory."""
        self.stop()
        if self.work_dir is not None and os.environ.get("CSTREAMS_KEEP_BROKER_DATA") != "1":
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> "KafkaBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KafkaBroker({self.version}, bootstrap_servers={self.bootstrap_servers!r}, " \
               f"pid={self.pid})"


def main(argv: list[str] | None = None) -> int:
    """Start a broker, print its address and PID, run until SIGINT/SIGTERM."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m testbrokers.kafka",
                                     description="Run a single-node Apache Kafka test broker.")
    parser.add_argument("--version", default=KAFKA_VERSION)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args(argv)
    stop_requested = False

    def _on_signal(signum: int, _frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    broker = KafkaBroker(version=args.version)
    try:
        broker.start(timeout=args.timeout)
        print(f"bootstrap_servers={broker.bootstrap_servers}", flush=True)
        print(f"pid={broker.pid}", flush=True)
        print(f"log_path={broker.log_path}", flush=True)
        while not stop_requested:
            if not broker.running:
                print("broker exited unexpectedly; log tail:\n" + broker.log_tail(),
                      file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        broker.close()


if __name__ == "__main__":
    sys.exit(main())
