"""The windowed aggregation's per-batch kernel, written once: this module runs as the
pure-Python path and is compiled in Cython's pure-Python mode (declarations in
cstreams/_core/windowing.pxd) into cstreams._core.windowing. Plain Python only: no cython
import here.
"""

from __future__ import annotations

import struct
from collections import Counter

_T = struct.Struct(">q")


def assign_time_windows(kbs, timestamps, observed, size, advance, grace):
    """The batch kernel's first pass: for record i, the composite keys (start + key bytes)
    of its windows still open at the running stream time. Returns (composite keys, the
    record index of each, late record indices, the new stream time)."""
    lkbs = kbs if type(kbs) is list else list(kbs)
    tss = timestamps if type(timestamps) is list else list(timestamps)
    pack = _T.pack
    cks = []
    idx = []
    late = []
    n = len(lkbs)
    # Records of a batch share few window starts: pack each start once per run of them.
    last_s = -1
    packed = b""
    if advance == size:
        # Tumbling: one window per record.
        for i in range(n):
            ts = tss[i]
            if ts > observed:
                observed = ts
            s = ts - ts % size
            if s + size + grace <= observed:
                late.append(i)
                continue
            if s != last_s:
                packed = pack(s)
                last_s = s
            cks.append(packed + lkbs[i])
            idx.append(i)
        return cks, idx, late, observed
    for i in range(n):
        ts = tss[i]
        if ts > observed:
            observed = ts
        # Open windows: start + size > observed - grace.
        lowest = observed - grace - size + 1
        first = ts - size + advance
        if first < 0:
            first = 0
        s = (first // advance) * advance
        if s < lowest:
            s += -(-(lowest - s) // advance) * advance
        if s > ts:
            late.append(i)
            continue
        kb = lkbs[i]
        while s <= ts:
            cks.append(pack(s) + kb)
            idx.append(i)
            s += advance
    return cks, idx, late, observed


def update_windows(kv, aggregation, cks, idx, keys, values):
    """One batch read of the distinct (key, window) entries, the updates in offset order,
    one batch write. Returns (distinct composite keys, their new aggregates)."""
    lcks = cks if type(cks) is list else list(cks)
    lidx = idx if type(idx) is list else list(idx)
    lvalues = values if type(values) is list else list(values)
    distinct = list(dict.fromkeys(lcks))
    cur = dict(zip(distinct, kv.get_batch_by_bytes(distinct)))
    kind = aggregation.kind
    n = len(lcks)
    if kind == "count":
        # Counter counts in C; only the distinct entries take a Python step.
        for ck, c in Counter(lcks).items():
            a = cur[ck]
            cur[ck] = c if a is None else a + c
    elif kind == "sum":
        for j in range(n):
            ck = lcks[j]
            v = lvalues[lidx[j]]
            a = cur[ck]
            cur[ck] = v if a is None else a + v
    elif kind == "min":
        for j in range(n):
            ck = lcks[j]
            v = lvalues[lidx[j]]
            a = cur[ck]
            if a is None or v < a:
                cur[ck] = v
    elif kind == "max":
        for j in range(n):
            ck = lcks[j]
            v = lvalues[lidx[j]]
            a = cur[ck]
            if a is None or v > a:
                cur[ck] = v
    elif aggregation.batch_adder is not None:
        groups = {}
        for j in range(n):
            ck = lcks[j]
            g = groups.get(ck)
            if g is None:
                groups[ck] = [lidx[j]]
            else:
                g.append(lidx[j])
        init, badd = aggregation.initializer, aggregation.batch_adder
        for ck, g in groups.items():
            a = cur[ck]
            cur[ck] = badd(keys[g[0]], [lvalues[i] for i in g], init() if a is None else a)
    else:
        init, add = aggregation.initializer, aggregation.adder
        for j in range(n):
            ck = lcks[j]
            i = lidx[j]
            a = cur[ck]
            cur[ck] = add(keys[i], lvalues[i], init() if a is None else a)
    kv.put_batch_by_bytes(distinct, [cur[ck] for ck in distinct])
    return distinct, cur
