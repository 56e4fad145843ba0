"""Session summary of the benchmarks: records/s and microseconds per record, and for the
in-process workloads the batch path against the per-record path measured in the same run."""

from __future__ import annotations


def _benchmarks(config):
    session = getattr(config, "_benchmarksession", None)
    if session is None:
        return []
    return [b for b in session.benchmarks if b.extra_info.get("records_per_s")]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    benches = _benchmarks(config)
    if not benches:
        return
    tr = terminalreporter
    tr.section("records per second (median round)")
    tr.write_line(f"{'benchmark':<48} {'records/s':>12} {'us/rec':>9} {'cpu us/rec':>11}")
    for b in sorted(benches, key=lambda b: b.fullname):
        info = b.extra_info
        cpu = info.get("cpu_us_per_record")
        tr.write_line(
            f"{b.name:<48} {info['records_per_s']:>12,} {info.get('us_per_record', 0):>9.3f} "
            f"{'' if cpu is None else f'{cpu:>11.3f}'}"
        )
    pairs = {}
    for b in benches:
        info = b.extra_info
        if "workload" in info and "path" in info:
            pairs.setdefault(info["workload"], {})[info["path"]] = info
    rows = [(w, p) for w, p in sorted(pairs.items()) if "batch" in p and "per_record" in p]
    if not rows:
        return
    impl = next(iter(next(iter(pairs.values())).values())).get("implementation", "?")
    tr.section(f"batch path vs per-record path (same run, {impl} core)")
    tr.write_line(f"{'workload':<20} {'batch rec/s':>12} {'per-rec rec/s':>14} "
                  f"{'batch cpu us':>13} {'per-rec cpu us':>15} {'ratio':>7}")
    for workload, p in rows:
        b, r = p["batch"], p["per_record"]
        ratio = b["records_per_s"] / r["records_per_s"]
        tr.write_line(
            f"{workload:<20} {b['records_per_s']:>12,} {r['records_per_s']:>14,} "
            f"{b['cpu_us_per_record']:>13.3f} {r['cpu_us_per_record']:>15.3f} {ratio:>6.1f}x"
        )
