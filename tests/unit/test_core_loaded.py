"""The selector loaded what the environment asked for: the compiled core under
CSTREAMS_REQUIRE_EXTENSIONS=1, the pure twins under CSTREAMS_NO_EXTENSIONS=1.

The module list is derived, not kept here: every module the selector exports, every compiled
source the build knows (setup.py), and every .pxd/.pyx of cstreams/_core must be one of them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pathlib

import pytest

import cstreams
from cstreams import _impl

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORE = ROOT / "cstreams" / "_core"
PURE = ROOT / "cstreams" / "_pure"


def _flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _built_modules(monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = importlib.util.spec_from_file_location("_cstreams_setup", ROOT / "setup.py")
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)
    return {name for name, _ in setup.sources()}


def test_module_list_is_complete(monkeypatch):
    listed = set(_impl.MODULES)
    assert len(listed) == len(_impl.MODULES)
    # Compiled-only modules (no pure twin, chosen by a selector of their own) are listed apart.
    compiled_only = set(_impl.COMPILED_ONLY)
    assert not compiled_only & listed
    assert _built_modules(monkeypatch) == listed | compiled_only
    core = {p.stem for p in CORE.glob("*.pyx")} | {
        p.stem for p in CORE.glob("*.pxd") if not p.stem.startswith("_")}
    assert core == listed | compiled_only
    # Every core module has its pure source (pure-only helpers may live beside them).
    pure = {p.stem for p in PURE.glob("*.py") if not p.stem.startswith("_")}
    assert listed <= pure
    for name in listed:
        assert getattr(_impl, name).__name__.rsplit(".", 1)[1] == name


@pytest.mark.skipif(not _flag("CSTREAMS_REQUIRE_EXTENSIONS"),
                    reason="CSTREAMS_REQUIRE_EXTENSIONS is not set")
def test_compiled_core_loaded_when_required():
    assert cstreams.IMPLEMENTATION == "compiled"
    for name in _impl.MODULES:
        mod = importlib.import_module(f"cstreams._core.{name}")
        assert _impl.is_compiled(mod), f"cstreams._core.{name} is {mod.__file__}"
        assert mod.__file__.endswith(".so"), f"cstreams._core.{name} is {mod.__file__}"
        assert getattr(_impl, name) is mod
    assert cstreams.RecordBatch is importlib.import_module("cstreams._core.record").RecordBatch
    assert cstreams.BatchProcessor.__module__ == "cstreams._core.processor"


@pytest.mark.skipif(not _flag("CSTREAMS_NO_EXTENSIONS"), reason="CSTREAMS_NO_EXTENSIONS is not set")
def test_pure_twins_loaded_when_extensions_disabled():
    assert cstreams.IMPLEMENTATION == "pure"
    for name in _impl.MODULES:
        mod = getattr(_impl, name)
        assert mod.__name__ == f"cstreams._pure.{name}"
        assert not _impl.is_compiled(mod)
    assert cstreams.RecordBatch.__module__ == "cstreams._pure.record"


def test_is_compiled_tells_extension_modules_from_sources():
    # A .py under cstreams/_core (a stray copy of a one-source module, or a failed build)
    # would import as cstreams._core.<x>; the selector checks the loader, not the name.
    for name in _impl.MODULES:
        assert not _impl.is_compiled(importlib.import_module(f"cstreams._pure.{name}"))
    if _flag("CSTREAMS_REQUIRE_EXTENSIONS"):
        assert all(_impl.is_compiled(getattr(_impl, name)) for name in _impl.MODULES)
