"""ABI check for user extension modules compiled against cstreams' .pxd files.

A Cython module that cimports ``cstreams.api`` (or ``cstreams._core.*``) is bound to the C
layout of the compiled core: object structs and method tables that may change in any minor
release. Such a module must be rebuilt when the cstreams major.minor version changes; this check
turns a stale build into an ImportError that says so, instead of a crash.

A module built with ``cstreams.api`` calls ``check_abi(__name__)`` (from the .pxd), which embeds
the version it was compiled against and calls ``check`` below at import time.
"""

from __future__ import annotations


def abi_version(version: str) -> str:
    """The ABI part of a version string: its major.minor ("0.1.3" -> "0.1")."""
    parts = version.split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError(f"not a major.minor[.patch] version: {version!r}")
    return f"{int(parts[0])}.{int(parts[1])}"


def check(module_name: str, built_against: str) -> None:
    """Raise ImportError unless the running cstreams' major.minor is ``built_against``'s and
    its compiled core is loaded (a compiled processor cannot run on the pure-Python twins)."""
    import cstreams

    running = cstreams.__version__
    if abi_version(built_against) != abi_version(running):
        raise ImportError(
            f"{module_name} was compiled against cstreams {built_against}, but cstreams "
            f"{running} is installed; modules that cimport cstreams must be rebuilt for each "
            f"cstreams major.minor version (rebuild it, e.g. `pip install --force-reinstall "
            f"--no-cache-dir <your package>` or `python setup.py build_ext --inplace`)",
            name=module_name,
        )
    if cstreams.IMPLEMENTATION != "compiled":
        raise ImportError(
            f"{module_name} is a compiled cstreams processor, but cstreams runs on its "
            f"pure-Python twins (CSTREAMS_NO_EXTENSIONS is set, or the compiled core did not "
            f"load); unset CSTREAMS_NO_EXTENSIONS or reinstall cstreams with its extensions",
            name=module_name,
        )
