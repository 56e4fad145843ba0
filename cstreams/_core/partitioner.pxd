# Kafka's murmur2 over a C buffer, for compiled code that partitions serialized keys.

from libc.stdint cimport int32_t


cdef int32_t murmur2_buffer(const unsigned char *data, Py_ssize_t length) noexcept nogil
