"""The DSL examples run as written: each describes itself from the shell and computes, through
the driver, what a brute-force reference computes."""

import os
import pathlib
import random
import subprocess
import sys
from collections import Counter

import pytest

from cstreams.testing import TopologyTestDriver

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _example(name):
    sys.path.insert(0, str(ROOT))
    try:
        module = __import__(f"examples.{name}", fromlist=["build_topology"])
    finally:
        sys.path.remove(str(ROOT))
    return module


@pytest.mark.parametrize("name,marker", [
    ("dsl_wordcount", "by-word-repartition"),
    ("user_totals", "Processor: totals (stores: [totals-store])"),
    ("city_counts", "Source: users-source (topics: [users])"),
])
def test_example_describes_itself(name, marker):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, f"examples/{name}.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True, env=env).stdout
    assert marker in out
    assert "Sub-topology: 1" in out


def test_dsl_wordcount(tmp_path):
    ex = _example("dsl_wordcount")
    lines = ["To be, or not to be", "be", "not now", ""]
    with TopologyTestDriver(ex.build_topology(), partitions={"words": 2, "word-counts": 3},
                            state_dir=str(tmp_path)) as d:
        d.pipe_batch("words", [None] * 2, lines[:2], partition=0)
        d.pipe_batch("words", [None] * 2, lines[2:], partition=1)
        want = Counter(w for line in lines for w in ex.WORD.findall(line.lower()))
        assert d.output_as_dict("word-counts") == dict(want)


def test_user_totals(tmp_path):
    ex = _example("user_totals")
    rng = random.Random(3)
    payments = [{"user": f"u{rng.randrange(30)}", "amount": rng.choice([-5, 0, 7, 12, 99, "x"])}
                for _ in range(600)]
    with TopologyTestDriver(ex.build_topology(), partitions={"payments": 4},
                            state_dir=str(tmp_path)) as d:
        for i in range(0, 600, 50):
            d.pipe_batch("payments", [str(j) for j in range(i, i + 50)], payments[i:i + 50],
                         partition=(i // 50) % 4)
        got = d.output_as_dict("user-totals")
    want = {}
    for p in payments:
        if isinstance(p["amount"], int) and p["amount"] > 0:
            t = want.setdefault(p["user"], {"count": 0, "total": 0})
            t["count"] += 1
            t["total"] += p["amount"]
    assert got == want


def test_city_counts(tmp_path):
    ex = _example("city_counts")
    rng = random.Random(4)
    state = {}
    with TopologyTestDriver(ex.build_topology(), partitions={"users": 2},
                            state_dir=str(tmp_path)) as d:
        for _ in range(300):
            user = f"u{rng.randrange(20)}"
            u = None if rng.random() < 0.15 else {"city": rng.choice(["oslo", "lima", "rome"]),
                                                  "active": rng.random() < 0.8}
            state[user] = u
            d.pipe("users", user, u, partition=int(user[1:]) % 2)
        got = {c: n for c, n in d.output_as_dict("city-counts").items() if n}
    want = Counter(u["city"] for u in state.values() if u is not None and u["active"])
    assert got == dict(want)
