"""The windowed stream-stream join pass (match_windows), compiled and pure, against a naive
record-at-a-time reference on random input."""

import importlib
import random

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
        hits = [j for ot, j in other.get(kb, []) if t - before <= ot <= t + after]
        pairs += [(i, j) for j in hits]
        if not hits:
            unmatched.append(i)
    return late, unmatched, pairs, s


@pytest.mark.parametrize("module", TWINS)
@pytest.mark.parametrize("seed", range(5))
def test_match_windows_equals_the_naive_pass(module, seed):
    match = importlib.import_module(module).match_windows
    rng = random.Random(seed)
    keys = [b"a", b"b", b"c", b"d"]
    other, j = {}, 0
    for _ in range(40):
        other.setdefault(rng.choice(keys[:3]), []).append((rng.randrange(0, 300, 5), j))
        j += 1
    kbs = [rng.choice(keys) for _ in range(60)]
    tss = [rng.randrange(0, 300, 5) for _ in kbs]
    start = rng.choice([-1, 100])
    args = (kbs, tss, start, 15, rng.randrange(0, 40, 5), rng.randrange(0, 40, 5), other)
    late, unmatched, pt, po, s = match(*args)
    want_late, want_unmatched, want_pairs, want_s = naive(*args)
    assert (late, unmatched, list(zip(pt, po)), s) == (
        want_late, want_unmatched, want_pairs, want_s)
    assert late and unmatched and pt
