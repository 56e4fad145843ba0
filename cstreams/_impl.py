"""The one place that decides between the compiled core and its pure-Python twins.

CSTREAMS_NO_EXTENSIONS=1 forces the twins. CSTREAMS_REQUIRE_EXTENSIONS=1 makes a compiled
module that fails to import an error instead of a silent fallback.
"""

from __future__ import annotations

import importlib
import os

from cstreams.errors import ExtensionsNotLoaded

MODULES = ("record", "grouping", "serde", "processor", "dispatch", "store", "produce")


def _flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _load():
    if _flag("CSTREAMS_NO_EXTENSIONS"):
        if _flag("CSTREAMS_REQUIRE_EXTENSIONS"):
            raise ExtensionsNotLoaded(
                "CSTREAMS_NO_EXTENSIONS and CSTREAMS_REQUIRE_EXTENSIONS are both set"
            )
        return "pure", {m: importlib.import_module(f"cstreams._pure.{m}") for m in MODULES}
    try:
        return "compiled", {m: importlib.import_module(f"cstreams._core.{m}") for m in MODULES}
    except ImportError as e:
        if _flag("CSTREAMS_REQUIRE_EXTENSIONS"):
            raise ExtensionsNotLoaded(
                f"the compiled core did not load ({e}); build it with `pip install -e .` or "
                "`python setup.py build_ext --inplace`"
            ) from e
        return "pure", {m: importlib.import_module(f"cstreams._pure.{m}") for m in MODULES}


IMPLEMENTATION, _mods = _load()
record = _mods["record"]
grouping = _mods["grouping"]
serde = _mods["serde"]
processor = _mods["processor"]
dispatch = _mods["dispatch"]
store = _mods["store"]
produce = _mods["produce"]
