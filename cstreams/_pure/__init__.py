"""Pure-Python twins of the compiled core in ``cstreams._core``.

Each module here has the same public names and semantics as its compiled twin; the selector in
``cstreams._impl`` decides which set is imported.
"""
