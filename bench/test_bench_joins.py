"""W3 in-process (no broker): a stream-table join on a real Task, RocksDB table store.

100,000 customers (JSON) are loaded into the table first through the table's source (the
same path as consumed records); then every round pipes ROUND_RECORDS orders (JSON, keyed by
customer id, 10,000 per batch, one partition) through the join, ending with the commit's
store flush. Cases:

  w3_enrich       JSON orders -> join -> enriched JSON dict -> JSON sink (the whole task)
  w3_join_only    bytes values, the joiner returns a tuple, no sink serialization: the
                  join's own cost (one get_batch of the distinct keys per batch, the
                  joiner per record)
  w3_per_record   the w3_enrich work with a plain Processor doing store.get per record

Run with ``make bench`` (or ``pytest bench/test_bench_joins.py --benchmark-only``).
"""

from __future__ import annotations

import random
import time

import orjson
import pytest
from test_bench_inprocess import CountingChangelog, CountingCollector  # noqa: E402

import cstreams as cs
from cstreams import processors, serde, stores
from cstreams.task import Task

CUSTOMERS = 100_000
ROUND_RECORDS = 100_000
BATCH_RECORDS = 10_000
ROUNDS = 7

_rng = random.Random(15)
_CUSTOMER_KEYS = [f"cust-{i:06d}".encode() for i in range(CUSTOMERS)]
_CUSTOMER_VALUES = [orjson.dumps({"name": f"customer {i}", "tier": i % 3})
                    for i in range(CUSTOMERS)]
_ORDER_KEYS = [_CUSTOMER_KEYS[_rng.randrange(CUSTOMERS)] for _ in range(ROUND_RECORDS)]
_ORDER_VALUES = [orjson.dumps({"order": i, "amount": _rng.randrange(1, 10_000)})
                 for i in range(ROUND_RECORDS)]


def enrich(order, customer):
    return {"order": order["order"], "amount": order["amount"], "name": customer["name"]}


def pair(order, customer):
    return (order, customer)


class JoinEach(cs.Processor):
    def init(self, ctx):
        self.ctx = ctx
        self.store = ctx.get_store("customers")

    def process(self, record):
        c = self.store.get(record.key)
        if c is not None:
            self.ctx.forward(record.key, enrich(record.value, c))


def _topology(case):
    value_serde = serde.BYTES if case == "w3_join_only" else serde.JSON
    t = cs.Topology()
    t.add_source("customers-source", "customers", key_serde=serde.STRING,
                 value_serde=value_serde)
    t.add_source("orders-source", "orders", key_serde=serde.STRING, value_serde=value_serde)
    t.add_store(stores.rocksdb("customers", serde.STRING, value_serde,
                               cache_max_entries=2 * CUSTOMERS))
    t.add_processor("customers-table", processors.table("customers"),
                    parents="customers-source", stores=["customers"])
    if case == "w3_per_record":
        join = JoinEach
    else:
        join = processors.stream_table_join("customers",
                                            pair if case == "w3_join_only" else enrich)
    t.add_processor("join", join, parents="orders-source", stores=["customers"])
    if case == "w3_join_only":
        t.add_processor("drop", processors.filter(lambda k, v: False), parents="join")
    else:
        t.add_sink("out", "enriched", parents="join", key_serde=serde.STRING,
                   value_serde=serde.JSON)
    return t


def _batches(keys, values):
    ts = list(range(len(keys)))
    return [(keys[s:s + BATCH_RECORDS], values[s:s + BATCH_RECORDS], ts[s:s + BATCH_RECORDS],
             list(range(s, s + BATCH_RECORDS))) for s in range(0, len(keys), BATCH_RECORDS)]


@pytest.mark.parametrize("case", ["w3_enrich", "w3_join_only", "w3_per_record"])
def test_w3_stream_table_join(benchmark, tmp_path, case):
    topo = _topology(case)
    collector = CountingCollector()
    task = Task(topo, topo.subtopologies[0], 0, collector, application_id="bench",
                state_dir=str(tmp_path / "state"))
    task.init()
    for store in task.stores.values():
        store.changelog = CountingChangelog()
    RB = cs.RecordBatch
    for keys, values, ts, offs in _batches(_CUSTOMER_KEYS, _CUSTOMER_VALUES):
        task.process(RB("customers", 0, keys, values, ts, offs))
    task.flush_stores()
    orders = _batches(_ORDER_KEYS, _ORDER_VALUES)
    joined = task.nodes[[n.name for n in task.nodes].index("join")]
    cpu = []

    def one_round():
        c0 = time.process_time()
        for keys, values, ts, offs in orders:
            task.process(RB("orders", 0, keys, values, ts, offs))
        task.flush_stores()
        cpu.append(time.process_time() - c0)

    one_round()                       # warm-up
    collector.records = 0
    before = joined.records
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    task.close()
    # Every order reached the join, and (with a sink) every one was enriched and sent.
    assert joined.records - before == ROUNDS * ROUND_RECORDS
    if case != "w3_join_only":
        assert collector.records == ROUNDS * ROUND_RECORDS
    stats = benchmark.stats.stats
    cpu_median = sorted(cpu[1:])[len(cpu) // 2 - 1]
    benchmark.extra_info.update(
        workload="w3", path=case, implementation=cs.IMPLEMENTATION, records=ROUND_RECORDS,
        batch_records=BATCH_RECORDS, records_per_s=round(ROUND_RECORDS / stats.median),
        us_per_record=round(stats.median / ROUND_RECORDS * 1e6, 3),
        cpu_us_per_record=round(cpu_median / ROUND_RECORDS * 1e6, 3),
    )
