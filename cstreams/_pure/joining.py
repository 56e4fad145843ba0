"""The per-record passes of a windowed stream-stream join batch (cstreams.joins).

One source for both builds: run as is on the pure-Python path, compiled by Cython (pure-Python
mode, declarations in cstreams/_core/joining.pxd) into cstreams._core.joining.
"""

from __future__ import annotations

import struct

_pack_seq = struct.Struct(">q").pack


def match_windows(kbs, timestamps, stream_time, grace, before, after, other):
    """Judge and join one side's batch against the other side's records.

    ``kbs``/``timestamps``: the batch's key bytes and timestamps, in offset order.
    ``stream_time``: the join's stream time before the batch (-1: none yet). A record is late
    when stream time, as of that record, passed its timestamp by more than ``grace``.
    ``other``: {key bytes: [(timestamp, payload), ...]}, the other side's records; a record
    at ``t`` joins those stamped in ``[t - before, t + after]``.

    Returns ``(late, unmatched, pair_this, pair_time, pair_payload, stream_time)``: indices
    of the late records and of the records that joined nothing, the joined pairs in order
    (batch index, the other record's timestamp and payload), and the stream time after the
    batch.
    """
    late = []
    unmatched = []
    pair_this = []
    pair_time = []
    pair_payload = []
    s = stream_time
    n = len(kbs)
    for i in range(n):
        t = timestamps[i]
        if t + grace < s:
            late.append(i)
            continue
        if t > s:
            s = t
        entries = other.get(kbs[i])
        hit = False
        if entries is not None:
            lo = t - before
            hi = t + after
            for e in entries:
                ot = e[0]
                if lo <= ot <= hi:
                    pair_this.append(i)
                    pair_time.append(ot)
                    pair_payload.append(e[1])
                    hit = True
        if not hit:
            unmatched.append(i)
    return late, unmatched, pair_this, pair_time, pair_payload, s


def index_records(kbs, timestamps, late, seq, index):
    """Number the batch's records that are not late (``late``: their indices, ascending)
    from ``seq`` and add them to ``index`` ({key bytes: [(timestamp, store key)]}).

    Returns ``(kept, store_keys, seq)``: the indices kept, their store keys (key bytes +
    8-byte sequence number) and the next sequence number."""
    kept = []
    store_keys = []
    n = len(kbs)
    j = 0
    n_late = len(late)
    for i in range(n):
        if j < n_late and late[j] == i:
            j += 1
            continue
        kb = kbs[i]
        ck = kb + _pack_seq(seq)
        seq += 1
        kept.append(i)
        store_keys.append(ck)
        entry = (timestamps[i], ck)
        found = index.get(kb)
        if found is None:
            index[kb] = [entry]
        else:
            found.append(entry)
    return kept, store_keys, seq
