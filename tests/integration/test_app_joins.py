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
