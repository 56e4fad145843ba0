"""The one place that decides between the compiled core and its pure-Python twins.

CSTREAMS_NO_EXTENSIONS=1 forces the twins. CSTREAMS_REQUIRE_EXTENSIONS=1 makes a compiled
module that fails to import, or that imports but is not an extension module, an error instead
of a silent fallback.

Most modules are one source: cstreams/_pure/<x>.py runs as is on the pure path and is compiled
by Cython (pure-Python mode, with cstreams/_core/<x>.pxd) into cstreams._core.<x>. The C
kernels (record, serde, partitioner, counting) are hand-written .pyx with a small pure twin.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os

from cstreams.errors import ExtensionsNotLoaded

# Every module of the core, in import order (a module imports only those before it).
MODULES = (
    "record",
    "serde",
    "partitioner",
    "processor",
    "grouping",
    "store",
    "counting",
    "produce",
    "output",
    "context",
    "nodes",
    "joining",
    "windowing",
)


def _flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def is_compiled(module) -> bool:
    """Whether ``module`` is an extension module (not a .py that happened to import)."""
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)


def _pure():
    return "pure", {m: importlib.import_module(f"cstreams._pure.{m}") for m in MODULES}


def _load():
    if _flag("CSTREAMS_NO_EXTENSIONS"):
        if _flag("CSTREAMS_REQUIRE_EXTENSIONS"):
            raise ExtensionsNotLoaded(
                "CSTREAMS_NO_EXTENSIONS and CSTREAMS_REQUIRE_EXTENSIONS are both set"
            )
        return _pure()
    try:
        mods = {m: importlib.import_module(f"cstreams._core.{m}") for m in MODULES}
        not_compiled = [m for m, mod in mods.items() if not is_compiled(mod)]
        if not_compiled:
            raise ImportError(f"cstreams._core.{not_compiled[0]} is not compiled")
        return "compiled", mods
    except ImportError as e:
        if _flag("CSTREAMS_REQUIRE_EXTENSIONS"):
            raise ExtensionsNotLoaded(
                f"the compiled core did not load ({e}); build it with `pip install -e .` or "
                "`python setup.py build_ext --inplace`"
            ) from e
        return _pure()


IMPLEMENTATION, _mods = _load()
record = _mods["record"]
serde = _mods["serde"]
partitioner = _mods["partitioner"]
processor = _mods["processor"]
grouping = _mods["grouping"]
store = _mods["store"]
counting = _mods["counting"]
produce = _mods["produce"]
output = _mods["output"]
context = _mods["context"]
nodes = _mods["nodes"]
joining = _mods["joining"]
windowing = _mods["windowing"]
