"""Kafka's default partitioner: murmur2 of the serialized key (pure twin of the compiled
kernel cstreams._core.partitioner)."""

from __future__ import annotations


def murmur2(data):
    """Kafka's murmur2 hash (as the Java client's Utils.murmur2), a signed 32-bit int."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    h = (seed ^ length) & 0xFFFFFFFF
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


def murmur2_partitions(keys, num_partitions):
    """Partition per serialized key as Kafka's default partitioner: positive murmur2 modulo
    the partition count; -1 (let the producer choose) for a null key."""
    out = []
    for k in keys:
        if k is None:
            out.append(-1)
        else:
            out.append((murmur2(k) & 0x7FFFFFFF) % num_partitions)
    return out
