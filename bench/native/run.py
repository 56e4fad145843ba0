"""Issue 18 measured in ONE run: the confluent-kafka floor, cstreams' native data path
(cstreams._core.native, driven directly) and cstreams at-least-once, on the same broker,
input and rounds (bench/e2e.py's runner).

Variants (each its own process, CPU = user+sys of that process, all threads, from the first
batch past the warm-up window to the last acknowledged output, per record handed out after
the mark; every output topic read back and verified record by record by bench/e2e.py):

  floor       bench/e2e/floor.py: confluent-kafka consume, 5 Message fields, orjson.loads,
              produce of an 8-byte value with an explicit partition (the issue's floor)
  native      bench/native/w1_native.py: the same work on cstreams._core.native
              (NativeConsumerQueue: consume_batch_queue into RecordBatch columns in C;
              cstreams' compiled JSON batch decode; NativeProducer.produce_columns: the
              produceva loop in C)
  floor-io    bench/native/floor_io.py: the floor without orjson.loads (data path only)
  native-io   w1_native.py --no-decode: native without JSON decoding (data path only)
  cstreams    bench/e2e/w1_cstreams.py, at-least-once (count per key in RocksDB, changelog)

Gate (issue 18): consume + produce together <= 0.5x the floor. Read two ways, both medians of
per-round ratios: native-io / floor (the issue's wording: the data path against the full
floor) and the like-for-like native / floor and native-io / floor-io (no work on one side
only).

The native module is the installed package's (make install builds it); nothing is built here.

    CSTREAMS_REQUIRE_EXTENSIONS=1 .venv/bin/python bench/native/run.py --records 400000 --repeat 5
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import e2e  # noqa: E402  (bench/e2e.py: broker, input, verification, table)

NATIVE_VARIANTS = {
    "native": (str(HERE / "w1_native.py"), []),
    "native-io": (str(HERE / "w1_native.py"), ["--no-decode"]),
    "floor-io": (str(HERE / "floor_io.py"), []),
}
DEFAULT = "floor,native,floor-io,native-io,cstreams"


def ratios(results: list[dict], num: str, den: str) -> list[float]:
    per = {}
    for r in results:
        if e2e._ok(r) and r["variant"] in (num, den):
            per.setdefault(r["rep"], {})[r["variant"]] = r["cpu_s"] / e2e._n(r)
    return [v[num] / v[den] for v in per.values() if num in v and den in v]


def main() -> int:
    # bench/e2e.py runs WORKERS / script: an absolute script path stays as it is.
    e2e.VARIANTS.update(NATIVE_VARIANTS)
    if "--variants" not in sys.argv:
        sys.argv += ["--variants", DEFAULT]
    captured: list[dict] = []
    original = e2e.run_variant

    def run_variant(*a, **kw):
        r = original(*a, **kw)
        captured.append(r)
        return r

    e2e.run_variant = run_variant
    rc = e2e.main()
    print("\nIssue 18 gate (medians [min-max] of per-round CPU ratios; gate <= 0.50):")
    for num, den in (("native-io", "floor"), ("native", "floor"), ("native-io", "floor-io"),
                     ("floor-io", "floor"), ("cstreams", "floor"), ("native", "cstreams")):
        xs = ratios(captured, num, den)
        if xs:
            print(f"  {num:>9} / {den:<8} {statistics.median(xs):.2f} "
                  f"[{min(xs):.2f}-{max(xs):.2f}]  ({len(xs)} rounds)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
