"""Local state on disk, over the broker, with app processes run by the CLI:

- a RocksDB store opened with disable_wal=True is persisted before every checkpoint: after a
  SIGKILL that follows a checkpoint, every write the checkpoint covers is in the store;
- a state directory that runs out of space (a file-size limit, RLIMIT_FSIZE, on the app
  process) stops the app with a StoreIOError naming the store and its path, nothing is
  committed past the failed write, and a restart with space restores a usable store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("confluent_kafka")

from helpers import (  # noqa: E402
    FAST_GROUP,
    committed,
    consume_all,
    env_for_subprocess,
    produce,
    wait_for,
)

from cstreams.stores.rocksdb_backend import RocksDBBackend  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.runtime_faults, pytest.mark.timeout(240)]

LAUNCHER = """\
import resource, runpy, signal, sys
limit = int(sys.argv.pop(1))
if limit:
    # Writes past the limit fail with EFBIG, as on a full disk, instead of killing us.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.argv[0] = "cstreams"
runpy.run_module("cstreams", run_name="__main__")
"""

TOPOLOGY = """\
import cstreams as cs


class Put(cs.Processor):
    def init(self, ctx):
        self.store = ctx.get_store("vals")

    def process(self, record):
        self.store.put(record.key, record.value)


topology = cs.Topology()
topology.add_source("in", topics=[{src!r}], key_serde=cs.serde.STRING,
                    value_serde=cs.serde.STRING)
topology.add_processor("put", Put, parents=["in"])
topology.add_store(cs.stores.rocksdb("vals", cs.serde.STRING, cs.serde.STRING,
                                     options={options!r}), ["put"])
"""


def start(tmp_path, broker, app_id, file_size_limit=0):
    (tmp_path / "launch.py").write_text(LAUNCHER)
    args = [sys.executable, str(tmp_path / "launch.py"), str(file_size_limit), "run",
            "durtopo:topology", "--application-id", app_id,
            "--bootstrap-servers", broker.bootstrap_servers,
            "--state-dir", str(tmp_path / "state"), "--commit-interval-ms", "300"]
    for k, v in FAST_GROUP.items():
        args += ["--config", f"{k}={v}"]
    log = tmp_path / f"app-{time.monotonic_ns()}.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(args, cwd=tmp_path, env=env_for_subprocess(), stdout=f,
                                stderr=subprocess.STDOUT)
    return proc, log


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(30)


def checkpoint(tmp_path, app_id):
    path = tmp_path / "state" / app_id / "0_0" / ".checkpoint"
    try:
        return {e["topic"]: e["offset"] for e in json.loads(path.read_text())["offsets"]}
    except (FileNotFoundError, ValueError):
        return {}


def store_values(tmp_path, app_id, keys, **options):
    db = RocksDBBackend(str(tmp_path / "state" / app_id / "0_0" / "vals"), **options)
    try:
        return [db.get(k.encode()) for k in keys]
    finally:
        db.close()


def test_disable_wal_store_holds_every_checkpointed_write_after_sigkill(broker, topic_factory,
                                                                       tmp_path):
    src = topic_factory("in", 1)
    app_id = f"nowal-{src}"
    (tmp_path / "durtopo.py").write_text(TOPOLOGY.format(src=src,
                                                         options={"disable_wal": True}))
    n = 12_000      # past CHECKPOINT_DELTA: an interval commit rewrites the checkpoint
    produce(broker.bootstrap_servers, src,
            [(f"k{i}".encode(), f"v{i}".encode()) for i in range(n)], partition=0)
    proc, log = start(tmp_path, broker, app_id)
    changelog = f"{app_id}-vals-changelog"
    try:
        # Interval checkpoints wait for CHECKPOINT_DELTA records: the first one written
        # after the writes reached the changelog is the one to kill after.
        wait_for(lambda: checkpoint(tmp_path, app_id).get(changelog, 0) > 0, timeout=60,
                 what="a checkpoint covering written records")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    covered = checkpoint(tmp_path, app_id)[changelog]
    logged = consume_all(broker.bootstrap_servers, changelog,
                         until=lambda r: len(r) >= covered, timeout=30)
    writes = {k: v for _p, o, k, v, _h in logged if o < covered}
    assert len(writes) == covered
    got = store_values(tmp_path, app_id, [k.decode() for k in writes], disable_wal=True)
    assert got == list(writes.values()), log.read_text()[-2000:]


def test_full_state_directory_stops_cleanly_and_a_restart_recovers(broker, topic_factory,
                                                                   tmp_path):
    src = topic_factory("in", 1)
    app_id = f"full-{src}"
    (tmp_path / "durtopo.py").write_text(TOPOLOGY.format(src=src, options={}))
    n = 300
    big = "x" * 4000
    produce(broker.bootstrap_servers, src,
            [(f"k{i}".encode(), f"{i}-{big}".encode()) for i in range(n)], partition=0)
    # ~1.2 MB of writes into a store whose files may not pass 256 KiB.
    proc, log = start(tmp_path, broker, app_id, file_size_limit=256 * 1024)
    try:
        assert proc.wait(90) != 0
    finally:
        stop(proc, signal.SIGKILL)
    text = log.read_text()
    store_dir = str(tmp_path / "state" / app_id / "0_0" / "vals")
    assert "StoreIOError" in text and "'vals'" in text and store_dir in text, text[-3000:]
    assert committed(broker.bootstrap_servers, app_id, src, 1)[0] < n
    assert checkpoint(tmp_path, app_id) == {}

    proc, log = start(tmp_path, broker, app_id)
    try:
        wait_for(lambda: committed(broker.bootstrap_servers, app_id, src, 1)[0] == n,
                 timeout=90, what="every record committed after the restart")
        wait_for(lambda: checkpoint(tmp_path, app_id), timeout=30, what="a checkpoint")
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    got = store_values(tmp_path, app_id, [f"k{i}" for i in range(n)])
    assert got == [f"{i}-{big}".encode() for i in range(n)]
