"""Worker processes: every core of a machine, with Kafka's group protocol as the only cluster
protocol.

    cs.App(topology, application_id="wordcount", ...).run(processes=4)
    cstreams run examples.wordcount:build_topology --application-id wordcount ... --processes 4

One Python process runs one core of Python. The Supervisor starts N worker processes, each a
full App instance and an ordinary member of the application's consumer group (the group
spreads the partitions over them exactly as over instances on different machines), with

- its own state directory ``<state_dir>/worker-<i>`` (a task that moves between workers is
  restored from its changelog, as between machines);
- its own stable instance id ``<base>-w<i>``, base being the instance id of the App (under
  exactly_once_v2 its transactional.id is ``<application_id>-<base>-w<i>``, the same across
  restarts of the worker, so a restarted worker fences its own zombie and nothing else).

A worker that dies (any exit while the supervisor is not stopping) is restarted after a
backoff that doubles per recent restart (``backoff_s`` up to ``max_backoff_s``); more than
``max_restarts`` restarts of one worker within ``restart_window_s`` make the supervisor give
up: it stops the other workers and raises WorkersFailed. SIGTERM or SIGINT to the supervisor
is forwarded as SIGTERM to every worker: each stops as a single App does (final commit, tasks
closed and checkpointed); a worker still running after ``stop_timeout_s`` is killed.

Workers are forked (the topology object is inherited, so lambdas and closures in it need no
pickling); the supervisor creates no Kafka client before forking. Each worker publishes its
metrics() snapshot and health to ``<status dir>/w<i>.json`` every PUBLISH_INTERVAL_S; the
supervisor serves them on one endpoint (cstreams.metrics_http) and in Supervisor.metrics().
"""

from __future__ import annotations

import collections
import json
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time

from cstreams.errors import ConfigurationError, CStreamsError
from cstreams.runtime.transaction import stable_instance_id

log = logging.getLogger("cstreams.workers")

PUBLISH_INTERVAL_S = 0.5
STALE_AFTER_S = 5.0


class WorkersFailed(CStreamsError):
    """The supervisor gave up: a worker kept dying (or workers did not stop cleanly)."""


def worker_state_dir(state_dir, index):
    return os.path.join(state_dir, f"worker-{index}")


class _Worker:
    __slots__ = ("index", "process", "starts", "restart_times", "restart_at", "last_exit")

    def __init__(self, index):
        self.index = index
        self.process = None
        self.starts = 0
        self.restart_times = collections.deque()
        self.restart_at = None
        self.last_exit = None

    @property
    def alive(self):
        return self.process is not None and self.process.is_alive()


class Supervisor:
    def __init__(self, app, processes: int, *, max_restarts: int = 5,
                 restart_window_s: float = 60.0, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, stop_timeout_s: float = 60.0):
        if not isinstance(processes, int) or processes < 1:
            raise ConfigurationError(f"processes must be an int >= 1, got {processes!r}")
        if max_restarts < 0:
            raise ConfigurationError(f"max_restarts must be >= 0, got {max_restarts!r}")
        self.app = app
        self.processes = processes
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.stop_timeout_s = stop_timeout_s
        self.base_instance_id = app.instance_id or stable_instance_id(app.state_dir,
                                                                     app.application_id)
        self.workers = [_Worker(i) for i in range(processes)]
        self.status_dir = None
        self.metrics_server = None
        self.gave_up = None
        self._stop = threading.Event()
        self._ctx = multiprocessing.get_context("fork")

    # --- worker processes -----------------------------------------------------------------
    def instance_id(self, index):
        return f"{self.base_instance_id}-w{index}"

    def _start(self, w):
        w.starts += 1
        w.restart_at = None
        w.process = self._ctx.Process(target=_worker_main, name=f"cstreams-worker-{w.index}",
                                      args=(self, w.index), daemon=False)
        w.process.start()
        log.info("%s: worker %d started (pid %d, instance id %s, state in %s)",
                 self.app.application_id, w.index, w.process.pid, self.instance_id(w.index),
                 worker_state_dir(self.app.state_dir, w.index))

    def _reap(self, w, now):
        """A worker exited while the supervisor runs: schedule its restart, or give up."""
        code = w.process.exitcode
        w.last_exit = code
        w.process.close()
        w.process = None
        while w.restart_times and now - w.restart_times[0] > self.restart_window_s:
            w.restart_times.popleft()
        if len(w.restart_times) >= self.max_restarts:
            self.gave_up = (f"worker {w.index} exited (code {code}) and was restarted "
                            f"{len(w.restart_times)} times within {self.restart_window_s:g} s "
                            f"(max_restarts {self.max_restarts}): giving up")
            log.error("%s: %s", self.app.application_id, self.gave_up)
            return
        delay = min(self.backoff_s * (2 ** len(w.restart_times)), self.max_backoff_s)
        w.restart_times.append(now)
        w.restart_at = now + delay
        log.warning("%s: worker %d exited (code %s); restarting it in %.1f s (restart %d "
                    "within %g s)", self.app.application_id, w.index, code, delay,
                    len(w.restart_times), self.restart_window_s)

    # --- run ------------------------------------------------------------------------------
    def run(self):
        """Start the workers and supervise them until stop(), SIGTERM or SIGINT; then stop
        them all. Raises WorkersFailed if it gave up or a worker did not stop cleanly."""
        restore = {}
        if threading.current_thread() is threading.main_thread():
            def on_signal(signum, _frame):
                log.info("%s: supervisor got signal %d, stopping the workers",
                         self.app.application_id, signum)
                self._stop.set()

            for sig in (signal.SIGINT, signal.SIGTERM):
                restore[sig] = signal.signal(sig, on_signal)
        self.status_dir = tempfile.mkdtemp(prefix=f"cstreams-{self.app.application_id}-")
        try:
            self._serve_metrics()
            for w in self.workers:
                self._start(w)
            while not self._stop.is_set() and self.gave_up is None:
                now = time.monotonic()
                for w in self.workers:
                    if w.process is not None and not w.process.is_alive():
                        self._reap(w, now)
                    if (w.process is None and w.restart_at is not None
                            and now >= w.restart_at and self.gave_up is None):
                        self._start(w)
                self._stop.wait(0.1)
            unclean = self._stop_workers()
        finally:
            if self.metrics_server is not None:
                self.metrics_server.close()
                self.metrics_server = None
            for sig, old in restore.items():
                signal.signal(sig, old)
            shutil.rmtree(self.status_dir, ignore_errors=True)
        if self.gave_up is not None:
            raise WorkersFailed(self.gave_up)
        if unclean:
            raise WorkersFailed("worker(s) did not stop cleanly: " + ", ".join(
                f"worker {i} (exit code {c})" for i, c in unclean))
        log.info("%s: all %d workers stopped", self.app.application_id, self.processes)

    def stop(self):
        self._stop.set()

    def _stop_workers(self):
        running = [w for w in self.workers if w.process is not None]
        for w in running:
            if w.process.is_alive():
                try:
                    os.kill(w.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + self.stop_timeout_s
        unclean = []
        for w in running:
            w.process.join(max(deadline - time.monotonic(), 0))
            if w.process.is_alive():
                log.error("%s: worker %d (pid %d) did not stop within %g s: killing it",
                          self.app.application_id, w.index, w.process.pid, self.stop_timeout_s)
                w.process.kill()
                w.process.join(10)
            w.last_exit = w.process.exitcode
            if w.last_exit != 0:
                unclean.append((w.index, w.last_exit))
            w.process.close()
            w.process = None
        return unclean

    # --- what the workers publish -----------------------------------------------------------
    def status_path(self, index):
        return os.path.join(self.status_dir, f"w{index}.json")

    def worker_status(self, index):
        """The last snapshot worker ``index`` published (with pid, worker, published), or
        None."""
        try:
            with open(self.status_path(index), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def metrics(self) -> dict:
        """{"application_id", "workers": {index: that worker's last metrics() snapshot},
        "restarts": {index: restarts so far}}."""
        return {
            "application_id": self.app.application_id,
            "workers": {w.index: self.worker_status(w.index) or {} for w in self.workers},
            "restarts": {w.index: w.starts - 1 for w in self.workers if w.starts},
        }

    def health(self) -> dict:
        now = time.time()
        workers = {}
        for w in self.workers:
            st = self.worker_status(w.index) or {}
            fresh = now - st.get("published", 0) < STALE_AFTER_S
            alive = w.alive and st.get("pid") == w.process.pid
            workers[w.index] = {"alive": w.alive, "ready": bool(alive and fresh
                                                                and st.get("ready")),
                                "state": st.get("state", "starting") if alive else "down"}
        live = self.gave_up is None and not self._stop.is_set()
        return {"live": live, "ready": live and all(x["ready"] for x in workers.values()),
                "state": "running" if live else "stopping", "workers": workers}

    def _serve_metrics(self):
        app = self.app
        if app.metrics_port is None:
            return
        from cstreams.metrics_http import MetricsServer, SnapshotCollector

        def sources():
            for w in self.workers:
                st = self.worker_status(w.index)
                if st is not None:
                    yield [app.application_id, str(w.index)], st

        def extra(fams):
            h = self.health()["workers"]
            for w in self.workers:
                lv = [app.application_id, str(w.index)]
                fams.add("gauge", "worker_up", "1 while the worker process runs", (), lv,
                         1 if h[w.index]["alive"] else 0)
                fams.add("counter", "worker_restarts", "restarts of the worker", (), lv,
                         max(w.starts - 1, 0))

        collector = SnapshotCollector(["application_id", "worker"], sources, extra)
        self.metrics_server = MetricsServer(collector, self.health, host=app.metrics_host,
                                            port=app.metrics_port)


def _publish(app, index, path):
    snap = app.metrics()
    snap.update(app.health(), pid=os.getpid(), worker=index, published=time.time())
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(snap, f, default=str)
    os.replace(tmp, path)


def _stop_with_parent():
    """Linux: SIGTERM this worker (a clean stop) if the supervisor dies without stopping it
    (SIGKILL), instead of leaving an orphan group member behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_main(sup, index):
    """Worker process body (forked): one App, its snapshot published until it stops."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    _stop_with_parent()
    if sup.metrics_server is not None:
        sup.metrics_server.close_in_child()
    app = sup.app.for_worker(index, worker_state_dir(sup.app.state_dir, index),
                             sup.instance_id(index))
    path = sup.status_path(index)
    done = threading.Event()

    def publisher():
        while not done.wait(PUBLISH_INTERVAL_S):
            try:
                _publish(app, index, path)
            except Exception:  # noqa: BLE001 - metrics must not stop the worker
                log.debug("publishing worker metrics failed", exc_info=True)

    t = threading.Thread(target=publisher, name="cstreams-worker-metrics", daemon=True)
    t.start()
    try:
        app.run()
    finally:
        done.set()
        t.join(2)
        try:
            _publish(app, index, path)
        except Exception:  # noqa: BLE001
            pass
