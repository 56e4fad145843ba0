"""The selector loaded what the environment asked for: the compiled core under
CSTREAMS_REQUIRE_EXTENSIONS=1, the pure twins under CSTREAMS_NO_EXTENSIONS=1."""

from __future__ import annotations

import importlib
import os

import pytest

import cstreams
from cstreams import _impl

MODULES = ("record", "grouping", "serde", "processor", "dispatch", "store")


def _flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


@pytest.mark.skipif(not _flag("CSTREAMS_REQUIRE_EXTENSIONS"),
                    reason="CSTREAMS_REQUIRE_EXTENSIONS is not set")
def test_compiled_core_loaded_when_required():
    assert cstreams.IMPLEMENTATION == "compiled"
    for name in MODULES:
        mod = importlib.import_module(f"cstreams._core.{name}")
        assert mod.__file__.endswith(".so"), f"cstreams._core.{name} is {mod.__file__}"
        assert getattr(_impl, name) is mod
    assert cstreams.RecordBatch is importlib.import_module("cstreams._core.record").RecordBatch
    assert cstreams.BatchProcessor.__module__ == "cstreams._core.processor"


@pytest.mark.skipif(not _flag("CSTREAMS_NO_EXTENSIONS"), reason="CSTREAMS_NO_EXTENSIONS is not set")
def test_pure_twins_loaded_when_extensions_disabled():
    assert cstreams.IMPLEMENTATION == "pure"
    for name in MODULES:
        assert getattr(_impl, name).__name__ == f"cstreams._pure.{name}"
    assert cstreams.RecordBatch.__module__ == "cstreams._pure.record"
