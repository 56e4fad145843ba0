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
    tr.section(f"batch path vs per-record paths (same run, {impl} core; CPU us per record, "
               f"ratio = per-record CPU / batch CPU)")
    tr.write_line(f"{'workload':<18} {'batch':>8} {'per-record':>11} {'ratio':>7} "
                  f"{'rec-at-a-time':>14} {'ratio':>7}   target >= 10x")
    for workload, p in rows:
        b, r, a = p["batch"], p["per_record"], p.get("record_at_a_time")
        bc = b["cpu_us_per_record"]
        line = (f"{workload:<18} {bc:>8.3f} {r['cpu_us_per_record']:>11.3f} "
                f"{r['cpu_us_per_record'] / bc:>6.1f}x")
        if a is not None:
            ratio = a["cpu_us_per_record"] / bc
            line += (f" {a['cpu_us_per_record']:>14.3f} {ratio:>6.1f}x   "
                     f"{'met' if ratio >= 10 else 'NOT met'}")
        tr.write_line(line)
