# Public declarations of the serdes, for Cython code that cimports them.

cdef class Serde:
    cdef public object name
    cpdef object serialize(self, object obj)
    cpdef object deserialize(self, object data)
    cpdef object serialize_batch(self, object objs)
    cpdef object deserialize_batch(self, object datas)


cdef class BytesSerde(Serde):
    pass


cdef class StringSerde(Serde):
    pass


cdef class _StructSerde(Serde):
    cdef int _kind          # _INT32, _INT64 or _FLOAT64
    cdef Py_ssize_t _size
    cdef object _struct

    cdef object _pack(self, object obj)
    cdef object _unpack(self, object data)


cdef class Int32Serde(_StructSerde):
    pass


cdef class Int64Serde(_StructSerde):
    pass


cdef class Float64Serde(_StructSerde):
    pass


cdef class JsonSerde(Serde):
    pass


cdef class CallableSerde(Serde):
    cdef public object _ser
    cdef public object _de
