"""W2 in-process (no broker): windowed counts through a real Task with RocksDB window stores.

Workload W2 (issue 14): 1,000,000 records, 10,000 keys, event timestamps spread over one hour
with up to 5 s of disorder, in batches of 10,000 records of one partition. Cases:
  tumbling   1-minute windows, count
  hopping    5-minute windows advancing by 1 minute (5 windows per record), count
  session    30-second inactivity gap, count
each with emit "update" (every update per batch, forwarded to the sink) and "final" (once per
window when it closes), grace 5 s (the disorder bound: no record is late). Every round ends
with the commit's store flush, as the runtime does; round r shifts the timestamps by 2r hours
so that every round meets open windows (stream time goes on across rounds, as on an endless
stream, and retention drops the old segments).

Targets (DESIGN.md): tumbling >= 1,500,000 records/s on one core, hopping >= 500,000.
extra_info: records_per_s (median wall round), us_per_record, cpu_us_per_record, outputs.
"""

from __future__ import annotations

import random
import time

import pytest

import cstreams as cs
from cstreams import serde
from cstreams import windowed as W
from cstreams.task import Task
from cstreams.windows import SessionWindows, TimeWindows

RECORDS = 1_000_000
KEYS = 10_000
BATCH = 10_000
HOUR = 3_600_000
DISORDER_MS = 5_000
ROUNDS = 3


def _columns():
    rng = random.Random(14)
    keys = [f"user-{rng.randrange(KEYS):05d}".encode() for _ in range(RECORDS)]
    ts = [max(0, i * HOUR // RECORDS - rng.randrange(DISORDER_MS)) for i in range(RECORDS)]
    values = [b"\x00" * 8] * RECORDS
    return keys, values, ts


KEYS_COL, VALUES_COL, TS_COL = _columns()


class _Collector:
    def __init__(self):
        self.records = 0

    def partitions_for(self, topic):
        return 8

    def send_batch(self, topic, keys, values, timestamps, headers, partitions):
        self.records += len(keys)


class _Changelog:
    def __init__(self):
        self.records = 0

    def send(self, kbs, vbs):
        self.records += len(kbs)


# Grace 5 s: the input's disorder bound, so no record is late (as bench/e2e_windows.py).
GRACE_MS = 5_000
CASES = {
    "tumbling": TimeWindows.of(60_000, grace_ms=GRACE_MS),
    "hopping": TimeWindows.of(300_000, grace_ms=GRACE_MS).advance_by(60_000),
    "session": SessionWindows.with_inactivity_gap(30_000, grace_ms=GRACE_MS),
}


def _topology(windows, emit):
    t = cs.Topology()
    t.add_source("in", "in", key_serde=serde.STRING, value_serde=serde.BYTES)
    t.add_store(W.store("w", windows, W.COUNT, key_serde=serde.STRING))
    t.add_processor("agg", W.aggregate_windows("w", windows, W.COUNT, emit=emit),
                    parents="in", stores=["w"])
    ks = (W.session_windowed_serde(serde.STRING) if isinstance(windows, SessionWindows)
          else W.time_windowed_serde(serde.STRING, windows.size_ms))
    t.add_sink("out", "out", parents="agg", key_serde=ks, value_serde=serde.INT64)
    return t


@pytest.mark.parametrize("emit", ["update", "final"])
@pytest.mark.parametrize("case", list(CASES))
def test_w2(benchmark, tmp_path, case, emit):
    topo = _topology(CASES[case], emit)
    collector = _Collector()
    task = Task(topo, topo.subtopologies[0], 0, collector, application_id="bench-w2",
                state_dir=str(tmp_path / "state"))
    task.init()
    changelog = _Changelog()
    for store in task.stores.values():
        store.changelog = changelog
    RB = cs.RecordBatch
    rounds = [0]
    cpu = []

    def one_round():
        shift = rounds[0] * 2 * HOUR
        rounds[0] += 1
        batches = []
        for start in range(0, RECORDS, BATCH):
            sl = slice(start, start + BATCH)
            batches.append((KEYS_COL[sl], VALUES_COL[sl], [t + shift for t in TS_COL[sl]],
                            list(range(start, start + BATCH))))
        c0 = time.process_time()
        w0 = time.perf_counter()
        for keys, values, ts, offs in batches:
            task.process(RB("in", 0, keys, values, ts, offs))
        task.flush_stores()
        cpu.append((time.process_time() - c0, time.perf_counter() - w0))

    one_round()                     # warm-up: store files, caches, code paths
    collector.records = 0
    late0 = task.metrics["late_records_dropped"]
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    task.close()
    assert collector.records > 0
    assert task.metrics["late_records_dropped"] == late0 == 0
    measured = sorted(cpu[1:])
    cpu_med = measured[len(measured) // 2][0]
    wall_med = sorted(w for _, w in cpu[1:])[len(cpu) // 2 - 1]
    benchmark.extra_info.update(
        workload=f"w2_{case}_{emit}",
        implementation=cs.IMPLEMENTATION,
        records=RECORDS,
        batch_records=BATCH,
        outputs_per_round=collector.records // ROUNDS,
        records_per_s=round(RECORDS / wall_med),
        us_per_record=round(wall_med / RECORDS * 1e6, 3),
        cpu_us_per_record=round(cpu_med / RECORDS * 1e6, 3),
    )
