"""Two builds of cstreams, the same in-process workloads, interleaved runs: CPU us/record of
each (workload, path), median over its runs [min-max], and the new/old ratio of the medians.

    # in each of two worktrees (old, new), alternately, N times:
    CSTREAMS_REQUIRE_EXTENSIONS=1 .venv/bin/python -m pytest bench/test_bench_inprocess.py \\
        -q --benchmark-only -p no:randomly --benchmark-json=/tmp/cmp-<old|new>-$i.json
    python3 bench/compare_builds.py "/tmp/cmp-old-*.json" "/tmp/cmp-new-*.json"
"""

from __future__ import annotations

import collections
import glob
import json
import statistics
import sys

PATHS = ("batch", "per_record", "record_at_a_time")


def _load(pattern):
    values = collections.defaultdict(list)
    files = sorted(glob.glob(pattern))
    for p in files:
        with open(p) as f:
            data = json.load(f)
        for b in data["benchmarks"]:
            info = b.get("extra_info", {})
            if "workload" in info and info.get("path") in PATHS:
                values[(info["workload"], info["path"])].append(info["cpu_us_per_record"])
    return len(files), values


def _fmt(xs):
    med = statistics.median(xs)
    return f"{med:.3f}" if len(xs) == 1 else f"{med:.3f} [{min(xs):.3f}-{max(xs):.3f}]"


def main(old_pattern, new_pattern):
    n_old, old = _load(old_pattern)
    n_new, new = _load(new_pattern)
    print(f"old: {n_old} run(s), new: {n_new} run(s); CPU us/record, median [min-max]")
    print("| workload | path | old | new | new / old |")
    print("|---|---|---|---|---|")
    for key in sorted(set(old) & set(new)):
        ratio = statistics.median(new[key]) / statistics.median(old[key])
        print(f"| {key[0]} | {key[1]} | {_fmt(old[key])} | {_fmt(new[key])} | {ratio:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
