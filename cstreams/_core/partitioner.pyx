"""Kafka's default partitioner: murmur2 of the serialized key (compiled kernel; the pure twin
is cstreams._pure.partitioner)."""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from libc.stdint cimport int32_t, uint32_t

from cstreams._core._capi cimport PyObject_CheckBuffer


cdef int32_t murmur2_buffer(const unsigned char *data, Py_ssize_t length) noexcept nogil:
    """Kafka's murmur2 (the Java client's Utils.murmur2) over ``length`` bytes."""
    cdef uint32_t m = 0x5BD1E995
    cdef uint32_t h = (<uint32_t>0x9747B28C) ^ <uint32_t>length
    cdef uint32_t k
    cdef Py_ssize_t i, j, n4 = length // 4, base = (length // 4) * 4
    cdef int rest = length & 3
    for i in range(n4):
        j = i * 4
        k = (<uint32_t>data[j] | (<uint32_t>data[j + 1] << 8) | (<uint32_t>data[j + 2] << 16)
             | (<uint32_t>data[j + 3] << 24))
        k *= m
        k ^= k >> 24
        k *= m
        h *= m
        h ^= k
    if rest == 3:
        h ^= <uint32_t>data[base + 2] << 16
    if rest >= 2:
        h ^= <uint32_t>data[base + 1] << 8
    if rest >= 1:
        h ^= <uint32_t>data[base]
        h *= m
    h ^= h >> 13
    h *= m
    h ^= h >> 15
    return <int32_t>h


def _murmur2_py(data):
    # For sequences of ints that are not buffers, as the pure twin accepts them.
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    n4 = length // 4
    for i in range(n4):
        j = i * 4
        k = data[j] | (data[j + 1] << 8) | (data[j + 2] << 16) | (data[j + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length & 3
    base = n4 * 4
    if rest == 3:
        h ^= data[base + 2] << 16
    if rest >= 2:
        h ^= data[base + 1] << 8
    if rest >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


cdef int32_t _murmur2_object(object data) except? -1:
    cdef Py_buffer view
    cdef int32_t h
    if type(data) is bytes:
        return murmur2_buffer(<const unsigned char *>PyBytes_AS_STRING(data),
                              PyBytes_GET_SIZE(data))
    if PyObject_CheckBuffer(data):
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            h = murmur2_buffer(<const unsigned char *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return h
    return _murmur2_py(data)


def murmur2(data):
    """Kafka's murmur2 hash (as the Java client's Utils.murmur2), a signed 32-bit int."""
    return _murmur2_object(data)


def murmur2_partitions(keys, num_partitions):
    """Partition per serialized key as Kafka's default partitioner: positive murmur2 modulo
    the partition count; -1 (let the producer choose) for a null key."""
    cdef list out = []
    cdef long n
    cdef object k
    if type(num_partitions) is not int or not (0 < num_partitions <= 0x7FFFFFFF):
        # Odd partition counts keep Python's semantics (and errors), as the pure twin.
        for k in keys:
            out.append(-1 if k is None else (_murmur2_object(k) & 0x7FFFFFFF) % num_partitions)
        return out
    n = num_partitions
    cdef list src = keys if type(keys) is list else list(keys)
    cdef Py_ssize_t i, size = PyList_GET_SIZE(src)
    for i in range(size):
        k = <object>PyList_GET_ITEM(src, i)
        if k is None:
            out.append(-1)
        else:
            out.append((<long>(<uint32_t>_murmur2_object(k) & 0x7FFFFFFF)) % n)
    return out
