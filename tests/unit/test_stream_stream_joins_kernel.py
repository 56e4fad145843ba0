"""The windowed stream-stream join passes (match_windows, index_records), compiled and pure,
against naive record-at-a-time references on random input."""

import importlib
import random
import struct

import pytest

from cstreams._impl import IMPLEMENTATION

TWINS = ["cstreams._pure.joining"] + (
    ["cstreams._core.joining"] if IMPLEMENTATION == "compiled" else [])


def naive(kbs, tss, stream_time, grace, before, after, other):
    late, unmatched, pairs = [], [], []
    s = stream_time
    for i, (kb, t) in enumerate(zip(kbs, tss)):
        if t + grace < s:
            late.append(i)
            continue
        s = max(s, t)
        hits = [(ot, p) for ot, p in other.get(kb, []) if t - before <= ot <= t + after]
        pairs += [(i, ot, p) for ot, p in hits]
        if not hits:
            unmatched.append(i)
    return late, unmatched, pairs, s


@pytest.mark.parametrize("module", TWINS)
@pytest.mark.parametrize("seed", range(5))
def test_match_windows_equals_the_naive_pass(module, seed):
    match = importlib.import_module(module).match_windows
    rng = random.Random(seed)
    keys = [b"a", b"b", b"c", b"d"]
    other = {}
    for j in range(40):
        other.setdefault(rng.choice(keys[:3]), []).append((rng.randrange(0, 300, 5),
                                                           f"p{j}".encode()))
    kbs = [rng.choice(keys) for _ in range(60)]
    tss = [rng.randrange(0, 300, 5) for _ in kbs]
    start = rng.choice([-1, 100])
    args = (kbs, tss, start, 15, rng.randrange(0, 40, 5), rng.randrange(0, 40, 5), other)
    late, unmatched, pt, ptime, pp, s = match(*args)
    want_late, want_unmatched, want_pairs, want_s = naive(*args)
    assert (late, unmatched, list(zip(pt, ptime, pp)), s) == (
        want_late, want_unmatched, want_pairs, want_s)
    assert late and unmatched and pt


@pytest.mark.parametrize("module", TWINS)
def test_index_records_numbers_the_records_kept_and_indexes_them(module):
    index_records = importlib.import_module(module).index_records
    index = {b"a": [(1, b"a" + struct.pack(">q", 0))]}
    kept, cks, seq = index_records([b"a", b"b", b"a", b"c"], [5, 6, 7, 8], [1], 1, index)
    seqs = [struct.pack(">q", n) for n in (1, 2, 3)]
    assert (kept, cks, seq) == ([0, 2, 3], [b"a" + seqs[0], b"a" + seqs[1], b"c" + seqs[2]], 4)
    assert index == {b"a": [(1, b"a" + struct.pack(">q", 0)), (5, cks[0]), (7, cks[1])],
                     b"c": [(8, cks[2])]}
