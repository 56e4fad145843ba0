"""Summarise a py-spy speedscope profile: where the Python threads of a worker spent samples.

    python bench/e2e/hotspots.py PROFILE.speedscope.json [--top 20]

Self = the frame was the leaf (running) in the sample; total = the frame was anywhere on the
stack. py-spy samples only threads that run Python: librdkafka's own threads (broker I/O,
(de)compression, delivery) do not appear, though their CPU counts in the benchmark.
"""

from __future__ import annotations

import argparse
import collections
import json
import os


def _label(frame: dict) -> str:
    name = frame.get("name", "?")
    if name.startswith("0x"):
        name = "(unresolved)"
    path = frame.get("file") or ""
    line = frame.get("line")
    short = os.path.basename(path)
    for marker in ("/cstreams/", "/bench/"):
        if marker in path and "site-packages" not in path:
            short = path[path.index(marker) + 1:]
            break
    if short.endswith(".so") or not short:
        return f"{name} [{short or 'native'}]"
    return f"{name} ({short}:{line})" if line else f"{name} ({short})"


def _function(label: str) -> str:
    """The label without its line number: shares per function, not per line."""
    if label.endswith(")") and "(" in label:
        head, _, loc = label.rpartition(" (")
        return f"{head} ({loc.rsplit(':', 1)[0].rstrip(')')})"
    return label


def summarize(path: str, top: int = 20, start: str | None = "Task.process",
              end: str | None = "StreamThread._loop") -> str:
    """Self and total shares per function over the steady-state window of each thread.

    py-spy writes each thread's samples in time order, so the window runs from the first
    sample with a frame containing ``start`` (the first batch processed: imports, group join
    and store opening fall before it) to the last sample with a frame containing ``end`` (the
    processing loop: shutdown falls after it). Threads with no such samples are left out;
    samples inside the window whose stack py-spy could not unwind still count (by their leaf).
    Without markers, or if no thread has them, every sample counts.
    """
    with open(path) as f:
        data = json.load(f)
    frames = data["shared"]["frames"]
    labels_of = [_function(_label(fr)) for fr in frames]
    start_ids = {i for i, lab in enumerate(labels_of) if start and start in lab}
    end_ids = {i for i, lab in enumerate(labels_of) if end and end in lab}
    windows = {}
    for n, prof in enumerate(data["profiles"]):
        samples = prof.get("samples", [])
        first = next((i for i, st in enumerate(samples) if not start_ids.isdisjoint(st)), None)
        last = next((i for i in range(len(samples) - 1, -1, -1)
                     if not end_ids.isdisjoint(samples[i])), None)
        if first is not None and last is not None and last >= first:
            windows[n] = (first, last + 1)
    windowed = bool(windows)
    all_samples = sum(len(p.get("samples", [])) for p in data["profiles"])
    self_w: collections.Counter = collections.Counter()
    total_w: collections.Counter = collections.Counter()
    grand = 0.0
    kept = 0
    for n, prof in enumerate(data["profiles"]):
        samples = prof.get("samples", [])
        weights = prof.get("weights") or [1] * len(samples)
        lo, hi = windows.get(n, (0, 0)) if windowed else (0, len(samples))
        for stack, w in zip(samples[lo:hi], weights[lo:hi]):
            if not stack:
                continue
            grand += w
            kept += 1
            labels = [labels_of[i] for i in stack]
            self_w[labels[-1]] += w
            for label in set(labels):
                total_w[label] += w
    if not grand:
        return "(no samples)"
    scope = (f"steady-state window ({start!r} .. {end!r})" if windowed else "whole run")
    lines = [f"{scope}: {kept} of {all_samples} samples, "
             f"{len(windows) if windowed else len(data['profiles'])} thread(s)"]
    lines.append(f"top {top} functions by self share:")
    for label, w in self_w.most_common(top):
        lines.append(f"  {w / grand:6.1%} self  {total_w[label] / grand:6.1%} total  {label}")
    lines.append(f"top {top} cstreams/bench functions by total share:")
    ours = [(lab, w) for lab, w in total_w.most_common()
            if "cstreams/" in lab or "bench/" in lab]
    for label, w in ours[:top]:
        lines.append(f"  {w / grand:6.1%} total {self_w[label] / grand:6.1%} self   {label}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--start", default="Task.process",
                   help="window start marker ('' for the whole run)")
    p.add_argument("--end", default="StreamThread._loop", help="window end marker")
    args = p.parse_args()
    print(summarize(args.profile, args.top, args.start or None, args.end or None))


if __name__ == "__main__":
    main()
