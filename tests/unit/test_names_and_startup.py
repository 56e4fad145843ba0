"""Names checked when the topology and the App are built; start-up checks before anything
touches the disk (settings, state_dir); init()/close() failures name node and task."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import cstreams as cs
from cstreams import names
from cstreams.errors import ConfigurationError, ProcessingError, StoreError, TopologyError


def topology(store_name="counts", sink_topic="out"):
    topo = cs.Topology()
    topo.add_source("in", topics=["in"], key_serde=cs.serde.STRING,
                    value_serde=cs.serde.STRING)
    topo.add_processor("p", cs.processors.map_values(lambda v: v), parents=["in"])
    topo.add_sink("out", topic=sink_topic, parents=["p"], key_serde=cs.serde.STRING,
                  value_serde=cs.serde.STRING)
    return topo


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".", "", "x y", "é", "a" * 250])
def test_illegal_names_are_rejected_everywhere(bad):
    with pytest.raises(TopologyError, match="store name"):
        cs.stores.rocksdb(bad)
    with pytest.raises(TopologyError, match="sink 'out': topic"):
        topology(sink_topic=bad)
    with pytest.raises(TopologyError, match="processor name"):
        cs.Topology().add_processor(bad, cs.processors.map_values(lambda v: v), parents=["x"])
    with pytest.raises(TopologyError, match="source 's': topic"):
        cs.Topology().add_source("s", topics=[bad])


def test_the_error_names_the_bad_name_and_the_rule():
    with pytest.raises(TopologyError) as e:
        cs.stores.in_memory("../x")
    assert "'../x'" in str(e.value) and "'/'" in str(e.value)


def test_legal_names_pass():
    for good in ["a", "A-b_c.9", "x" * 249]:
        assert names.problem(good) is None


def test_inside_rejects_paths_leaving_the_base(tmp_path):
    assert names.inside(str(tmp_path), "a", "b") == os.path.join(str(tmp_path), "a", "b")
    with pytest.raises(StoreError, match="would leave the state directory"):
        names.inside(str(tmp_path), "..", "x", error=StoreError)
    os.symlink("/", tmp_path / "link")
    with pytest.raises(ConfigurationError):
        names.inside(str(tmp_path), "link", "etc")


pytest.importorskip("confluent_kafka")


def app(tmp_path, **kw):
    kw.setdefault("application_id", "app")
    kw.setdefault("state_dir", str(tmp_path / "state"))
    return cs.App(topology(), bootstrap_servers="127.0.0.1:1", **kw)


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", "", "a" * 250])
def test_application_id_is_checked_before_anything_is_written(tmp_path, bad):
    with pytest.raises(ConfigurationError, match="application_id"):
        app(tmp_path, application_id=bad, processing_guarantee="exactly_once_v2")
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "x").exists()


def test_a_changelog_topic_name_too_long_is_rejected(tmp_path):
    topo = topology()
    topo.add_store(cs.stores.in_memory("s" * 20, cs.serde.STRING, cs.serde.INT64), ["p"])
    with pytest.raises(ConfigurationError, match="changelog topic of store"):
        cs.App(topo, application_id="a" * 220, bootstrap_servers="127.0.0.1:1",
               state_dir=str(tmp_path))


@pytest.mark.parametrize("key, name, client", [
    ("no.such.setting", "no.such.setting", "consumer"),
    ("producer.no.such.setting", "no.such.setting", "producer"),
    ("admin.bogus.key", "bogus.key", "admin"),
    ("restore.consumer.nope", "nope", "restore consumer"),
])
def test_unknown_settings_name_the_key_and_the_client(tmp_path, key, name, client):
    with pytest.raises(ConfigurationError) as e:
        app(tmp_path, config={key: "1"}, processing_guarantee="exactly_once_v2")
    msg = str(e.value)
    assert f"setting {name!r}" in msg and f"for the {client}" in msg
    # Nothing on disk: not the state directory, not the instance id.
    assert not (tmp_path / "state").exists()


def test_an_invalid_value_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="'linger.ms'.*producer"):
        app(tmp_path, config={"producer.linger.ms": "soon"})


def test_valid_settings_pass_and_create_the_state_dir(tmp_path):
    a = app(tmp_path, config={"linger.ms": 5, "consumer.fetch.min.bytes": 1})
    assert os.path.isdir(a.state_dir)
    assert os.listdir(a.state_dir) == []


def test_state_dir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="state_dir .*file"):
        app(tmp_path, state_dir=str(tmp_path / "file"))
    with pytest.raises(ConfigurationError, match="state_dir"):
        app(tmp_path, state_dir=str(tmp_path / "file" / "below"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_state_dir_not_writable(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ConfigurationError, match="state_dir .*ro"):
            app(tmp_path, state_dir=str(ro))
    finally:
        ro.chmod(0o700)


def test_default_state_dir_cannot_shadow_the_package(tmp_path):
    from cstreams.app import default_state_dir

    base = os.path.basename(default_state_dir())
    assert not base.isidentifier()
    # Run from the parent of the default state directory: `import cstreams` is the library.
    os.makedirs(tmp_path / base, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", "import cstreams; print(cstreams.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith(os.path.join("cstreams", "__init__.py"))


# --- init() and close() failures name node and task --------------------------------------


class BadInit(cs.Processor):
    def init(self, ctx):
        raise RuntimeError("no database")

    def process(self, record):
        pass


class BadClose(cs.Processor):
    def process(self, record):
        pass

    def close(self):
        raise RuntimeError("cannot close")


def _topo(cls):
    topo = cs.Topology()
    topo.add_source("in", topics=["in"])
    topo.add_processor("fragile", cls, parents=["in"])
    return topo


def test_init_failure_names_node_and_task():
    from cstreams.testing import TopologyTestDriver

    with pytest.raises(ProcessingError) as e:
        with TopologyTestDriver(_topo(BadInit)) as d:
            d.pipe("in", b"k", b"v")
    msg = str(e.value)
    assert "task 0_0" in msg and "'fragile'" in msg and "init()" in msg
    assert "no database" in msg and e.value.node == "fragile"


def test_close_failure_names_node_and_task():
    from cstreams.testing import TopologyTestDriver

    d = TopologyTestDriver(_topo(BadClose))
    d.pipe("in", b"k", b"v")
    with pytest.raises(ProcessingError) as e:
        d.close()
    msg = str(e.value)
    assert "task 0_0" in msg and "'fragile'" in msg and "close()" in msg
