"""Median and spread over repeated `make bench` runs of the in-process workloads.

    for i in 1 2 3; do CSTREAMS_REQUIRE_EXTENSIONS=1 python3 -m pytest \\
        bench/test_bench_inprocess.py -q --benchmark-only -p no:randomly \\
        --benchmark-json=/tmp/inproc-$i.json; done
    python3 bench/summarize_runs.py /tmp/inproc-*.json

For each workload and path: CPU us/record (each run's median round), median over the runs
[min-max]; the batch / per-record and batch / record-at-a-time ratios are taken within each
run (both paths of a ratio measured seconds apart), then their median [min-max].
"""

from __future__ import annotations

import collections
import json
import statistics
import sys

PATHS = ("batch", "per_record", "record_at_a_time")


def _fmt(xs, digits=3, suffix=""):
    med = statistics.median(xs)
    if len(xs) == 1:
        return f"{med:.{digits}f}{suffix}"
    return f"{med:.{digits}f}{suffix} [{min(xs):.{digits}f}-{max(xs):.{digits}f}]"


def main(paths):
    runs = []
    for p in paths:
        data = json.load(open(p))
        run = collections.defaultdict(dict)
        for b in data["benchmarks"]:
            info = b.get("extra_info", {})
            if "workload" in info and info.get("path") in PATHS:
                run[info["workload"]][info["path"]] = info
        runs.append(run)
    workloads = sorted({w for run in runs for w in run})
    print(f"{len(runs)} run(s); CPU us/record, median [min-max] over runs; ratios within runs")
    print("| workload | batch | per-record | record-at-a-time | batch rec/s | "
          "per-record / batch | record-at-a-time / batch |")
    print("|---|---|---|---|---|---|---|")
    for w in workloads:
        cols = {p: [run[w][p]["cpu_us_per_record"] for run in runs if p in run[w]]
                for p in PATHS}
        rate = [run[w]["batch"]["records_per_s"] for run in runs if "batch" in run[w]]
        r1 = [run[w]["per_record"]["cpu_us_per_record"] / run[w]["batch"]["cpu_us_per_record"]
              for run in runs if "batch" in run[w] and "per_record" in run[w]]
        r2 = [run[w]["record_at_a_time"]["cpu_us_per_record"]
              / run[w]["batch"]["cpu_us_per_record"]
              for run in runs if "batch" in run[w] and "record_at_a_time" in run[w]]
        print(f"| {w} | {_fmt(cols['batch'])} | {_fmt(cols['per_record'])} | "
              f"{_fmt(cols['record_at_a_time']) if cols['record_at_a_time'] else '-'} | "
              f"{_fmt(rate, 0)} | {_fmt(r1, 1, 'x')} | {_fmt(r2, 1, 'x') if r2 else '-'} |")


if __name__ == "__main__":
    main(sys.argv[1:])
