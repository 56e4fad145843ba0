"""PartitionGroup (time synchronization of multi-input tasks), on whichever twin's
RecordBatch runs: lowest head timestamp first, runs cut at the other partitions' heads,
bounded idle wait for an empty partition, the back-pressure bound."""

import cstreams as cs
from cstreams.runtime.partition_group import MAX_LAG_WAIT_MS, PartitionGroup

ORDERS, CUSTOMERS = ("orders", 0), ("customers", 0)


def batch(tp, timestamps, first_offset=0):
    n = len(timestamps)
    offsets = list(range(first_offset, first_offset + n))
    return cs.RecordBatch(tp[0], tp[1], [b"k"] * n, [b"v"] * n, list(timestamps), offsets)


def drain(group, now=0):
    out = []
    while (b := group.next_batch(now)) is not None:
        out.append((b.topic, list(b.offsets), list(b.timestamps)))
    return out


def test_lowest_head_first_and_runs_cut_at_the_other_heads():
    g = PartitionGroup()
    g.partitions = {ORDERS, CUSTOMERS}
    g.add(batch(ORDERS, [10, 20, 30, 40]))
    g.add(batch(CUSTOMERS, [5, 25, 26, 50]))
    assert drain(g) == [
        ("customers", [0], [5]),            # 5 < 10; the next customer (25) > 10
        ("orders", [0, 1], [10, 20]),       # up to the customers' head, 25
        ("customers", [1, 2], [25, 26]),
        ("orders", [2, 3], [30, 40]),
        ("customers", [3], [50]),           # alone: nothing else buffered, no idle wait
    ]
    assert g.buffered(ORDERS) == g.buffered(CUSTOMERS) == 0


def test_out_of_order_timestamps_keep_offset_order_within_a_partition():
    g = PartitionGroup()
    g.partitions = {ORDERS, CUSTOMERS}
    g.add(batch(ORDERS, [10, 3, 50, 4]))
    g.add(batch(CUSTOMERS, [12, 1]))
    out = drain(g)
    assert out[0] == ("orders", [0, 1], [10, 3])      # 3 <= 12: still before the customer
    for topic in ("orders", "customers"):
        offsets = [o for t, offs, _ in out if t == topic for o in offs]
        assert offsets == sorted(offsets)
    assert sum(len(o) for _, o, _ in out) == 6


def test_an_empty_partition_holds_the_others_back_for_the_idle_time():
    g = PartitionGroup(max_idle_ms=100)
    g.partitions = {ORDERS, CUSTOMERS}
    g.add(batch(ORDERS, [10, 20]))
    assert g.next_batch(1_000) is None                # customers have nothing: wait
    assert g.next_batch(1_099) is None
    assert list(g.next_batch(1_100).offsets) == [0, 1]   # idle time over: go on
    g.add(batch(ORDERS, [30], 2))
    assert list(g.next_batch(1_101).offsets) == [2]   # still enforced: no new wait
    g.add(batch(CUSTOMERS, [40]))
    g.add(batch(ORDERS, [45], 3))
    assert list(g.next_batch(1_102).offsets) == [0]   # both had data: the wait resets
    assert g.next_batch(1_103) is None                # customers empty again: wait again


def test_bound_reports_a_partition_to_pause_and_drop_forgets_it():
    g = PartitionGroup(max_buffered=3)
    g.partitions = {ORDERS, CUSTOMERS}
    assert not g.add(batch(ORDERS, [1, 2, 3]))
    assert g.add(batch(ORDERS, [4], 3))
    assert g.buffered(ORDERS) == 4 and g.first_offset(ORDERS) == 0
    g.drop(ORDERS)
    assert g.buffered(ORDERS) == 0 and g.first_offset(ORDERS) is None
    assert g.next_batch(0) is None


def test_a_lagging_empty_partition_is_waited_for_beyond_the_idle_time():
    g = PartitionGroup(max_idle_ms=0)
    g.partitions = {ORDERS, CUSTOMERS}
    g.add(batch(ORDERS, [10]))
    lag = {CUSTOMERS: True}
    assert g.next_batch(0, lag.get) is None             # more customers on the broker
    assert g.next_batch(4_000, lag.get) is None
    lag[CUSTOMERS] = False
    assert list(g.next_batch(4_001, lag.get).offsets) == [0]    # caught up: go on


def test_a_lag_that_never_closes_is_waited_for_a_bounded_time():
    g = PartitionGroup(max_idle_ms=0)
    g.partitions = {ORDERS, CUSTOMERS}
    g.add(batch(ORDERS, [10]))
    assert g.next_batch(0, lambda tp: True) is None
    assert list(g.next_batch(MAX_LAG_WAIT_MS, lambda tp: True).offsets) == [0]


def test_timestamp_run_is_the_same_on_both_twins():
    import importlib

    from cstreams._impl import IMPLEMENTATION

    twins = [importlib.import_module("cstreams._pure.grouping")]
    if IMPLEMENTATION == "compiled":
        twins.append(importlib.import_module("cstreams._core.grouping"))
    cases = [([5], 0, 1), ([5, 1, 2, 9, 3], 4, 3), ([1, 2, 3], 3, 3), ([7, 8], 7, 1),
             ([3, 3, 3, 4], 3, 3)]
    for mod in twins:
        for timestamps, bound, want in cases:
            assert mod.timestamp_run(timestamps, bound) == want
