"""Build the example in place: `python setup.py build_ext --inplace`.

cstreams must be installed in the building interpreter (its .pxd files are what the module
compiles against), so a pip build needs `pip install --no-build-isolation .`, or cstreams of
the same major.minor in the build requirements.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

import cstreams

setup(
    name="cstreams-cython-count-example",
    version="0.1.0",
    ext_modules=cythonize(
        [Extension("sum_per_key", ["sum_per_key.pyx"], include_dirs=[cstreams.get_include()])],
        compiler_directives={"language_level": 3, "embedsignature": True},
        # Where Cython looks for `cimport cstreams.api` besides sys.path.
        include_path=[cstreams.get_include()],
    ),
)
