"""SIGKILL of a windowed application mid-window, then a restart: the final results (emit
"final") equal the brute-force reference, over the real broker with RocksDB window stores on
disk, under at-least-once and exactly_once_v2.

The app runs as a CLI subprocess. It is killed at a chosen instant: a pass-through node in
front of the aggregation blocks the stream loop (a wall-clock punctuator) right after the
batch holding a marker record was processed, before the next commit. Windows are open then,
their updates sit in the store's write-back cache (the test checks from the store on disk
that the marker's stream time was never flushed), and final results of the windows the batch
closed were handed to the producer. The restart (same state directory and, under
exactly-once, the same instance id, which fences the dead producer and aborts its
transaction) reprocesses from the committed offsets.

Expected: every window the reference closes appears in the output with the reference's value,
and nothing else. The test broker (Tansu) does not hide aborted records from read_committed
readers (TESTING.md), so exactly-once cannot be shown record for record here; both guarantees
are held to the at-least-once rule: every final result appears, and a window that appears
more than once (re-emitted after the crash) carries the same value every time. The kill
falls between commits on purpose: under exactly-once the stores send changelog records only
when they flush at commit, so the killed transaction holds sink records only (an aborted
changelog record would be replayed on restore by this broker, not by Kafka).

The input spans several retention segments of the store, so that the crash can fall after
whole segments were dropped by retention: a window dropped after the last commit must not
come back, half counted, on the replay.
"""

from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("confluent_kafka")

import orjson  # noqa: E402
from helpers import FAST_GROUP, committed, consume_all, env_for_subprocess, wait_for  # noqa: E402

from cstreams import windowed as W  # noqa: E402
from cstreams.serde import STRING  # noqa: E402
from cstreams.stores.rocksdb_backend import RocksDBBackend  # noqa: E402
from cstreams.stores.window import META_KEY  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "driver"))
from test_app_windows import produce_events  # noqa: E402
from test_windows import reference_session, reference_time  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.runtime_faults, pytest.mark.timeout(300)]

PARTITIONS = 2
PAUSE_VALUE = 999_999
STORE = "agg"

TOPOLOGY = '''
import os
import pathlib
import time

import cstreams as cs
from cstreams import windowed as W
from cstreams.serde import INT64, STRING
from cstreams.windows import SessionWindows, TimeWindows

SRC, OUT, KIND, STORE = {src!r}, {out!r}, {kind!r}, {store!r}
PAUSE_VALUE = {pause!r}
MARKER = os.environ.get("WCRASH_PAUSE_MARKER")   # set for the run that is to be killed
ARMED = []


class PauseAfterMarker(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx
        if MARKER:
            ctx.schedule(5, cs.WALL_CLOCK_TIME, self.maybe_block)

    def process(self, record):
        if MARKER and record.value == PAUSE_VALUE:
            ARMED.append(record.timestamp)
        self.ctx.forward(record.key, record.value)

    def maybe_block(self, _now):
        # The stream loop, after the marker's batch was processed and before the next commit.
        if ARMED:
            pathlib.Path(MARKER).write_text(str(ARMED[0]))
            time.sleep(600)     # until SIGKILL


def topology():
    if KIND == "session":
        windows = SessionWindows.with_inactivity_gap({gap}, grace_ms={grace})
        ks = W.session_windowed_serde(STRING)
    else:
        windows = TimeWindows.of({size}, grace_ms={grace}).advance_by({advance})
        ks = W.time_windowed_serde(STRING, {size})
    topo = cs.Topology()
    topo.add_source("in", [SRC], key_serde=STRING, value_serde=INT64)
    topo.add_processor("pause", PauseAfterMarker, parents=["in"])
    W.add_aggregation(topo, STORE, ["pause"], windows, W.COUNT, emit="final",
                      key_serde=STRING, value_serde=INT64)
    topo.add_sink("out", OUT, parents=[STORE], key_serde=ks, value_serde=INT64)
    return topo
'''

# Windows of 2 s (hopping: advancing by 1 s), sessions of 1.5 s gap, grace 0.5 s, over 240 s
# of event time: retention segments are 60 s, so the stream drops several of them.
SIZE, ADVANCE, GAP, GRACE = 2000, 1000, 1500, 500
SPAN_MS, DISORDER_MS, PER_PARTITION = 240_000, 400, 900
# The first run gets the records before FIRST and is given time to commit them; the second
# part (marker inside it) is processed by the run that is killed.
FIRST, MARKER_AT = 300, 700


def events(seed):
    """{partition: [(key, value, ts)]}: keys k<i> live on partition i % 2. The marker record
    (partition 0) is the latest so far, so that its batch moves stream time; the last record
    of each partition is far ahead, so that every window closes."""
    rng = random.Random(seed)
    out = {}
    for p in range(PARTITIONS):
        keys = [f"k{i}" for i in range(12) if i % PARTITIONS == p]
        recs = []
        for i in range(PER_PARTITION):
            ts = 1000 + max(0, i * SPAN_MS // PER_PARTITION - rng.randint(0, DISORDER_MS))
            recs.append((rng.choice(keys), rng.randint(1, 9), ts))
        if p == 0:
            top = max(ts for _k, _v, ts in recs[:MARKER_AT])
            recs[MARKER_AT] = (recs[MARKER_AT][0], PAUSE_VALUE, top + 1)
        recs.append((keys[0], 1, SPAN_MS + 100_000))
        out[p] = recs
    return out


def reference(kind, data):
    """The reference's final results of every partition (stream time is per task)."""
    want = []
    for recs in data.values():
        if kind == "session":
            out, _late = reference_session([recs], GAP, GRACE, len, "final")
        else:
            out, _late = reference_time([recs], SIZE, ADVANCE, GRACE, len, "final")
        want += [(w, v) for w, v, _ts in out]
    return want


def start_cli(tmp_path, broker, spec, app_id, guarantee, log_name, env_extra=None):
    args = [sys.executable, "-m", "cstreams", "run", spec,
            "--application-id", app_id, "--bootstrap-servers", broker.bootstrap_servers,
            "--processing-guarantee", guarantee,
            "--state-dir", str(tmp_path / "state"), "--commit-interval-ms", "300",
            "--progress-interval-ms", "1000"]
    if guarantee == "exactly_once_v2":
        args += ["--instance-id", "crash-me"]    # the restart fences the killed producer
    for k, v in FAST_GROUP.items():
        args += ["--config", f"{k}={v}"]
    env = env_for_subprocess()
    env.update(env_extra or {})
    with open(tmp_path / log_name, "w") as log:
        return subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def flushed_stream_time(state_dir, app_id, partition):
    """The stream time the window store of task 0_<partition> holds on disk."""
    db = RocksDBBackend(str(state_dir / app_id / f"0_{partition}" / STORE))
    try:
        raw = db.get(META_KEY)
    finally:
        db.close()
    return -1 if raw is None else orjson.loads(raw).get("stream_time", -1)


@pytest.mark.parametrize("kind", ["hopping", "session"])
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_sigkill_mid_window_then_restart_emits_every_final_result(
        broker, topic_factory, tmp_path, guarantee, kind):
    src, out = topic_factory("clicks", PARTITIONS), topic_factory("final-windows", 2)
    app_id = f"wcrash-{out}"
    module = f"wcrash_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(TOPOLOGY.format(
        src=src, out=out, kind=kind, store=STORE, pause=PAUSE_VALUE, size=SIZE,
        advance=ADVANCE, gap=GAP, grace=GRACE))
    spec = f"{module}:topology"
    ks = (W.session_windowed_serde(STRING) if kind == "session"
          else W.time_windowed_serde(STRING, SIZE))
    data = events(11)
    want = reference(kind, data)
    assert len(set(w for w, _v in want)) == len(want)
    want_by_window = dict(want)
    marker_file = tmp_path / "paused"

    produce_events(broker.bootstrap_servers, src, data, 0, FIRST)
    proc = start_cli(tmp_path, broker, spec, app_id, guarantee, "run1.log",
                     {"WCRASH_PAUSE_MARKER": str(marker_file)})
    try:
        # The first part committed (both partitions' offsets past it), then the rest up to the
        # partitions' last but one record: the marker's batch is processed and the app blocks.
        wait_for(lambda: all(o >= FIRST for o in committed(
            broker.bootstrap_servers, app_id, src, PARTITIONS).values()),
            timeout=90, what="the first part committed")
        produce_events(broker.bootstrap_servers, src, data, FIRST, PER_PARTITION)
        wait_for(marker_file.exists, timeout=90, what="the app paused after the marker")
        time.sleep(0.5)         # let the producer hand out what the batch emitted
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        before_kill = consume_all(broker.bootstrap_servers, out, idle=2, timeout=15)
        marker_ts = int(marker_file.read_text())
        # The kill landed mid-window: the marker's stream time was never flushed to disk.
        assert flushed_stream_time(tmp_path / "state", app_id, 0) < marker_ts
        assert committed(broker.bootstrap_servers, app_id, src, PARTITIONS)[0] <= MARKER_AT

        produce_events(broker.bootstrap_servers, src, data, PER_PARTITION, None)
        proc = start_cli(tmp_path, broker, spec, app_id, guarantee, "run2.log")

        def complete(records):
            return set(want_by_window) <= {ks.deserialize(k) for _p, _o, k, _v, _h in records}

        consume_all(broker.bootstrap_servers, out, until=complete, timeout=120)
        # Re-emissions and anything extra arrive with the rest: read a while longer.
        got = consume_all(broker.bootstrap_servers, out, until=lambda r: False, timeout=4)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert before_kill, "no final result was emitted before the kill"
    assert len(before_kill) < len(want), "the kill must come before the end"
    seen = {}
    for w, v in ((ks.deserialize(k), struct.unpack(">q", v)[0])
                 for _p, _o, k, v, _h in got):
        seen.setdefault(w, []).append(v)
    assert set(seen) == set(want_by_window)
    wrong = {w: vs for w, vs in seen.items() if set(vs) != {want_by_window[w]}}
    assert not wrong, f"{len(wrong)} windows with other values than the reference's: " \
                      f"{sorted(wrong.items())[:5]}"
