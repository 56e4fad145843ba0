"""A user's Cython processor, compiled against the INSTALLED cstreams, run by the test driver.

The slow tests build a wheel of cstreams with pip, install it (non-editable) into a fresh venv
under tmp_path, build examples/cython_count/sum_per_key.pyx there with the documented recipes
(the example's setup.py, and the `cythonize` one-liner), with the working directory outside the
repository and no PYTHONPATH, and import the module in fresh processes of that venv. No broker
is needed.

pip builds a local directory in place, so the package sources (what the wheel is built from:
cstreams/, setup.py, pyproject.toml, README.md) are copied to tmp_path first: a build inside the
shared working tree would race other builds there. Cythonizing and compiling every extension
again made that fixture cost ~98 s, for binaries the rest of the suite already runs: the
checkout's build is reused where it provably matches (_reuse_checkout_extensions), and the
wheel's file list, what these tests are about, still comes from pip and setuptools as in a
user's build.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import cstreams
from cstreams import _abi

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "cython_count"
PARTITIONS = 3
OUT_PARTITIONS = 4


# --- fast checks of the version rule --------------------------------------------------------


def test_abi_version_is_major_minor():
    assert _abi.abi_version("0.1.0") == "0.1"
    assert _abi.abi_version("1.12.3rc1") == "1.12"
    with pytest.raises(ValueError):
        _abi.abi_version("1")


def test_check_accepts_the_running_major_minor(monkeypatch):
    monkeypatch.setattr(cstreams, "IMPLEMENTATION", "compiled")
    major, minor = cstreams.__version__.split(".")[:2]
    _abi.check("user_mod", built_against=f"{major}.{minor}")
    _abi.check("user_mod", built_against=f"{major}.{minor}.99")


def test_check_rejects_another_minor_with_a_clear_message(monkeypatch):
    monkeypatch.setattr(cstreams, "__version__", "0.2.0")
    with pytest.raises(ImportError) as e:
        _abi.check("user_mod", built_against="0.1")
    msg = str(e.value)
    assert "user_mod was compiled against cstreams 0.1" in msg
    assert "cstreams 0.2.0 is installed" in msg
    assert "rebuilt" in msg
    assert e.value.name == "user_mod"


def test_check_rejects_the_pure_twins(monkeypatch):
    monkeypatch.setattr(cstreams, "IMPLEMENTATION", "pure")
    with pytest.raises(ImportError, match="pure-Python twins"):
        _abi.check("user_mod", built_against=cstreams.__version__)


def test_api_pxd_abi_constant_matches_the_package_version():
    text = (REPO / "cstreams" / "api.pxd").read_text()
    m = re.search(r'#define CSTREAMS_ABI_VERSION "([^"]+)"', text)
    assert m, "cstreams/api.pxd must define CSTREAMS_ABI_VERSION"
    assert m.group(1) == _abi.abi_version(cstreams.__version__), (
        "bump CSTREAMS_ABI_VERSION in cstreams/api.pxd with the major.minor version"
    )


# --- the installed package ------------------------------------------------------------------


def _env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "CSTREAMS_NO_EXTENSIONS")}
    env["CSTREAMS_REQUIRE_EXTENSIONS"] = "1"
    env["CSTREAMS_BUILD_JOBS"] = "2"
    return env


def _run(cmd, cwd, env=None, timeout=300, input=None):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env or _env(), timeout=timeout,
                          capture_output=True, text=True, input=input)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
                    f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


def _copy_package_sources(dest):
    # The generated .c files come along (mtimes kept) so that Cython regenerates only what it
    # finds stale; they are build inputs here, never package data (test_wheel_ships_...).
    skip = shutil.ignore_patterns("*.so", "*.html", "__pycache__", "*.pyc")
    shutil.copytree(REPO / "cstreams", dest / "cstreams", ignore=skip)
    for name in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, dest / name)


def _compiled_sources(src):
    """{module name: its source path relative to src}, as the copied setup.py builds them."""
    code = ("import json, runpy; s = runpy.run_path('setup.py', run_name='_cstreams_setup');"
            "print(json.dumps(dict(s['sources']())))")
    return json.loads(_run([sys.executable, "-c", code], src).stdout)


def _reuse_checkout_extensions(py, src):
    """Seed the wheel build's build_ext output with the checkout's compiled modules.

    Only where they are what this build would compile: the copy is cythonized first (Cython
    regenerates any .c it finds stale, e.g. one older than Cython's own installed .pxd files),
    and a checkout .so is reused when its .c is byte for byte the one this copy now holds and
    the .so is newer than that .c (setuptools' own rule). setuptools then skips those modules
    (their output is newer than their source) and compiles any other. Returns the names reused.
    """
    _run([py, "setup.py", "-q", "--name"], src)   # cythonize() runs at setup.py's import
    plat = _run([py, "-c", textwrap.dedent("""
        from setuptools import Extension
        from setuptools.dist import Distribution
        build = Distribution({"ext_modules": [Extension("x", ["x.c"])]}).get_command_obj("build")
        build.finalize_options()
        print(build.build_platlib)""")], src).stdout.strip()
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    reused = []
    for name, source in _compiled_sources(src).items():
        c_rel = Path(source).with_suffix(".c")
        built_so = REPO / "cstreams" / "_core" / f"{name}{suffix}"
        built_c = REPO / c_rel
        if not (built_so.is_file() and built_c.is_file() and (src / c_rel).is_file()):
            continue
        if built_so.stat().st_mtime < built_c.stat().st_mtime:
            continue
        if built_c.read_bytes() != (src / c_rel).read_bytes():
            continue
        dest = src / plat / "cstreams" / "_core" / built_so.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built_so, dest)   # a fresh mtime: newer than the copy's .c
        reused.append(name)
    return reused


def _outer_site_dirs():
    # Build and run dependencies (Cython, setuptools, orjson, ...) as the running interpreter
    # sees them: the venv's --system-site-packages only reaches the base interpreter's.
    dirs = list(site.getsitepackages())
    purelib = sysconfig.get_paths()["purelib"]
    if purelib not in dirs:
        dirs.append(purelib)
    return [d for d in dirs if os.path.isdir(d)]


def _can_build_wheels(py, cwd):
    # setuptools >= 70.1 has bdist_wheel itself; older ones need the wheel package.
    code = ("import Cython, setuptools\n"
            "try:\n    import setuptools.command.bdist_wheel\n"
            "except ImportError:\n    import wheel.bdist_wheel\n")
    return subprocess.run([str(py), "-c", code], cwd=cwd, env=_env(),
                          capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    pytest.importorskip("Cython")
    root = tmp_path_factory.mktemp("cython-user")
    src = root / "src"
    _copy_package_sources(src)
    home = root / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", home], root)
    py = home / "bin" / "python"
    venv_site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          root).stdout.strip())
    # Plain directory lines: .pth files inside them (an editable cstreams) are not processed.
    (venv_site / "_outer_site.pth").write_text("".join(d + "\n" for d in _outer_site_dirs()))
    if subprocess.run([py, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        _run([py, "-m", "ensurepip"], root)
    # The build dependencies are reused when they are all there (`make install` puts them in
    # .venv); else pip fetches them into an isolated build env.
    isolation = ["--no-build-isolation", "--no-index"] if _can_build_wheels(py, root) else []
    reused = _reuse_checkout_extensions(py, src) if isolation else []
    dist = root / "dist"
    _run([py, "-m", "pip", "wheel", "-q", "--no-deps", "--no-cache-dir", *isolation,
          "--wheel-dir", dist, src], root, timeout=600)
    wheels = list(dist.glob("cstreams-*.whl"))
    assert len(wheels) == 1, wheels
    # --ignore-installed: an editable cstreams visible through the outer site dirs is neither
    # reused nor uninstalled.
    _run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-cache-dir", "--ignore-installed",
          "--no-index", wheels[0]], root)
    probe = ("import json, cstreams; print(json.dumps("
             "[cstreams.__file__, cstreams.get_include(), cstreams.IMPLEMENTATION]))")
    info = json.loads(_run([py, "-c", probe], root).stdout)
    pkg = Path(info[0]).parent
    assert pkg == venv_site / "cstreams", f"cstreams imported from {pkg}, not the venv"
    assert info[2] == "compiled"
    return SimpleNamespace(root=root, py=py, site=venv_site, pkg=pkg, include=info[1],
                           wheel=wheels[0], src=src, reused=reused)


@pytest.fixture(scope="module")
def built(venv):
    """sum_per_key built with the example's setup.py, outside the repository."""
    user = venv.root / "user"
    user.mkdir()
    for name in ("setup.py", "sum_per_key.pyx"):
        shutil.copy2(EXAMPLE / name, user / name)
    _run([venv.py, "setup.py", "-q", "build_ext", "--inplace"], user)
    assert list(user.glob("sum_per_key*.so")), "the example did not build"
    return user


def _cython_api_files():
    """What a user needs to cimport cstreams and type-check against it, as the checkout holds
    it: the public .pxd, every .pxd and .pyi of the core, its hand-written .pyx and C header,
    and py.typed."""
    pkg = REPO / "cstreams"
    files = {"api.pxd", "py.typed", "_core/__init__.pxd"}
    for pattern in ("*.pxd", "_core/*.pxd", "_core/*.pyi", "_core/*.pyx", "_core/*.h"):
        files |= {p.relative_to(pkg).as_posix() for p in pkg.glob(pattern)}
    return sorted(files)


@pytest.mark.slow
def test_wheel_ships_the_cython_api(venv):
    with zipfile.ZipFile(venv.wheel) as whl:
        shipped = set(whl.namelist())
    api = _cython_api_files()
    modules = _compiled_sources(venv.src)
    assert {"record", "processor", "output", "context", "nodes", "store", "serde"} <= set(modules)
    for name in modules:
        assert f"_core/{name}.pxd" in api and f"_core/{name}.pyi" in api, name
    for rel in api:
        assert f"cstreams/{rel}" in shipped, f"{rel} is missing from the wheel"
        assert (venv.pkg / rel).is_file(), f"{rel} is missing from the installed package"
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name in modules:
        assert f"cstreams/_core/{name}{suffix}" in shipped, f"compiled {name} is not in the wheel"
    # Generated sources are build inputs, not package data.
    generated = sorted(n for n in shipped if n.startswith("cstreams/")
                       and n.endswith((".c", ".cpp", ".html")))
    assert not generated, f"generated files in the wheel: {generated}"


@pytest.mark.slow
def test_sdist_ships_what_a_build_from_it_needs(venv):
    out = venv.root / "sdist"
    _run([sys.executable, "-c",
          "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])",
          out], venv.src)
    (sdist,) = out.glob("cstreams-*.tar.gz")
    with tarfile.open(sdist) as tar:
        shipped = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for rel in ("setup.py", "pyproject.toml", *_compiled_sources(venv.src).values()):
        assert rel in shipped, f"{rel} is missing from the sdist"
    for rel in _cython_api_files():
        assert f"cstreams/{rel}" in shipped, f"{rel} is missing from the sdist"


@pytest.mark.slow
def test_cythonize_one_liner_compiles_against_the_installed_pxd_files(venv):
    user = venv.root / "oneliner"
    user.mkdir()
    shutil.copy2(EXAMPLE / "sum_per_key.pyx", user / "sum_per_key.pyx")
    _run([venv.py, "-m", "Cython.Build.Cythonize", "-i", "-3", "-M", "-q", "sum_per_key.pyx"],
         user)
    assert list(user.glob("sum_per_key*.so"))
    dep = (user / "sum_per_key.c.dep").read_text()
    pxds = {Path(os.path.normpath(user / p)) for p in re.findall(r"(\S+\.pxd)", dep)}
    ours = {p for p in pxds if "cstreams" in p.parts}
    assert venv.pkg / "api.pxd" in ours
    assert venv.pkg / "_core" / "store.pxd" in ours
    assert all(venv.pkg in p.parents for p in ours), f"not the installed .pxd files: {ours}"


DRIVER = textwrap.dedent("""
    import json, sys
    import cstreams as cs
    from cstreams import serde, stores
    from cstreams.testing import TopologyTestDriver
    import sum_per_key

    batches = json.loads(sys.stdin.read())
    t = cs.Topology()
    t.add_source("in", "amounts", key_serde=serde.STRING, value_serde=serde.INT64)
    # A small cache: evictions make later batches read sums back from the backend.
    t.add_store(stores.in_memory("sums", key_serde=serde.STRING, value_serde=serde.INT64,
                                 cache_max_entries=8))
    t.add_processor("sum", sum_per_key.SumPerKey, parents="in", stores=["sums"])
    t.add_sink("out", "sums-out", parents="sum", key_serde=serde.STRING,
               value_serde=serde.INT64)
    with TopologyTestDriver(t, partitions={"sums-out": %(out)d}) as d:
        for p, keys, values, ts in batches:
            d.pipe_batch("amounts", keys, values, ts, partition=p)
        d.flush()
        keys = sorted({k for _, ks, _, _ in batches for k in ks if k is not None})
        stored = {p: {k: d.get_store("sums", p).get(k) for k in keys} for p in range(%(parts)d)}
        out = [[r.key, r.value, r.timestamp, r.partition] for r in d.output("sums-out")]
    print(json.dumps({"module": sum_per_key.__file__, "core": cs.IMPLEMENTATION,
                      "cls": type(sum_per_key.SumPerKey()).__mro__[1].__module__,
                      "stored": stored, "out": out}))
""") % {"out": OUT_PARTITIONS, "parts": PARTITIONS}


def _workload():
    rng = random.Random(11)
    keys = [f"k{i}" for i in range(20)]
    batches = []
    ts = 1_000
    for _ in range(12):
        p = rng.randrange(PARTITIONS)
        n = rng.randrange(1, 60)
        ks = [rng.choice(keys) for _ in range(n)]
        vs = [rng.randrange(-1_000, 1_000_000) for _ in range(n)]
        if n > 3:
            ks[1] = None            # dropped: null key
            vs[2] = None            # dropped: null value
        t = [ts + i for i in range(n)]
        ts += n
        batches.append([p, ks, vs, t])
    return batches


@pytest.mark.slow
def test_compiled_processor_sums_per_key_per_partition(venv, built):
    batches = _workload()
    res = json.loads(_run([venv.py, "-c", DRIVER], built, input=json.dumps(batches)).stdout)
    assert Path(res["module"]).parent == built
    assert res["core"] == "compiled"
    assert res["cls"] == "cstreams._core.processor"

    running = {}
    expected_out = []
    for p, keys, values, ts in batches:
        for k, v, t in zip(keys, values, ts):
            if k is None or v is None:
                continue
            running[(p, k)] = running.get((p, k), 0) + v
            expected_out.append([k, running[(p, k)], t])
    assert [r[:3] for r in res["out"]] == expected_out
    # A key's output always lands in one sink partition (murmur2 of its serialized key).
    part_of = {}
    for k, _, _, op in res["out"]:
        assert part_of.setdefault(k, op) == op
        assert 0 <= op < OUT_PARTITIONS
    for p in range(PARTITIONS):
        want = {k: s for (pp, k), s in running.items() if pp == p}
        got = {k: s for k, s in res["stored"][str(p)].items() if s is not None}
        assert got == want, f"store of partition {p}"


MISMATCH = textwrap.dedent("""
    import cstreams
    cstreams.__version__ = "0.99.0"
    try:
        import sum_per_key
    except ImportError as e:
        print("ImportError:", e)
    else:
        print("imported")
""")


@pytest.mark.slow
def test_stale_build_fails_at_import_with_a_clear_message(venv, built):
    out = _run([venv.py, "-c", MISMATCH], built).stdout
    built_against = _abi.abi_version(cstreams.__version__)
    assert out.startswith("ImportError: sum_per_key was compiled against cstreams "
                          f"{built_against}, but cstreams 0.99.0 is installed"), out
    assert "must be rebuilt" in out

    env = _env()
    env.pop("CSTREAMS_REQUIRE_EXTENSIONS")
    env["CSTREAMS_NO_EXTENSIONS"] = "1"
    out = _run([venv.py, "-c", MISMATCH.replace('cstreams.__version__ = "0.99.0"', "")],
               built, env=env).stdout
    assert out.startswith("ImportError: sum_per_key is a compiled cstreams processor"), out
