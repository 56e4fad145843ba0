"""The produce loop of the sink and changelog producers (compiled twin).

One call hands a whole batch to confluent-kafka's ``Producer.produce``: the bound method is
looked up once, each record's arguments go positionally (topic, value, key, partition,
on_delivery, callback, timestamp, headers: confluent-kafka's parameter order), so no keyword
dict is built per record, and the loop runs in C.
"""

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE


cdef inline list _as_list(object seq):
    return seq if type(seq) is list else list(seq)


def produce_batch(producer, topic, values, keys, partitions, timestamps=None, headers=None,
                  last_on_delivery=None, double poll_timeout=0.05):
    """Produce ``len(keys)`` records: ``values[i]``, ``keys[i]`` to ``partitions[i]`` (an int
    list, or one int for all), with ``timestamps[i]`` (None: 0, the producer's clock) and
    ``headers[i]`` (None: no headers). ``last_on_delivery``, if given, is the delivery
    callback of the last record only.

    A full local queue (BufferError) is served by ``producer.poll(poll_timeout)`` and the batch
    goes on from the record that did not fit; every record is produced once, in order.
    Returns the number of records produced.
    """
    cdef list ks = _as_list(keys)
    cdef list vs = _as_list(values)
    cdef Py_ssize_t n = PyList_GET_SIZE(ks)
    if PyList_GET_SIZE(vs) != n:
        raise ValueError(f"produce_batch: {n} keys and {PyList_GET_SIZE(vs)} values")
    cdef list ps = None, ts = None, hs = None
    cdef object one_partition = None
    if type(partitions) is int:
        one_partition = partitions
    else:
        ps = _as_list(partitions)
        if PyList_GET_SIZE(ps) != n:
            raise ValueError(f"produce_batch: {n} keys and {PyList_GET_SIZE(ps)} partitions")
    if timestamps is not None:
        ts = _as_list(timestamps)
        if PyList_GET_SIZE(ts) != n:
            raise ValueError(f"produce_batch: {n} keys and {PyList_GET_SIZE(ts)} timestamps")
    if headers is not None:
        hs = _as_list(headers)
        if PyList_GET_SIZE(hs) != n:
            raise ValueError(f"produce_batch: {n} keys and {PyList_GET_SIZE(hs)} headers")
    cdef object produce = producer.produce
    cdef object zero = 0
    cdef object partition, timestamp, header, callback
    cdef Py_ssize_t i = 0
    while i < n:
        partition = one_partition if ps is None else <object>PyList_GET_ITEM(ps, i)
        timestamp = zero if ts is None else <object>PyList_GET_ITEM(ts, i)
        if timestamp is None:
            timestamp = zero
        header = None if hs is None else <object>PyList_GET_ITEM(hs, i)
        callback = last_on_delivery if i == n - 1 else None
        try:
            produce(topic, <object>PyList_GET_ITEM(vs, i), <object>PyList_GET_ITEM(ks, i),
                    partition, callback, None, timestamp, header)
        except BufferError:
            # The local queue is full: serve delivery reports until there is room, then go
            # on from this record.
            producer.poll(poll_timeout)
            continue
        except Exception as e:
            # Which record the client refused (cstreams.record_errors.send_failed).
            e.produced = i
            raise
        i += 1
    return n
