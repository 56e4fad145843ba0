"""The README's quick start and the examples run as written."""

import os
import pathlib
import re
import subprocess
import sys

import cstreams as cs
from cstreams.testing import TopologyTestDriver

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _quick_start_source():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Quick start"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_quick_start_topology_counts_words_through_the_driver(capsys):
    """The quick start in the DSL: repartitioned by word, counted once per word."""
    src = _quick_start_source()
    run_line = 'cs.App(topo, application_id="wordcount", bootstrap_servers="localhost:9092").run()'
    assert run_line in src
    namespace = {}
    exec(compile(src.replace(run_line, ""), "README.md", "exec"), namespace)
    topo = namespace["topo"]
    assert "Sub-topology: 1" in capsys.readouterr().out
    with TopologyTestDriver(topo, partitions={"words": 2, "word-counts": 3},
                            application_id="wordcount") as d:
        d.pipe_batch("words", ["l1", "l2"], ["the cat the", "hat the"], partition=0)
        d.pipe("words", "l3", "cat", partition=1)
        assert d.output_as_dict("word-counts") == {"the": 3, "cat": 2, "hat": 1}
        # Each word was counted by exactly one task: its repartitioned partition.
        per_word = {}
        for r in d.output("wordcount-by-word-repartition"):
            per_word.setdefault(r.key, set()).add(r.partition)
        assert set(per_word) == {"the", "cat", "hat"}
        assert all(len(parts) == 1 for parts in per_word.values())


def test_processor_api_word_count_gives_the_same_counts(capsys):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The Processor API"):]
    src = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(src, "README.md", "exec"), namespace)
    assert "Sub-topology: 1" in capsys.readouterr().out
    with TopologyTestDriver(namespace["topo"], partitions={"words-by-word": 3}) as d:
        d.pipe_batch("words", ["l1", "l2"], ["the cat the", "hat the"], partition=0)
        d.pipe("words", "l3", "cat", partition=1)
        assert d.output_as_dict("word-counts") == {"the": 3, "cat": 2, "hat": 1}


def test_wordcount_example_describes_itself():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "examples/wordcount.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True, env=env).stdout
    assert "Source: lines (topics: [words])" in out
    assert "Processor: count (stores: [counts])" in out


def test_wordcount_example_through_the_driver(tmp_path):
    sys.path.insert(0, str(ROOT))
    try:
        from examples.wordcount import build_topology
    finally:
        sys.path.remove(str(ROOT))
    with TopologyTestDriver(build_topology(), partitions={"words-by-word": 4},
                            state_dir=str(tmp_path)) as d:
        d.pipe_batch("words", [None] * 3, ["To be, or not to be", "be", "not now"])
        assert d.output_as_dict("word-counts") == {"to": 2, "be": 3, "or": 1, "not": 2,
                                                   "now": 1}
    assert cs.IMPLEMENTATION in ("compiled", "pure")


def test_joins_example_enriches_orders_through_the_driver():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Joins"):]
    src = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(src, "README.md", "exec"), namespace)
    with TopologyTestDriver(namespace["topo"]) as d:
        d.pipe("customers", "c1", {"name": "Ann"})
        d.pipe_batch("orders", ["c1", "c2", "c1"], [{"id": 1}, {"id": 2}, {"id": 3}])
        d.pipe("customers", "c1", {"name": "Ann B."})
        d.pipe("orders", "c1", {"id": 4})
        assert [(r.key, r.value) for r in d.output("enriched-orders")] == [
            ("c1", {"id": 1, "name": "Ann"}), ("c1", {"id": 3, "name": "Ann"}),
            ("c1", {"id": 4, "name": "Ann B."})]
