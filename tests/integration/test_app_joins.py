"""Joins end to end on the real broker, RocksDB stores on disk: a stream-table join (DSL)
whose table is loaded first, restarted on empty state (the table restored from its source
topic up to the committed offsets) and continued; a table-table join feeding an aggregation
through retractions. Exact output under exactly_once_v2 (no fault here), nothing missing
under at-least-once."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

pytest.importorskip("confluent_kafka")

from helpers import app_config, committed, consume_all, int64, produce, wait_for  # noqa: E402

import cstreams as cs  # noqa: E402
from cstreams.dsl import StreamsBuilder  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

S, I64, J = cs.serde.STRING, cs.serde.INT64, cs.serde.JSON
PARTS = 3


def _enrichment(customers_topic, orders_topic, out_topic):
    b = StreamsBuilder()
    customers = b.table(customers_topic, key_serde=S, value_serde=J, name="customers")
    (b.stream(orders_topic, key_serde=S, value_serde=J)
     .join(customers, lambda o, c: {"order": o["order"], "amount": o["amount"],
                                    "name": c["name"]}, value_serde=J)
     .to(out_topic))
    return b.build()


def _wait_committed(bootstrap, group, topic, total):
    wait_for(lambda: sum(max(o, 0) for o in committed(bootstrap, group, topic,
                                                      PARTS).values()) >= total,
             timeout=90, what=f"group {group} to commit {total} records of {topic}")


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_stream_table_join_end_to_end_with_a_restart_on_empty_state(
        broker, topic_factory, tmp_path, guarantee):
    customers_topic = topic_factory("customers", PARTS)
    orders_topic = topic_factory("orders", PARTS)
    out_topic = topic_factory("enriched", PARTS)
    bootstrap = broker.bootstrap_servers
    app_id = f"join-{out_topic}"
    rng = random.Random(3)
    customers = {f"c{i}": {"name": f"name-{i}"} for i in range(200)}
    produce(bootstrap, customers_topic,
            [(k.encode(), json.dumps(v).encode()) for k, v in customers.items()])
    order_no = [0]

    def orders(n):
        recs, want = [], Counter()
        for _ in range(n):
            order_no[0] += 1
            c = f"c{rng.randrange(250)}"          # a fifth of them have no customer
            amount = rng.randrange(1, 1000)
            recs.append((c.encode(), json.dumps({"order": order_no[0],
                                                 "amount": amount}).encode()))
            if c in customers:
                want[(c, order_no[0], amount, customers[c]["name"])] += 1
        return recs, want

    def got(recs):
        out = Counter()
        for _p, _o, k, v, _h in recs:
            d = json.loads(v)
            out[(k.decode(), d["order"], d["amount"], d["name"])] += 1
        return out

    def app(state_dir):
        return cs.App(_enrichment(customers_topic, orders_topic, out_topic),
                      application_id=app_id, bootstrap_servers=bootstrap,
                      state_dir=str(tmp_path / state_dir), commit_interval_ms=200,
                      config=app_config(), processing_guarantee=guarantee)

    first_recs, first = orders(600)
    a = app("a")
    a.start()
    try:
        # The table is loaded (and committed) before any order exists: every order of a
        # known customer must join.
        _wait_committed(bootstrap, app_id, customers_topic, len(customers))
        produce(bootstrap, orders_topic, first_recs)
        out = consume_all(bootstrap, out_topic, timeout=120,
                          until=lambda r: sum(got(r).values()) >= sum(first.values()))
        _wait_committed(bootstrap, app_id, orders_topic, len(first_recs))
    finally:
        a.close()
    assert got(out) == first

    # A new instance on empty state: the table store restores from the customers topic up to
    # the committed offsets, then new orders join against it.
    second_recs, second = orders(400)
    produce(bootstrap, orders_topic, second_recs)
    b = app("b")
    b.start()
    want = first + second
    try:
        out = consume_all(bootstrap, out_topic, timeout=120,
                          until=lambda r: sum(got(r).values()) >= sum(want.values()))
    finally:
        b.close()
    if guarantee == "exactly_once_v2":
        assert got(out) == want
    else:
        assert set(got(out)) == set(want)       # nothing missing; duplicates allowed


def test_table_table_join_feeds_an_aggregation_through_retractions(broker, topic_factory,
                                                                   tmp_path):
    left_topic = topic_factory("accounts", PARTS)
    right_topic = topic_factory("limits", PARTS)
    out_topic = topic_factory("totals", PARTS)
    bootstrap = broker.bootstrap_servers
    rng = random.Random(8)
    left, right = {}, {}

    def updates(side, n):
        recs = []
        for _ in range(n):
            k = f"acct{rng.randrange(60)}"
            v = None if rng.random() < 0.1 else rng.randrange(1, 100)
            side[k] = v
            recs.append((k.encode(), None if v is None else v.to_bytes(8, "big")))
        return recs

    b = StreamsBuilder()
    lt = b.table(left_topic, key_serde=S, value_serde=I64, name="accounts")
    rt = b.table(right_topic, key_serde=S, value_serde=I64, name="limits")
    (lt.left_join(rt, lambda a, r: a * (r or 1), value_serde=I64, name="exposure")
     .group_by(lambda k, v: (k[-1], v), key_serde=S, value_serde=I64, name="by-digit")
     .reduce(lambda a, v: a + v, lambda a, v: a - v, name="totals")
     .to_stream().to(out_topic))

    produce(bootstrap, left_topic, updates(left, 300))
    produce(bootstrap, right_topic, updates(right, 300))
    want = Counter()
    for k, a in left.items():
        if a is not None:
            want[k[-1]] += a * (right.get(k) or 1)
    want = {d: t for d, t in want.items() if t}

    def latest(recs):
        out = {}
        for _p, _o, k, v, _h in recs:
            out[k.decode()] = int64(v)
        return {d: t for d, t in out.items() if t}

    app = cs.App(b.build(), application_id=f"ttjoin-{out_topic}", bootstrap_servers=bootstrap,
                 state_dir=str(tmp_path), commit_interval_ms=200, config=app_config())
    app.start()
    try:
        out = consume_all(bootstrap, out_topic, timeout=120,
                          until=lambda r: latest(r) == want)
    finally:
        app.close()
    assert latest(out) == want


def test_global_table_restored_in_full_on_every_instance_and_kept_current(
        broker, topic_factory, tmp_path):
    products_topic = topic_factory("products", 2)
    orders_topic = topic_factory("gorders", PARTS)
    out_topic = topic_factory("genriched", PARTS)
    bootstrap = broker.bootstrap_servers
    app_id = f"gjoin-{out_topic}"
    products = {f"p{i}": f"title-{i}" for i in range(50)}
    produce(bootstrap, products_topic,
            [(k.encode(), json.dumps({"title": t}).encode()) for k, t in products.items()])

    b = StreamsBuilder()
    table = b.global_table(products_topic, key_serde=S, value_serde=J, name="products")
    (b.stream(orders_topic, key_serde=S, value_serde=J)
     .left_join(table, lambda o, p: [o["order"], None if p is None else p["title"]],
                key_selector=lambda _k, o: o["product"], value_serde=J)
     .to(out_topic))
    topo = b.build()

    def app(state_dir):
        return cs.App(topo, application_id=app_id, bootstrap_servers=bootstrap,
                      state_dir=str(tmp_path / state_dir), commit_interval_ms=200,
                      config=app_config())

    def results(recs):
        return {tuple(json.loads(v)) for _p, _o, _k, v, _h in recs}

    rng = random.Random(4)
    first = [(f"c{rng.randrange(40)}", i, f"p{rng.randrange(50)}") for i in range(300)]
    want = {(i, products[p]) for _c, i, p in first}
    # The orders exist before the app starts: only a fully restored global table joins them
    # all (its restoration precedes every task).
    produce(bootstrap, orders_topic, [(c.encode(), json.dumps({"order": i, "product": p})
                                       .encode()) for c, i, p in first])
    a = app("a")
    a.start()
    try:
        out = consume_all(bootstrap, out_topic, timeout=120,
                          until=lambda r: want <= results(r))
        assert want <= results(out)
        assert all(title is not None for _i, title in results(out))
        # A product added while the app runs reaches the global store: an order for it is
        # eventually joined with its title.
        produce(bootstrap, products_topic, [(b"p-new", json.dumps({"title": "fresh"})
                                             .encode())])
        n = 1000

        def probe(recs):
            nonlocal n
            if (n, "fresh") in results(recs):
                return True
            n += 1
            produce(bootstrap, orders_topic, [(b"c1", json.dumps({"order": n,
                                                                  "product": "p-new"})
                                               .encode())])
            return False

        consume_all(bootstrap, out_topic, timeout=90, until=probe)
        assert (n, "fresh") in results(consume_all(bootstrap, out_topic, timeout=30,
                                                   until=lambda r: (n, "fresh") in results(r)))
    finally:
        a.close()

    # A second instance on empty state restores the whole global table before processing.
    second = [(f"c{rng.randrange(40)}", 5000 + i, "p-new" if i % 2 else "p7")
              for i in range(100)]
    produce(bootstrap, orders_topic, [(c.encode(), json.dumps({"order": i, "product": p})
                                       .encode()) for c, i, p in second])
    want2 = {(i, "fresh" if p == "p-new" else products[p]) for _c, i, p in second}
    b2 = app("b")
    b2.start()
    try:
        out = consume_all(bootstrap, out_topic, timeout=120,
                          until=lambda r: want2 <= results(r))
    finally:
        b2.close()
    assert want2 <= results(out)


def test_time_synchronization_processes_earlier_table_updates_before_later_orders(
        broker, topic_factory, tmp_path):
    """The orders are in their topic before the customers, but carry later timestamps: the
    task's partition group processes each partition's records lowest timestamp first
    (waiting up to max_task_idle_ms for a partition with nothing fetched yet), so every
    order finds its customer."""
    from confluent_kafka import Producer

    customers_topic = topic_factory("tcustomers", PARTS)
    orders_topic = topic_factory("torders", PARTS)
    out_topic = topic_factory("tenriched", PARTS)
    bootstrap = broker.bootstrap_servers
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                  "partitioner": "murmur2_random"})
    rng = random.Random(6)
    orders = [(f"c{rng.randrange(100)}", i) for i in range(500)]
    for i, (c, n) in enumerate(orders):
        p.produce(orders_topic, json.dumps({"order": n, "amount": 1}).encode(), c.encode(),
                  timestamp=2_000_000 + i)
    assert p.flush(30) == 0
    for i in range(100):
        p.produce(customers_topic, json.dumps({"name": f"name-{i}"}).encode(),
                  f"c{i}".encode(), timestamp=1_000_000 + i)
    assert p.flush(30) == 0

    b = StreamsBuilder()
    customers = b.table(customers_topic, key_serde=S, value_serde=J, name="customers")
    (b.stream(orders_topic, key_serde=S, value_serde=J)
     .left_join(customers, lambda o, c: [o["order"], None if c is None else c["name"]],
                value_serde=J)
     .to(out_topic))
    app = cs.App(b.build(), application_id=f"tsync-{out_topic}", bootstrap_servers=bootstrap,
                 state_dir=str(tmp_path), commit_interval_ms=200, config=app_config(),
                 max_task_idle_ms=5000, buffered_records_per_partition=100)
    app.start()
    try:
        out = consume_all(bootstrap, out_topic, timeout=120,
                          until=lambda r: len(r) >= len(orders))
    finally:
        app.close()
    got = sorted(tuple(json.loads(v)) for _p, _o, _k, v, _h in out)
    assert got == sorted((n, f"name-{c[1:]}") for c, n in orders)


def test_stream_table_join_across_a_rebalance(broker, topic_factory, tmp_path):
    """Two instances share the join's tasks; one leaves and the other takes its tasks over,
    their table stores restored from the customers topic (up to the committed offsets):
    every order is joined, none is missing (at-least-once)."""
    customers_topic = topic_factory("rcustomers", PARTS)
    orders_topic = topic_factory("rorders", PARTS)
    out_topic = topic_factory("renriched", PARTS)
    bootstrap = broker.bootstrap_servers
    app_id = f"rjoin-{out_topic}"
    customers = {f"c{i}": f"name-{i}" for i in range(90)}
    produce(bootstrap, customers_topic,
            [(k.encode(), json.dumps({"name": v}).encode()) for k, v in customers.items()])
    rng = random.Random(12)

    def orders(start, n):
        return [(f"c{rng.randrange(90)}", start + i) for i in range(n)]

    def send(batch):
        produce(bootstrap, orders_topic, [(c.encode(), json.dumps({"order": n, "amount": 1})
                                           .encode()) for c, n in batch])

    def results(recs):
        return {(k.decode(), json.loads(v)["order"], json.loads(v)["name"])
                for _p, _o, k, v, _h in recs}

    def new_app(name):
        return cs.App(_enrichment(customers_topic, orders_topic, out_topic),
                      application_id=app_id, bootstrap_servers=bootstrap,
                      state_dir=str(tmp_path / name), commit_interval_ms=200,
                      config=app_config())

    def running(app):
        return {t for t, m in app.metrics()["tasks"].items() if m["state"] == "running"}

    a, b = new_app("a").start(), new_app("b").start()
    closed_b = False
    try:
        wait_for(lambda: running(a) and running(b) and len(running(a) | running(b)) == PARTS,
                 timeout=60, what="both instances running the join's tasks")
        _wait_committed(bootstrap, app_id, customers_topic, len(customers))
        first = orders(0, 300)
        send(first)
        want = {(c, n, customers[c]) for c, n in first}
        consume_all(bootstrap, out_topic, timeout=90, until=lambda r: want <= results(r))
        b.close()
        closed_b = True
        second = orders(1000, 300)
        send(second)
        want |= {(c, n, customers[c]) for c, n in second}
        out = consume_all(bootstrap, out_topic, timeout=120,
                          until=lambda r: want <= results(r))
        wait_for(lambda: len(running(a)) == PARTS, what="a running every task")
    finally:
        a.close()
        if not closed_b:
            b.close()
    assert results(out) == want


def _stream_stream_reference(records, windows, how):
    """Every joined and unmatched result of a windowed stream-stream join of ``records``
    [(side, partition, key, value, timestamp)] in which no record is late (the grace covers
    every disorder): per partition, pairs within the windows; an unmatched record of a kept
    side once the partition's final stream time passed its window end + grace."""
    w = windows
    final = {}
    for _side, p, _k, _v, t in records:
        final[p] = max(final.get(p, -1), t)
    left = [r for r in records if r[0] == "left"]
    right = [r for r in records if r[0] == "right"]
    out, matched = Counter(), set()
    for li, (_s, p, k, lv, lt) in enumerate(left):
        for ri, (_s2, p2, k2, rv, rt) in enumerate(right):
            if p == p2 and k == k2 and lt - w.before_ms <= rt <= lt + w.after_ms:
                out[(k, lv, rv, max(lt, rt))] += 1
                matched.update({("left", li), ("right", ri)})
    keeps = {"inner": (), "left": ("left",), "outer": ("left", "right")}[how]
    for side, recs, close in (("left", left, w.after_ms), ("right", right, w.before_ms)):
        if side not in keeps:
            continue
        for i, (_s, p, k, v, t) in enumerate(recs):
            if (side, i) not in matched and final[p] > t + close + w.grace_ms:
                out[(k, v, None, t) if side == "left" else (k, None, v, t)] += 1
    return out


@pytest.mark.parametrize("how", ["left", "outer"])
def test_windowed_stream_stream_join_end_to_end_exact_across_a_restart(
        broker, topic_factory, tmp_path, how):
    """Orders and payments (co-partitioned by order key) joined within a window, exactly
    once, RocksDB window stores with changelogs; half the input, a clean stop, a new instance
    on empty state (the join's stores restored from their changelogs: records, sequence
    numbers, stream time), the other half. The output equals the reference exactly: every
    pair, and each unmatched record once, after its window closed."""
    from confluent_kafka import Producer

    left_topic = topic_factory("ss-orders", PARTS)
    right_topic = topic_factory("ss-payments", PARTS)
    out_topic = topic_factory("ss-joined", PARTS)
    bootstrap = broker.bootstrap_servers
    app_id = f"ssjoin-{out_topic}"
    windows = cs.JoinWindows(before_ms=300, after_ms=1_000, grace_ms=10_000)
    rng = random.Random(15)
    partition_of = {}

    def make(n, start):
        recs = []
        for i in range(n):
            k = f"o{rng.randrange(60)}"
            t = start + i * 20 + rng.randrange(-150, 150)
            side = rng.choice(["left", "right"])
            recs.append((side, k, f"{side[0]}{start + i}", max(t, 0)))
        return recs

    def send(recs):
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                      "partitioner": "murmur2_random"})
        for side, k, v, t in recs:
            p.produce(left_topic if side == "left" else right_topic, json.dumps(v).encode(),
                      k.encode(), timestamp=t)
        assert p.flush(30) == 0

    b = StreamsBuilder()
    orders = b.stream(left_topic, key_serde=S, value_serde=J)
    payments = b.stream(right_topic, key_serde=S, value_serde=J)
    (getattr(orders, f"{how}_join")(payments, lambda o, pay: [o, pay], windows, value_serde=J)
     .to(out_topic))
    topo = b.build()

    def app(state_dir):
        return cs.App(topo, application_id=app_id, bootstrap_servers=bootstrap,
                      state_dir=str(tmp_path / state_dir), commit_interval_ms=200,
                      config=app_config(), processing_guarantee="exactly_once_v2",
                      max_task_idle_ms=2000)

    def results(raw):
        out = Counter()
        for _p, _o, k, v, _h in raw:
            lv, rv = json.loads(v)
            out[(k.decode(), lv, rv)] += 1
        return out

    first, second = make(400, 10_000), make(400, 40_000)
    send(first)
    a = app("a")
    a.start()
    try:
        want1 = _stream_stream_reference(_partitioned(first, partition_of), windows, how)
        consume_all(bootstrap, out_topic, timeout=120,
                    until=lambda r: sum(results(r).values()) >= sum(want1.values()))
        _wait_committed(bootstrap, app_id, left_topic,
                        sum(1 for r in first if r[0] == "left"))
        _wait_committed(bootstrap, app_id, right_topic,
                        sum(1 for r in first if r[0] == "right"))
    finally:
        a.close()
    send(second)
    want = _stream_stream_reference(_partitioned(first + second, partition_of), windows, how)
    want = Counter({(k, lv, rv): n for (k, lv, rv, _t), n in want.items()})
    b2 = app("b")
    b2.start()
    try:
        # idle only fails a miss fast: the output pauses while b2 joins the group and
        # restores the stores (a reader's own group join no longer hides ~3 s of that).
        out = consume_all(bootstrap, out_topic, timeout=120, idle=10,
                          until=lambda r: sum(results(r).values()) >= sum(want.values()))
    finally:
        b2.close()
    got = results(out)
    assert got == want
    assert any(rv is None for _k, _lv, rv in got)


def _partitioned(recs, cache):
    """(side, partition, key, value, timestamp) with the murmur2 partition of each key."""
    from cstreams._impl import partitioner

    out = []
    for side, k, v, t in recs:
        if k not in cache:
            cache[k] = partitioner.murmur2_partitions([k.encode()], PARTS)[0]
        out.append((side, cache[k], k, v, t))
    return out


def test_join_of_topics_with_different_partition_counts_fails_at_start(
        broker, topic_factory, tmp_path):
    left_topic = topic_factory("cp-left", 3)
    right_topic = topic_factory("cp-right", 2)
    b = StreamsBuilder()
    (b.stream(left_topic, key_serde=S, value_serde=J)
     .join(b.stream(right_topic, key_serde=S, value_serde=J), lambda a, c: [a, c],
           cs.JoinWindows.of_time_difference_and_grace(1000, 0), value_serde=J)
     .to(topic_factory("cp-out", 3)))
    app = cs.App(b.build(), application_id=f"cp-{left_topic}",
                 bootstrap_servers=broker.bootstrap_servers, state_dir=str(tmp_path),
                 config=app_config())
    with pytest.raises(cs.CopartitioningError) as err:
        app.start()
    assert f"{left_topic}: 3" in str(err.value) and f"{right_topic}: 2" in str(err.value)


def test_windowed_stream_stream_join_across_a_rebalance(broker, topic_factory, tmp_path):
    """Two instances share an outer join's tasks; one leaves mid-stream and the other takes
    its tasks over, the window stores and the outer store restored from their changelogs.
    At-least-once: every pair and every unmatched record is in the output, and nothing else
    (no early null for a record that was joined later, none lost with the moved state)."""
    from confluent_kafka import Producer

    left_topic = topic_factory("rs-orders", PARTS)
    right_topic = topic_factory("rs-payments", PARTS)
    out_topic = topic_factory("rs-joined", PARTS)
    bootstrap = broker.bootstrap_servers
    app_id = f"rssjoin-{out_topic}"
    windows = cs.JoinWindows(before_ms=500, after_ms=800, grace_ms=10_000)
    rng = random.Random(16)
    partition_of = {}

    def make(n, start):
        recs = []
        for i in range(n):
            side = rng.choice(["left", "right"])
            recs.append((side, f"o{rng.randrange(45)}", f"{side[0]}{start + i}",
                         start + i * 20 + rng.randrange(-150, 150)))
        return recs

    def send(recs):
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                      "partitioner": "murmur2_random"})
        for side, k, v, t in recs:
            p.produce(left_topic if side == "left" else right_topic, json.dumps(v).encode(),
                      k.encode(), timestamp=t)
        assert p.flush(30) == 0

    def want_of(recs):
        ref = _stream_stream_reference(_partitioned(recs, partition_of), windows, "outer")
        return {(k, lv, rv) for k, lv, rv, _t in ref}

    def results(raw):
        return {(k.decode(), *json.loads(v)) for _p, _o, k, v, _h in raw}

    b_ = StreamsBuilder()
    (b_.stream(left_topic, key_serde=S, value_serde=J)
     .outer_join(b_.stream(right_topic, key_serde=S, value_serde=J), lambda o, pay: [o, pay],
                 windows, value_serde=J)
     .to(out_topic))
    topo = b_.build()

    def new_app(name):
        return cs.App(topo, application_id=app_id, bootstrap_servers=bootstrap,
                      state_dir=str(tmp_path / name), commit_interval_ms=200,
                      config=app_config(), max_task_idle_ms=2000)

    def running(app):
        return {t for t, m in app.metrics()["tasks"].items() if m["state"] == "running"}

    a, b = new_app("a").start(), new_app("b").start()
    closed_b = False
    try:
        wait_for(lambda: running(a) and running(b) and len(running(a) | running(b)) == PARTS,
                 timeout=60, what="both instances running the join's tasks")
        first = make(300, 10_000)
        send(first)
        want = want_of(first)
        consume_all(bootstrap, out_topic, timeout=90, until=lambda r: want <= results(r))
        b.close()
        closed_b = True
        second = make(300, 40_000)
        send(second)
        want = want_of(first + second)
        # idle only fails a miss fast: the output pauses while a takes b's tasks over and
        # restores them (a reader's own group join no longer hides ~3 s of that).
        out = consume_all(bootstrap, out_topic, timeout=120, idle=10,
                          until=lambda r: want <= results(r))
        wait_for(lambda: len(running(a)) == PARTS, what="a running every task")
    finally:
        a.close()
        if not closed_b:
            b.close()
    got = results(out)
    assert got == want
    assert any(rv is None for _k, _lv, rv in got) and any(lv is None for _k, lv, _rv in got)
