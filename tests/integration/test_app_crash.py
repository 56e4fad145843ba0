"""SIGKILL of an app process mid-stream, restart: every input record is reflected in the
output (at-least-once: counts may run over after a crash, never under)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("confluent_kafka")

from helpers import (  # noqa: E402
    FAST_GROUP,
    consume_all,
    env_for_subprocess,
    int64,
    latest_counts,
    produce,
    sample_lines,
    word_counts,
)

pytestmark = [pytest.mark.integration, pytest.mark.runtime_faults, pytest.mark.timeout(240)]


def start_cli(tmp_path, broker, app_id):
    args = [sys.executable, "-m", "cstreams", "run", "crashtopo:topology",
            "--application-id", app_id, "--bootstrap-servers", broker.bootstrap_servers,
            "--state-dir", str(tmp_path / "state"), "--commit-interval-ms", "300",
            "--progress-interval-ms", "1000"]
    for k, v in FAST_GROUP.items():
        args += ["--config", f"{k}={v}"]
    log = open(tmp_path / f"app-{time.monotonic_ns()}.log", "w")
    return subprocess.Popen(args, cwd=tmp_path, env=env_for_subprocess(), stdout=log,
                            stderr=subprocess.STDOUT)


def test_sigkill_mid_stream_then_restart_loses_nothing(broker, topic_factory, tmp_path):
    src, rep, out = topic_factory("words", 2), topic_factory("rep", 2), topic_factory("wc", 2)
    (tmp_path / "crashtopo.py").write_text(
        "from examples.wordcount import build_topology\n"
        f"topology = build_topology({src!r}, {out!r}, {rep!r})\n"
    )
    lines = sample_lines(800, seed=3)
    truth = word_counts(lines)

    def feed():
        for i in range(100, len(lines), 20):
            produce(broker.bootstrap_servers, src,
                    [(f"l{j}".encode(), lines[j].encode()) for j in range(i, i + 20)])
            time.sleep(0.1)

    app_id = f"crash-{src}"
    produce(broker.bootstrap_servers, src,
            [(f"l{j}".encode(), lines[j].encode()) for j in range(100)])
    proc = start_cli(tmp_path, broker, app_id)
    feeder = threading.Thread(target=feed)
    try:
        # Kill once output is flowing, while input still arrives.
        consume_all(broker.bootstrap_servers, out, until=lambda r: len(r) >= 100, timeout=60)
        feeder.start()
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed_while_feeding = feeder.is_alive()
        feeder.join()

        proc = start_cli(tmp_path, broker, app_id)
        recs = consume_all(broker.bootstrap_servers, out, timeout=120,
                           until=lambda r: all(latest_counts(r).get(w, 0) >= c
                                               for w, c in truth.items()))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert killed_while_feeding
    final = latest_counts(recs)
    assert set(final) == set(truth)
    for w, c in truth.items():
        assert final[w] >= c, w
        # Every input's effect: each running count 1..c was emitted at least once.
        seen = {int64(v) for _p, _o, k, v, _h in recs if k.decode() == w}
        assert set(range(1, c + 1)) <= seen, w
