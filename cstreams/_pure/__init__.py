"""The pure-Python core: the one-source modules (compiled into ``cstreams._core`` when the
extensions are built) and the small pure twins of the hand-written C kernels.

``cstreams._impl`` decides which set is imported.
"""
