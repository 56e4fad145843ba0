"""Joins through the TopologyTestDriver, on whichever twin runs: stream-table (inner, left,
key selector, filtered tables) and table-table (inner, left, outer, retraction into a
downstream aggregation), each against a brute-force reference on random input with
out-of-order timestamps, both sides piped in interleaved batches."""

import random
from collections import defaultdict

import pytest

import cstreams as cs
from cstreams.dsl import StreamsBuilder
from cstreams.errors import TopologyError
from cstreams.testing import TopologyTestDriver

S, I64, J = cs.serde.STRING, cs.serde.INT64, cs.serde.JSON
PARTS = 3


def part_of(key):
    """The test's co-partitioning: a key's stream and table records share a partition."""
    return int(key[1:]) % PARTS


def random_pipes(seed, n_batches=60, n_keys=25, table_topic="customers",
                 stream_topic="orders", null_values=True):
    """Interleaved batches [(topic, keys, values, timestamps, partition)]: table updates
    (JSON customers, some tombstones) and stream records (JSON orders, some with a null
    value), timestamps out of order."""
    rng = random.Random(seed)
    pipes = []
    order_no = 0
    for _ in range(n_batches):
        p = rng.randrange(PARTS)
        keys = [k for k in (f"c{i}" for i in range(n_keys)) if part_of(k) == p]
        n = rng.randint(1, 12)
        ks = [rng.choice(keys) for _ in range(n)]
        ts = [rng.randrange(10_000) for _ in range(n)]
        if rng.random() < 0.4:
            vs = [None if rng.random() < 0.15 else {"name": f"n{rng.randrange(100)}",
                                                    "tier": rng.randrange(3)} for _ in ks]
            pipes.append((table_topic, ks, vs, ts, p))
        else:
            vs = []
            for _ in ks:
                order_no += 1
                vs.append(None if null_values and rng.random() < 0.05
                          else {"order": order_no, "amount": rng.randrange(1, 500)})
            pipes.append((stream_topic, ks, vs, ts, p))
    return pipes


def enrich(order, customer):
    return {"order": order["order"], "amount": order["amount"],
            "customer": None if customer is None else customer["name"]}


def reference_stream_table(pipes, left, table_filter=None, key_of=None):
    """Per stream key, the joined values in order (the table as of each batch)."""
    table = {}
    out = defaultdict(list)
    for topic, ks, vs, ts, _p in pipes:
        if topic == "customers":
            for k, v in zip(ks, vs):
                if v is None:
                    table.pop(k, None)
                else:
                    table[k] = v
            continue
        for k, v, t in zip(ks, vs, ts):
            if v is None:
                continue
            lk = k if key_of is None else key_of(k, v)
            c = None if lk is None else table.get(lk)
            if c is not None and table_filter is not None and not table_filter(lk, c):
                c = None
            if c is None and not left:
                continue
            out[k].append((enrich(v, c), t))
    return dict(out)


def by_key(records):
    out = defaultdict(list)
    for r in records:
        out[r.key].append((r.value, r.timestamp))
    return dict(out)


def pipe_all(d, pipes):
    for topic, ks, vs, ts, p in pipes:
        d.pipe_batch(topic, ks, vs, timestamps=ts, partition=p)


# --- stream-table, Processor API --------------------------------------------------------------
def processor_api_stream_table(left, key_selector=None):
    topo = cs.Topology()
    topo.add_source("customers-source", ["customers"], key_serde=S, value_serde=J)
    topo.add_source("orders-source", ["orders"], key_serde=S, value_serde=J)
    topo.add_store(cs.stores.rocksdb("customers", S, J))
    topo.add_processor("customers-table", cs.processors.table("customers"),
                       parents=["customers-source"], stores=["customers"])
    topo.add_processor("enrich", cs.processors.stream_table_join(
        "customers", enrich, key_selector=key_selector, left=left),
        parents=["orders-source"], stores=["customers"])
    topo.add_sink("out", "enriched", parents=["enrich"], key_serde=S, value_serde=J)
    return topo


@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_processor_api_stream_table_join_matches_brute_force(left, seed):
    pipes = random_pipes(seed)
    with TopologyTestDriver(processor_api_stream_table(left),
                            partitions={"orders": PARTS, "customers": PARTS,
                                        "enriched": PARTS}) as d:
        pipe_all(d, pipes)
        got = by_key(d.output("enriched"))
    want = reference_stream_table(pipes, left)
    assert got == want
    assert sum(map(len, want.values())) > 20


def test_processor_api_key_selector_looks_up_another_key_and_keeps_the_stream_key():
    # The order names its customer in the value; a null lookup key joins with None in a left
    # join and is dropped in an inner one.
    def customer_of(_k, v):
        return v.get("customer")

    for left in (False, True):
        with TopologyTestDriver(processor_api_stream_table(left, customer_of)) as d:
            d.pipe_batch("customers", ["c1", "c2"], [{"name": "ann"}, {"name": "bob"}])
            d.pipe_batch("orders", ["o1", "o2", "o3", "o4"],
                         [{"customer": "c2", "order": 1, "amount": 5},
                          {"customer": "c9", "order": 2, "amount": 6},
                          {"order": 3, "amount": 7},
                          {"customer": "c1", "order": 4, "amount": 8}],
                         timestamps=[40, 10, 30, 20])
            got = [(r.key, r.value["customer"], r.timestamp) for r in d.output("enriched")]
        if left:
            assert got == [("o1", "bob", 40), ("o2", None, 10), ("o3", None, 30),
                           ("o4", "ann", 20)]
        else:
            assert got == [("o1", "bob", 40), ("o4", "ann", 20)]


def test_stream_table_join_keeps_headers_of_the_joined_records():
    with TopologyTestDriver(processor_api_stream_table(False)) as d:
        d.pipe_batch("customers", ["c1"], [{"name": "ann"}])
        d.pipe_batch("orders", ["c2", "c1"], [{"order": 1, "amount": 1},
                                              {"order": 2, "amount": 2}],
                     headers=[[("h", b"2")], [("h", b"1")]])
        (rec,) = d.output("enriched")
        assert rec.key == "c1" and rec.headers == [("h", b"1")]


# --- stream-table, DSL ------------------------------------------------------------------------
@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("cache", [False, True])
def test_dsl_stream_table_join_matches_brute_force(left, cache):
    pipes = random_pipes(7)
    b = StreamsBuilder()
    customers = b.table("customers", key_serde=S, value_serde=J, name="customers",
                        cache=cache)
    orders = b.stream("orders", key_serde=S, value_serde=J)
    joined = (orders.left_join if left else orders.join)(customers, enrich, value_serde=J)
    joined.to("enriched")
    with TopologyTestDriver(b.build(), partitions={"orders": PARTS, "customers": PARTS}) as d:
        pipe_all(d, pipes)
        got = by_key(d.output("enriched"))
    assert got == reference_stream_table(pipes, left)


def test_dsl_join_reads_a_filtered_mapped_table_through_its_store():
    pipes = random_pipes(11, null_values=False)
    b = StreamsBuilder()
    customers = b.table("customers", key_serde=S, value_serde=J, name="customers")
    gold = (customers.filter(lambda _k, c: c["tier"] > 0)
            .map_values(lambda c: {"name": c["name"].upper(), "tier": c["tier"]}))
    b.stream("orders", key_serde=S, value_serde=J).join(gold, enrich).to(
        "enriched", value_serde=J)
    topo = b.build()
    # No second store: the join reads the table's store and applies filter and map_values.
    assert list(topo.stores) == ["customers-store"]
    with TopologyTestDriver(topo, partitions={"orders": PARTS, "customers": PARTS}) as d:
        pipe_all(d, pipes)
        got = by_key(d.output("enriched"))
    want = reference_stream_table(pipes, False, table_filter=lambda _k, c: c["tier"] > 0)
    want = {k: [({**v, "customer": v["customer"].upper()}, t) for v, t in vs]
            for k, vs in want.items()}
    assert got == want


def test_dsl_join_after_a_key_change_repartitions_the_stream_by_the_table_key():
    b = StreamsBuilder()
    customers = b.table("customers", key_serde=S, value_serde=J)
    orders = b.stream("orders", key_serde=S, value_serde=J)
    (orders.join(customers, lambda o, c: f"{o['order']}:{c['name']}",
                 key_selector=lambda _k, o: o["customer"], value_serde=S, name="by-customer")
     .to("enriched"))
    topo = b.build()
    assert "by-customer-repartition" in topo.internal_topics()
    from cstreams._impl import dispatch

    def home(key):       # where a producer's default partitioner puts the customer
        return dispatch.murmur2_partitions([S.serialize(key)], 4)[0]

    with TopologyTestDriver(topo, partitions={"orders": 2, "customers": 4}) as d:
        # Co-partitioned with the table, not sized by the 2 order partitions.
        assert d._collector.partitions_for("test-driver-by-customer-repartition") == 4
        for c in ("c0", "c1", "c2", "c3"):
            d.pipe_batch("customers", [c], [{"name": f"n{c[1:]}"}], partition=home(c))
        d.pipe_batch("orders", ["o1", "o2", "o3"],
                     [{"order": 1, "customer": "c3"}, {"order": 2, "customer": "c0"},
                      {"order": 3, "customer": "c7"}], partition=1)
        got = sorted((r.key, r.value) for r in d.output("enriched"))
    # The output carries the selected key (the stream was re-keyed).
    assert got == [("c0", "2:n0"), ("c3", "1:n3")]


def test_dsl_stream_table_join_errors():
    b = StreamsBuilder()
    s = b.stream("in", key_serde=S, value_serde=S)
    t = b.table("t", key_serde=S, value_serde=S)
    with pytest.raises(TopologyError, match="no windows"):
        s.join(t, lambda a, b: a, 1000)
    with pytest.raises(TopologyError, match="no stream-table outer join"):
        s.outer_join(t, lambda a, b: a)
    with pytest.raises(TopologyError, match="not a table"):
        s.join(object(), lambda a, b: a)
    with pytest.raises(TopologyError, match="itself"):
        t.join(t, lambda a, b: a, value_serde=S)
    other = b.table("u", key_serde=S, value_serde=S)
    with pytest.raises(TopologyError, match="value serde"):
        t.join(other, lambda a, b: a)


# --- table-table ------------------------------------------------------------------------------
def random_table_pipes(seed, n_batches=80, n_keys=20):
    """Interleaved update batches of two tables ("left", "right"; INT64 values, tombstones),
    out-of-order timestamps."""
    rng = random.Random(seed)
    pipes = []
    for _ in range(n_batches):
        p = rng.randrange(PARTS)
        keys = [k for k in (f"k{i}" for i in range(n_keys)) if part_of(k) == p]
        n = rng.randint(1, 8)
        ks = [rng.choice(keys) for _ in range(n)]
        vs = [None if rng.random() < 0.2 else rng.randrange(1, 100) for _ in ks]
        ts = [rng.randrange(10_000) for _ in ks]
        pipes.append((rng.choice(["left", "right"]), ks, vs, ts, p))
    return pipes


def joined_value(how, a, b):
    if a is not None and b is not None:
        return a * 1000 + b
    if (a is not None and how != "inner") or (b is not None and how == "outer"):
        return (a or 0) * 1000 + (b or 0)
    return None


def reference_table_join(pipes, how):
    """Per key, the joined values emitted, one per batch that changed the key's join."""
    sides = {"left": {}, "right": {}}
    result = {}
    out = defaultdict(list)
    for topic, ks, vs, _ts, _p in pipes:
        for k, v in zip(ks, vs):
            sides[topic][k] = v
        for k in dict.fromkeys(ks):
            new = joined_value(how, sides["left"].get(k), sides["right"].get(k))
            old = result.get(k)
            if new is None and old is None:
                continue
            result[k] = new
            out[k].append(new)
    return dict(out), {k: v for k, v in result.items() if v is not None}


def table_join_joiner(a, b):
    return (a or 0) * 1000 + (b or 0)


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
@pytest.mark.parametrize("cache", [False, True])
def test_dsl_table_table_join_matches_brute_force_and_retracts_into_an_aggregation(how, cache):
    pipes = random_table_pipes(5)
    b = StreamsBuilder()
    left = b.table("left", key_serde=S, value_serde=I64, name="l", cache=cache)
    right = b.table("right", key_serde=S, value_serde=I64, name="r", cache=cache)
    join = getattr(left, {"inner": "join", "left": "left_join", "outer": "outer_join"}[how])
    joined = join(right, table_join_joiner, value_serde=I64, name="lr", cache=cache)
    joined.to_stream().to("joined")
    # Downstream: the sum of the joined values per key parity. Every update retracts the old
    # joined value from its group, so the sum always equals that of the current join.
    (joined.group_by(lambda k, v: (str(int(k[1:]) % 2), v), key_serde=S, value_serde=I64,
                     name="by-parity")
     .reduce(lambda a, v: a + v, lambda a, v: a - v, name="sums", cache=False)
     .to_stream().to("sums"))
    with TopologyTestDriver(b.build(), partitions={"left": PARTS, "right": PARTS}) as d:
        pipe_all(d, pipes)
        got = by_key(d.output("joined"))
        sums = d.output_as_dict("sums")
    want, final = reference_table_join(pipes, how)
    assert {k: [v for v, _t in vs] for k, vs in got.items()} == want
    want_sums = defaultdict(int)
    for k, v in final.items():
        want_sums[str(int(k[1:]) % 2)] += v
    assert {g: s for g, s in sums.items() if s} == {g: s for g, s in want_sums.items() if s}
    assert sum(map(len, want.values())) > 20


def test_processor_api_table_table_join_sends_old_values():
    topo = cs.Topology()
    for side in ("left", "right"):
        topo.add_source(f"{side}-source", [side], key_serde=S, value_serde=I64)
        topo.add_store(cs.stores.in_memory(side, S, I64))
        topo.add_processor(f"{side}-table", cs.processors.table(side),
                           parents=[f"{side}-source"], stores=[side])
    topo.add_store(cs.stores.in_memory("joined", S, I64))
    topo.add_processor("join", cs.processors.table_table_join(
        "left", "right", "joined", lambda a, b: a + (b or 0), how="left", send_old=True),
        parents=["left-table", "right-table"], stores=["left", "right", "joined"])
    seen = []

    class Collect(cs.BatchProcessor):
        def init(self, ctx):
            pass

        def process_batch(self, batch):
            seen.extend((k, c.new, c.old) for k, c in zip(batch.keys, batch.values))

    topo.add_processor("collect", Collect, parents=["join"])
    with TopologyTestDriver(topo) as d:
        d.pipe("right", "a", 5)                 # no left value: nothing in a left join
        d.pipe("left", "a", 1)
        d.pipe("right", "a", 7)
        d.pipe("right", "a", None)
        d.pipe("left", "a", None)
        d.pipe("left", "b", 2)
    assert seen == [("a", 6, None), ("a", 8, 6), ("a", 1, 8), ("a", None, 1), ("b", 2, None)]


# --- global tables ----------------------------------------------------------------------------
def random_global_pipes(seed, n_batches=60):
    """Product updates (one global topic, any partition) and orders naming a product in
    their value, keyed by customer over PARTS partitions."""
    rng = random.Random(seed)
    pipes, order_no = [], 0
    for _ in range(n_batches):
        n = rng.randint(1, 10)
        if rng.random() < 0.35:
            ks = [f"p{rng.randrange(15)}" for _ in range(n)]
            vs = [None if rng.random() < 0.15 else {"title": f"t{rng.randrange(99)}"}
                  for _ in ks]
            pipes.append(("products", ks, vs, [0] * n, rng.randrange(2)))
        else:
            ks = [f"c{rng.randrange(30)}" for _ in range(n)]
            vs = []
            for _ in ks:
                order_no += 1
                vs.append({"order": order_no,
                           "product": None if rng.random() < 0.05 else f"p{rng.randrange(18)}"})
            pipes.append(("orders", ks, vs, [rng.randrange(1000) for _ in ks],
                          rng.randrange(PARTS)))
    return pipes


def reference_global(pipes, left):
    products, out = {}, defaultdict(list)
    for topic, ks, vs, ts, _p in pipes:
        if topic == "products":
            for k, v in zip(ks, vs):
                products[k] = v
            continue
        for k, v, t in zip(ks, vs, ts):
            p = None if v["product"] is None else products.get(v["product"])
            if p is None and not left:
                continue
            out[k].append(((v["order"], None if p is None else p["title"]), t))
    return dict(out)


def product_joiner(o, p):
    return [o["order"], None if p is None else p["title"]]


@pytest.mark.parametrize("left", [False, True])
def test_dsl_stream_global_table_join_with_a_key_mapper_matches_brute_force(left):
    pipes = random_global_pipes(4)
    b = StreamsBuilder()
    products = b.global_table("products", key_serde=S, value_serde=J, name="products")
    orders = b.stream("orders", key_serde=S, value_serde=J)
    (orders.left_join if left else orders.join)(
        products, product_joiner, key_selector=lambda _k, o: o["product"],
        value_serde=J).to("out")
    topo = b.build()
    assert "Global store: products-store (topic: products)" in str(topo.describe())
    with TopologyTestDriver(topo, partitions={"orders": PARTS}) as d:
        pipe_all(d, pipes)
        got = {k: [(tuple(v), t) for v, t in vs] for k, vs in by_key(d.output("out")).items()}
        # One copy for every task.
        stores = {id(t.stores["products-store"]) for t in d.tasks().values()}
        assert len(d.tasks()) == PARTS and len(stores) == 1
    assert got == reference_global(pipes, left)


def test_processor_api_global_store_is_read_by_tasks_of_every_sub_topology():
    topo = cs.Topology()
    topo.add_global_store(cs.stores.in_memory("products", S, J), "products")
    for name in ("a", "b"):
        topo.add_source(f"{name}-source", [f"orders-{name}"], key_serde=S, value_serde=J)
        topo.add_processor(f"{name}-join", cs.processors.stream_table_join(
            "products", product_joiner, key_selector=lambda _k, o: o["product"], left=True),
            parents=[f"{name}-source"], stores=["products"])
        topo.add_sink(f"{name}-sink", "out", parents=[f"{name}-join"], key_serde=S,
                      value_serde=J)
    # The global store joins no sub-topologies: each runs with its own partitions.
    assert len(topo.subtopologies) == 2
    assert all(sub.stores == [] for sub in topo.subtopologies)
    with TopologyTestDriver(topo) as d:
        d.pipe("products", "p1", {"title": "pen"})
        d.pipe("orders-a", "c1", {"order": 1, "product": "p1"})
        d.pipe("orders-b", "c2", {"order": 2, "product": "p1"})
        d.pipe("products", "p1", None)
        d.pipe("orders-b", "c3", {"order": 3, "product": "p1"})
        assert [(r.key, r.value) for r in d.output("out")] == [
            ("c1", [1, "pen"]), ("c2", [2, "pen"]), ("c3", [3, None])]
        assert d.get_store("products").get("p1") is None


def test_global_store_validation():
    topo = cs.Topology()
    topo.add_source("s", ["orders"], key_serde=S, value_serde=J)
    with pytest.raises(TopologyError, match="read by source"):
        topo.add_global_store(cs.stores.in_memory("g", S, J), "orders")
    topo.add_global_store(cs.stores.in_memory("g", S, J), "products")
    with pytest.raises(TopologyError, match="duplicate store"):
        topo.add_global_store(cs.stores.in_memory("g", S, J), "other")
    with pytest.raises(TopologyError, match="feeds global store"):
        topo.add_global_store(cs.stores.in_memory("h", S, J), "products")
