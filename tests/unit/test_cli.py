"""The command line: topology loading, describe, argument errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cstreams import cli
from cstreams.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


def test_describe_factory(capsys):
    assert cli.main(["describe", "examples.wordcount:build_topology"]) == 0
    out = capsys.readouterr().out
    assert "Sub-topology: 0" in out and "Sub-topology: 1" in out
    assert "Processor: count (stores: [counts])" in out


def test_load_topology_object_and_errors(tmp_path, monkeypatch):
    (tmp_path / "mytopo.py").write_text(
        "import cstreams as cs\n"
        "topo = cs.Topology()\n"
        "topo.add_source('s', topics=['t'])\n"
        "topo.add_sink('o', topic='u', parents=['s'])\n"
        "not_a_topology = 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.load_topology("mytopo:topo").source_topics() == ["t"]
    with pytest.raises(ConfigurationError, match="not a cstreams.Topology"):
        cli.load_topology("mytopo:not_a_topology")
    with pytest.raises(ConfigurationError, match="no attribute"):
        cli.load_topology("mytopo:missing")
    with pytest.raises(ConfigurationError, match="cannot import"):
        cli.load_topology("no_such_module_xyz:topo")
    with pytest.raises(ConfigurationError, match="MODULE:TOPOLOGY"):
        cli.load_topology("mytopo")


def test_run_reports_bad_config_as_error(capsys):
    rc = cli.main(["run", "examples.wordcount:build_topology", "--application-id", "x",
                   "--bootstrap-servers", "127.0.0.1:1", "--config", "enable.auto.commit=true"])
    assert rc == 1
    assert "ConfigurationError" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    r = subprocess.run([sys.executable, "-m", "cstreams", "describe",
                        "examples.wordcount:build_topology"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Sink: out (topic: word-counts)" in r.stdout


def test_run_passes_the_processing_guarantee(capsys):
    # changelog.producer.* settings are an error only under exactly-once: the flag reached App.
    args = ["run", "examples.wordcount:build_topology", "--application-id", "x",
            "--bootstrap-servers", "127.0.0.1:1", "--config", "changelog.producer.acks=all"]
    assert cli.main(args + ["--processing-guarantee", "exactly_once_v2"]) == 1
    assert "changelog.producer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(args + ["--processing-guarantee", "at_most_once"])
