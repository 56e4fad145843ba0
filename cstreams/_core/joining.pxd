# Declarations of the windowed stream-stream join passes, compiled from
# cstreams/_pure/joining.py (Cython pure-Python mode).

cimport cython


@cython.locals(late=list, unmatched=list, pair_this=list, pair_time=list, pair_payload=list,
               s="long long", n=Py_ssize_t, i=Py_ssize_t, t="long long", entries=object,
               hit=bint, lo="long long", hi="long long", e=tuple, ot="long long")
cpdef tuple match_windows(list kbs, object timestamps, long long stream_time,
                          long long grace, long long before, long long after, dict other)


@cython.locals(kept=list, store_keys=list, n=Py_ssize_t, i=Py_ssize_t, j=Py_ssize_t,
               n_late=Py_ssize_t, kb=bytes, ck=bytes, entry=tuple, found=object)
cpdef tuple index_records(list kbs, object timestamps, list late, object seq, dict index)
