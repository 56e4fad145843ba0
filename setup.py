"""Build of cstreams' compiled core, cythonized from source into cstreams._core.*:

- every cstreams/_core/<x>.pyx: the hand-written kernels (record accessors, serde loops,
  murmur2, counting), each with a small pure twin in cstreams/_pure/<x>.py;
- every cstreams/_pure/<x>.py that has a cstreams/_core/<x>.pxd and no .pyx: one source for
  both builds, compiled in Cython's pure-Python mode with the declarations of that .pxd (the
  pure-Python path imports the same file uncompiled).

CSTREAMS_DEBUG=1 builds with annotate HTML, line tracing and bounds checks (never shipped).
"""

import glob
import os

from setuptools import Extension, setup

DEBUG = os.environ.get("CSTREAMS_DEBUG", "") not in ("", "0")


def sources():
    """(module name, source path) of every compiled module."""
    out = []
    for pyx in sorted(glob.glob("cstreams/_core/*.pyx")):
        out.append((os.path.basename(pyx)[:-4], pyx))
    for pxd in sorted(glob.glob("cstreams/_core/*.pxd")):
        name = os.path.basename(pxd)[:-4]
        py = f"cstreams/_pure/{name}.py"
        if not name.startswith("_") and os.path.exists(py) and \
                not os.path.exists(f"cstreams/_core/{name}.pyx"):
            out.append((name, py))
    return sorted(out)


def _stale_one_source_c_files(sources):
    """Cython's dependency scan finds a .py module's .pxd only beside the .py, not under the
    compiled module's name (cstreams/_core/<x>.pxd): drop a generated .c older than any core
    .pxd so that it is regenerated."""
    newest_pxd = max(os.path.getmtime(p) for p in glob.glob("cstreams/_core/*.pxd"))
    for _name, path in sources:
        c_file = path[:-3] + ".c"
        if path.endswith(".py") and os.path.exists(c_file) and \
                os.path.getmtime(c_file) < newest_pxd:
            os.remove(c_file)


def extensions():
    from Cython.Build import cythonize

    directives = {"language_level": 3, "embedsignature": True}
    macros = []
    if DEBUG:
        directives.update(linetrace=True, boundscheck=True, wraparound=True,
                          initializedcheck=True)
        macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    modules = sources()
    _stale_one_source_c_files(modules)
    exts = [
        Extension(f"cstreams._core.{name}", [path], define_macros=macros,
                  extra_compile_args=["-O2"] if not DEBUG else ["-O0", "-g"],
                  # native: dlopen/dlsym of the librdkafka confluent-kafka loaded (no link
                  # to librdkafka itself; libdl is part of libc on glibc >= 2.34)
                  libraries=["dl"] if name == "native" else [])
        for name, path in modules
    ]
    return cythonize(exts, compiler_directives=directives, annotate=DEBUG,
                     include_path=["."], nthreads=int(os.environ.get("CSTREAMS_BUILD_JOBS", "2")))


if __name__ == "__main__":  # as setuptools runs it; tests import sources() alone
    setup(ext_modules=extensions())
