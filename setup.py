"""Build of cstreams' compiled core: every cstreams/_core/*.pyx is cythonized from source.

CSTREAMS_DEBUG=1 builds with annotate HTML, line tracing and bounds checks (never shipped).
"""

import glob
import os

from setuptools import Extension, setup

DEBUG = os.environ.get("CSTREAMS_DEBUG", "") not in ("", "0")


def extensions():
    from Cython.Build import cythonize

    directives = {"language_level": 3, "embedsignature": True}
    macros = []
    if DEBUG:
        directives.update(linetrace=True, boundscheck=True, wraparound=True,
                          initializedcheck=True)
        macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    exts = []
    for pyx in sorted(glob.glob("cstreams/_core/*.pyx")):
        name = pyx[:-4].replace(os.sep, ".").replace("/", ".")
        exts.append(Extension(name, [pyx], define_macros=macros,
                              extra_compile_args=["-O2"] if not DEBUG else ["-O0", "-g"]))
    return cythonize(exts, compiler_directives=directives, annotate=DEBUG,
                     include_path=["."], nthreads=int(os.environ.get("CSTREAMS_BUILD_JOBS", "2")))


setup(ext_modules=extensions())
