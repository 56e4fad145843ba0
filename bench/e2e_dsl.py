"""W1 end to end over the broker: the DSL topology against the hand-built one, same run.

Runs bench/e2e.py's runner (input, workers as child processes, per-record verification of
every output topic, medians) with one more variant, ``cstreams-dsl`` (bench/dsl_e2e/w1_dsl.py:
the cstreams worker with W1 written in the DSL), next to ``floor`` and ``cstreams``:

    python bench/e2e_dsl.py [--records 200000] [--repeat 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import e2e  # noqa: E402

e2e.VARIANTS["cstreams-dsl"] = (str(HERE / "dsl_e2e" / "w1_dsl.py"),
                                ["--guarantee", "at_least_once"])
e2e.COUNTING.add("cstreams-dsl")

if __name__ == "__main__":
    if not any(a.startswith("--variants") for a in sys.argv[1:]):
        sys.argv += ["--variants", "floor,cstreams,cstreams-dsl"]
    sys.exit(e2e.main())
