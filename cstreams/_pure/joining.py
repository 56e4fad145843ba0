"""The per-record pass of a windowed stream-stream join batch (cstreams.joins).

One source for both builds: run as is on the pure-Python path, compiled by Cython (pure-Python
mode, declarations in cstreams/_core/joining.pxd) into cstreams._core.joining.
"""

from __future__ import annotations


def match_windows(kbs, timestamps, stream_time, grace, before, after, other):
    """Judge and join one side's batch against the other side's records.

    ``kbs``/``timestamps``: the batch's key bytes and timestamps, in offset order.
    ``stream_time``: the join's stream time before the batch (-1: none yet). A record is late
    when stream time, as of that record, passed its timestamp by more than ``grace``.
    ``other``: {key bytes: [(timestamp, index), ...]} of the other side's stored records; a
    record at ``t`` joins those stamped in ``[t - before, t + after]``.

    Returns ``(late, unmatched, pair_this, pair_other, stream_time)``: indices of the late
    records and of the records that joined nothing, the joined pairs (batch index, other
    side's index) in order, and the stream time after the batch.
    """
    late = []
    unmatched = []
    pair_this = []
    pair_other = []
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
                    pair_other.append(e[1])
                    hit = True
        if not hit:
            unmatched.append(i)
    return late, unmatched, pair_this, pair_other, s
