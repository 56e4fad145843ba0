"""Build the example: `python setup.py build_ext --inplace` (or `pip install .`).

cstreams must be installed (its .pxd files are what this module compiles against);
cstreams.get_include() puts them on Cython's include path.
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
    ),
)
