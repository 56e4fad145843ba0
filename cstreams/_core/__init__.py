"""The compiled core, built from source at install (setup.py): the one-source modules of
cstreams/_pure compiled in Cython's pure-Python mode with the .pxd files here, and the
hand-written C kernels (.pyx). cstreams._impl selects it or the pure set."""
