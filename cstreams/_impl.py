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

# Compiled modules with no pure twin, each chosen by a selector of its own below: the native
# data path (issue 18).
COMPILED_ONLY = ("native",)


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


# --- the native data path (issue 18) ------------------------------------------------------
# The consumer's records taken from librdkafka in C (cstreams._core.native) instead of one
# confluent-kafka Message per record, and the sinks' and changelogs' records produced in C on
# a producer of cstreams' own instead of one produce() call per record. Used when available
# on the compiled core; CSTREAMS_NATIVE_KAFKA=0 turns it off, =1 requires it (an error naming
# why it is not available); the pure-Python twins never use it.
# confluent-kafka major versions whose Handle layout (PyObject_HEAD, rd_kafka_t *rk, ...) and
# conf opaque (the Handle) were checked in its source; the pointer is verified at run time too.
NATIVE_KAFKA_CHECKED_MAJOR = (2,)

_native_state = None    # (module or None, reason it is not used or None)
_native_logged = False


def _native_mode():
    raw = os.environ.get("CSTREAMS_NATIVE_KAFKA", "").strip().lower()
    if raw in ("", "auto"):
        return "auto"
    return "off" if raw in ("0", "false", "no", "off") else "on"


def _native_probe():
    """(module, None) when the native data path can be used, else (None, reason)."""
    mode = _native_mode()
    if mode == "off":
        return None, "CSTREAMS_NATIVE_KAFKA=0"
    if IMPLEMENTATION != "compiled":
        return None, "the pure-Python twins are in use"
    try:
        native = importlib.import_module("cstreams._core.native")
    except ImportError as e:
        return None, f"cstreams._core.native did not load ({e})"
    from cstreams.internals import kafka

    (cimpl_path, libversion, consumer_type, client_version, error_type,
     exception_type) = kafka.native_client_info()
    major = int(client_version.split(".")[0])
    if major not in NATIVE_KAFKA_CHECKED_MAJOR:
        return None, (f"confluent-kafka {client_version}: its client layout was checked for "
                      f"major version(s) {NATIVE_KAFKA_CHECKED_MAJOR} only")
    reason = native.load(cimpl_path, libversion, consumer_type, error_type, exception_type)
    if reason is not None:
        return None, reason
    return native, None


def _native_required(reason):
    if _native_mode() == "on":
        raise ExtensionsNotLoaded(f"CSTREAMS_NATIVE_KAFKA=1 but the native data path is not "
                                  f"available: {reason}")


def native_kafka():
    """The loaded cstreams._core.native module when the native data path is to be used, else
    None. Raises ExtensionsNotLoaded when CSTREAMS_NATIVE_KAFKA=1 and it cannot be used."""
    global _native_state
    if _native_state is None:
        _native_state = _native_probe()
    native, reason = _native_state
    if native is None:
        _native_required(reason)
    return native


def native_unavailable(native_module, reason):
    """The native path failed for one consumer (its rd_kafka_t did not validate): fall back to
    confluent-kafka's, or raise when it is required."""
    global _native_state
    _native_required(reason)
    _native_state = (None, reason)


def native_producer_unavailable(reason):
    """One producer's settings keep it on confluent-kafka's Producer (a Python callback only
    it takes): logged, or raised when the native path is required. Other clients go on
    natively."""
    _native_required(reason)
    import logging

    logging.getLogger("cstreams.native").info(
        "a producer stays on confluent-kafka's Producer: %s", reason)


def log_data_path(log, reason=None):
    """Log once per process which consumer data path is used."""
    global _native_logged
    if _native_logged:
        return
    _native_logged = True
    native, why = _native_state or (None, reason)
    if native is not None and reason is None:
        name, _, path = native.version()
        log.info("data path: native consumer and producer (librdkafka %s in C, through "
                 "confluent-kafka's extension: %s)", name, path)
    else:
        log.info("data path: confluent-kafka's consume() and produce() (native path not "
                 "used: %s)", reason or why)
