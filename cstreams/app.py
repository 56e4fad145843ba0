"""cs.App: runs a topology against Kafka.

    app = cs.App(topology, application_id="wordcount", bootstrap_servers="localhost:9092")
    app.run()              # blocks; SIGINT / SIGTERM close it cleanly

    app.start()            # or: the loop in a background thread
    ...
    app.close()            # stop, commit, join; raises the error that stopped the app

Settings the runtime owns and how ``config`` reaches each client: cstreams.runtime.config.
The commit protocols (at-least-once and exactly_once_v2): cstreams.runtime.commit; the
transactional producer and its transactional.id: cstreams.runtime.transaction.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading

from cstreams import handlers as _handlers
from cstreams import names as _names
from cstreams.errors import ConfigurationError
from cstreams.runtime import config as _config
from cstreams.runtime.stream_thread import StreamThread
from cstreams.runtime.transaction import stable_instance_id
from cstreams.topology import Topology

log = logging.getLogger("cstreams")

GUARANTEES = ("at_least_once", "exactly_once_v2")
DEFAULT_COMMIT_INTERVAL_MS = {"at_least_once": 30_000, "exactly_once_v2": 100}


def default_state_dir():
    # Not an importable name: a directory "cstreams" in the working directory would shadow
    # the package (as a namespace package) for `import cstreams` run from there.
    return os.path.join(tempfile.gettempdir(), "cstreams-state")


def _check_derived_topics(topology, application_id):
    """Changelog and repartition topic names built from application_id and store names must
    be legal topic names too (their length is what can fail)."""
    for name in topology.stores:
        spec = topology.store_spec(name)
        if spec.logging and spec.source_changelog is None:
            _names.check(spec.changelog_topic(application_id),
                         f"changelog topic of store {name!r}", ConfigurationError)
    for topic in topology.internal_topics():
        _names.check(topic, "internal topic", ConfigurationError)


def _cooperative(topology, config):
    """Whether the main consumer rebalances incrementally (cooperative-sticky): by default
    when every sub-topology reads one topic; a partition.assignment.strategy of "range" in
    ``config`` keeps eager rebalancing; "cooperative-sticky" where topics must stay
    co-partitioned is an error."""
    config = config or {}
    asked = config.get("consumer.partition.assignment.strategy",
                       config.get("partition.assignment.strategy"))
    eligible = all(len(sub.topics) == 1 and not sub.patterns
                   for sub in topology.subtopologies)
    if asked is None:
        return eligible
    asked = str(asked).strip().lower()
    if asked == "range":
        return False
    if asked == "cooperative-sticky" and eligible:
        return True
    raise ConfigurationError(
        f"partition.assignment.strategy={asked!r}: the runtime supports 'cooperative-sticky' "
        f"(the default when every sub-topology reads one topic) and 'range' (required when a "
        f"sub-topology reads several co-partitioned topics)")


def _check_state_dir(path):
    """Create ``path`` if needed and prove it is a writable directory, with an error naming
    it, before the app joins its group (where a task would otherwise fail on it)."""
    try:
        os.makedirs(path, exist_ok=True)
        if not os.path.isdir(path):
            raise NotADirectoryError(f"{path} is not a directory")
        fd, probe = tempfile.mkstemp(prefix=".cstreams-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigurationError(
            f"state_dir {path!r} is not a usable directory: {type(e).__name__}: "
            f"{e.strerror or e}") from None


class App:
    """One instance of a stream-processing application.

    ``error_handler``: "fail" (default), "skip", "dead-letter:TOPIC" or an ErrorHandler, for
    records that fail to deserialize or to process. ``production_error_handler``: "fail"
    (default), "skip" or a callable(ProductionError) -> bool (True: go on) for records the
    broker did not acknowledge (at-least-once only: under exactly-once a failed delivery
    aborts the transaction).

    ``processing_guarantee``: "at_least_once" (default) or "exactly_once_v2" (one Kafka
    transaction per commit interval; ``commit_interval_ms`` then defaults to 100 instead of
    30,000). ``instance_id``: exactly-once only, the stable part of the transactional.id
    ``<application_id>-<instance_id>``; by default a UUID kept in
    ``<state_dir>/<application_id>/instance.id``. A ``transactional.id`` in ``config`` replaces
    the whole id. Two running instances must never share it: the newer fences the older.

    Adaptive batching: the number of records asked of each consume() (the poll size) starts at
    min(1,000, ``max_poll_records``) and adapts so that a poll's batch latency (consume()
    returning to the end of processing its records) stays under ``max_batch_latency_ms``:
    it doubles, up to ``max_poll_records``, while polls come back full in under half the bound
    and shrinks when a poll passes it (cstreams.runtime.batching). metrics() reports the
    current ``poll_size`` and recent ``batch_latency_ms_p50/p99/max``.
    """

    def __init__(self, topology: Topology, application_id: str, bootstrap_servers: str, *,
                 state_dir: str | None = None, config: dict | None = None,
                 processing_guarantee: str = "at_least_once",
                 commit_interval_ms: int | None = None, error_handler=None,
                 production_error_handler="fail", max_poll_records: int = 10_000,
                 poll_timeout_ms: int = 100, metadata_timeout_s: float = 30.0,
                 flush_timeout_s: float = 60.0, progress_interval_ms: int = 30_000,
                 changelog_replication_factor: int = -1, instance_id: str | None = None,
                 max_batch_latency_ms: float = 100.0):
        if not isinstance(topology, Topology):
            raise ConfigurationError(f"App needs a cstreams.Topology, got {type(topology)!r}")
        topology.validate()
        if processing_guarantee not in GUARANTEES:
            raise ConfigurationError(f"processing_guarantee must be one of {GUARANTEES}, got "
                                     f"{processing_guarantee!r}")
        if commit_interval_ms is None:
            commit_interval_ms = DEFAULT_COMMIT_INTERVAL_MS[processing_guarantee]
        self.exactly_once = processing_guarantee == "exactly_once_v2"
        if instance_id is not None and not self.exactly_once:
            raise ConfigurationError("instance_id names the transactional producer: it is only "
                                     "used under processing_guarantee='exactly_once_v2'")
        if self.exactly_once and production_error_handler not in ("fail", None):
            raise ConfigurationError(
                "under exactly_once_v2 a record the broker does not acknowledge aborts the "
                "whole transaction: production_error_handler must be 'fail'")
        if commit_interval_ms < 0 or max_poll_records < 1:
            raise ConfigurationError("commit_interval_ms must be >= 0 and max_poll_records "
                                     ">= 1")
        if not max_batch_latency_ms > 0:
            raise ConfigurationError(f"max_batch_latency_ms must be > 0, got "
                                     f"{max_batch_latency_ms!r}")
        try:
            self.error_handler_obj = _handlers.resolve(error_handler)
        except ValueError as e:
            raise ConfigurationError(str(e)) from None
        self.error_handler = error_handler
        if not (production_error_handler in ("fail", "skip", None)
                or callable(production_error_handler)):
            raise ConfigurationError("production_error_handler must be 'fail', 'skip' or a "
                                     "callable")
        self.production_error_handler = production_error_handler
        _names.check(application_id, "application_id", ConfigurationError)
        # Internal (repartition) topics get their <application_id>- prefix here.
        self.topology = topology.for_application(application_id)
        _check_derived_topics(self.topology, application_id)
        self.application_id = application_id
        self.bootstrap_servers = bootstrap_servers
        self.state_dir = os.path.abspath(state_dir or default_state_dir())
        user_tid = _config.user_transactional_id(config) if self.exactly_once else None
        # Every setting is checked (librdkafka included) before anything touches the disk;
        # the instance id kept in the state directory is read (or written) only after that.
        provisional = None
        if self.exactly_once and user_tid is None:
            provisional = f"{application_id}-{instance_id or 'instance'}"
        # Cooperative (incremental) rebalancing unless a sub-topology reads several topics
        # whose partitions must stay together (only the range assignor keeps them so).
        self.cooperative = _cooperative(self.topology, config)
        self.client_configs = _config.build(application_id, bootstrap_servers, config,
                                            transactional_id=user_tid or provisional,
                                            cooperative=self.cooperative)
        _config.check_clients(self.client_configs)
        _check_state_dir(self.state_dir)
        self.transactional_id = None
        if self.exactly_once:
            self.transactional_id = user_tid
            if self.transactional_id is None:
                if instance_id is None:
                    instance_id = stable_instance_id(self.state_dir, application_id)
                self.transactional_id = f"{application_id}-{instance_id}"
                self.client_configs = _config.build(application_id, bootstrap_servers, config,
                                                    transactional_id=self.transactional_id,
                                                    cooperative=self.cooperative)
        self.instance_id = instance_id
        self.processing_guarantee = processing_guarantee
        self.commit_interval_ms = commit_interval_ms
        self.max_poll_records = max_poll_records
        self.max_batch_latency_ms = max_batch_latency_ms
        self.poll_timeout_ms = poll_timeout_ms
        self.metadata_timeout_s = metadata_timeout_s
        self.flush_timeout_s = flush_timeout_s
        self.progress_interval_ms = progress_interval_ms
        self.changelog_replication_factor = changelog_replication_factor
        self._stream = None
        self._thread = None

    # --- lifecycle ------------------------------------------------------------------------
    def _new_stream(self):
        if self._stream is not None:
            raise ConfigurationError("an App runs once; build a new App to run again")
        self._stream = StreamThread(self)
        return self._stream

    def run(self):
        """Run in this thread until SIGINT/SIGTERM (or close() from another thread); raise
        the error that stopped the app, if any."""
        stream = self._new_stream()
        restore = {}
        if threading.current_thread() is threading.main_thread():
            def on_signal(signum, _frame):
                log.info("%s: signal %d, closing", self.application_id, signum)
                stream.stop()

            for sig in (signal.SIGINT, signal.SIGTERM):
                restore[sig] = signal.signal(sig, on_signal)
        try:
            stream.run()
        finally:
            for sig, old in restore.items():
                signal.signal(sig, old)
        if stream.error is not None:
            raise stream.error

    def start(self):
        """Run the loop in a background thread. Returns once the app is connected and
        subscribed; raises (after cleaning up) if that fails."""
        stream = self._new_stream()
        self._thread = threading.Thread(target=stream.run, name=f"cstreams-{self.application_id}",
                                        daemon=True)
        self._thread.start()
        stream.started_event.wait()
        if stream.error is not None:
            self._thread.join()
            raise stream.error
        return self

    def close(self, timeout: float | None = None):
        """Stop the loop, commit, close tasks and clients, join the thread; raise the error
        that stopped the app, if any."""
        stream = self._stream
        if stream is None:
            return
        stream.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the app did not stop within {timeout} s")
        if stream.error is not None:
            err, stream.error = stream.error, None
            raise err

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    @property
    def error(self):
        return None if self._stream is None else self._stream.error

    def metrics(self) -> dict:
        """A snapshot: records in/out, commits and their latency, per-task counters."""
        stream = self._stream
        if stream is None or stream.tasks is None:
            return {"application_id": self.application_id, "tasks": {}}
        return stream.metrics.snapshot(stream)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
