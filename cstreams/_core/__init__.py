"""The compiled core: Cython twins of cstreams._pure, selected by cstreams._impl."""
