"""The windowed aggregation's per-batch kernel, written once: this module runs as the
pure-Python path and is the source the compiled core builds from (Cython pure-Python mode)
once the core compiles Python-shaped modules. Plain Python only: no cython import here.
"""

from __future__ import annotations

import struct
from collections import Counter

_T = struct.Struct(">q")


def assign_time_windows(kbs, timestamps, observed, size, advance, grace):
    """The batch kernel's first pass: for record i, the composite keys (start + key bytes)
    of its windows still open at the running stream time. Returns (composite keys, the
    record index of each, late record indices, the new stream time)."""
    pack = _T.pack
    cks = []
    idx = []
    late = []
    if advance == size:
        # Tumbling: one window per record.
        for i in range(len(kbs)):
            ts = timestamps[i]
            if ts > observed:
                observed = ts
            s = ts - ts % size
            if s + size + grace <= observed:
                late.append(i)
                continue
            cks.append(pack(s) + kbs[i])
            idx.append(i)
        return cks, idx, late, observed
    for i in range(len(kbs)):
        ts = timestamps[i]
        if ts > observed:
            observed = ts
        # Open windows: start + size > observed - grace.
        lowest = observed - grace - size + 1
        s = (max(0, ts - size + advance) // advance) * advance
        if s < lowest:
            s += -(-(lowest - s) // advance) * advance
        if s > ts:
            late.append(i)
            continue
        kb = kbs[i]
        while s <= ts:
            cks.append(pack(s) + kb)
            idx.append(i)
            s += advance
    return cks, idx, late, observed


def update_windows(kv, aggregation, cks, idx, keys, values):
    """One batch read of the distinct (key, window) entries, the updates in offset order,
    one batch write. Returns (distinct composite keys, their new aggregates)."""
    distinct = list(dict.fromkeys(cks))
    cur = dict(zip(distinct, kv.get_batch_by_bytes(distinct)))
    kind = aggregation.kind
    if kind == "count":
        # Counter counts in C; only the distinct entries take a Python step.
        for ck, n in Counter(cks).items():
            c = cur[ck]
            cur[ck] = n if c is None else c + n
    elif kind == "sum":
        for ck, i in zip(cks, idx):
            a = cur[ck]
            cur[ck] = values[i] if a is None else a + values[i]
    elif kind == "min":
        for ck, i in zip(cks, idx):
            a, v = cur[ck], values[i]
            if a is None or v < a:
                cur[ck] = v
    elif kind == "max":
        for ck, i in zip(cks, idx):
            a, v = cur[ck], values[i]
            if a is None or v > a:
                cur[ck] = v
    elif aggregation.batch_adder is not None:
        groups = {}
        for ck, i in zip(cks, idx):
            g = groups.get(ck)
            if g is None:
                groups[ck] = g = [i]
            else:
                g.append(i)
        init, badd = aggregation.initializer, aggregation.batch_adder
        for ck, ii in groups.items():
            a = cur[ck]
            cur[ck] = badd(keys[ii[0]], [values[i] for i in ii], init() if a is None else a)
    else:
        init, add = aggregation.initializer, aggregation.adder
        for ck, i in zip(cks, idx):
            a = cur[ck]
            cur[ck] = add(keys[i], values[i], init() if a is None else a)
    kv.put_batch_by_bytes(distinct, [cur[ck] for ck in distinct])
    return distinct, cur
