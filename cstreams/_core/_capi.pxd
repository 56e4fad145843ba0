# C-API helpers shared by the hand-written core modules (cimport them, never paste them).

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object obj, int *overflow) except? -1
    object PyLong_FromLongLong(long long v)
    object PyFloat_FromDouble(double v)
    Py_ssize_t PyLong_AsSsize_t(object obj) except? -1
    bint PyObject_CheckBuffer(object obj)


cdef inline list _as_list(object seq):
    # Columns are lists; another sequence is copied into one.
    if type(seq) is list:
        return <list>seq
    return list(seq)
