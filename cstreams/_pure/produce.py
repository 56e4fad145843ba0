"""The produce loop of the sink and changelog producers.

One call hands a whole batch to confluent-kafka's ``Producer.produce``: the bound method is
looked up once, each record's arguments go positionally (topic, value, key, partition,
on_delivery, callback, timestamp, headers: confluent-kafka's parameter order), so no keyword
dict is built per record. One source for both builds: run as is on the pure-Python path,
compiled by Cython (pure-Python mode, cstreams/_core/produce.pxd) so the loop runs in C.
"""

from __future__ import annotations


def produce_batch(producer, topic, *, keys, values, partitions, timestamps=None, headers=None,
                  last_on_delivery=None, poll_timeout=0.05):
    """Produce ``len(keys)`` records: ``values[i]``, ``keys[i]`` to ``partitions[i]`` (an int
    list, or one int for all), with ``timestamps[i]`` (None: 0, the producer's clock) and
    ``headers[i]`` (None: no headers). ``last_on_delivery``, if given, is the delivery
    callback of the last record only.

    A full local queue (BufferError) is served by ``producer.poll(poll_timeout)`` and the batch
    goes on from the record that did not fit; every record is produced once, in order.
    Returns the number of records produced. The columns go by keyword: confluent-kafka's
    ``produce`` takes the value before the key, the record collector's ``send_batch`` the key
    before the value; naming them leaves no order to get wrong.
    """
    return _produce_batch(producer, topic, keys, values, partitions, timestamps, headers,
                          last_on_delivery, poll_timeout)


def batch_columns(keys, values, partitions, timestamps, headers):
    """A batch's columns as lists of one length: (keys, values, partitions or None when
    ``partitions`` is one int for all, timestamps or None, headers or None). Raises
    ValueError naming the column whose length differs. The native producer
    (cstreams._core.native) checks its columns with this too."""
    ks = keys if type(keys) is list else list(keys)
    vs = values if type(values) is list else list(values)
    n = len(ks)
    if len(vs) != n:
        raise ValueError(f"produce_batch: {n} keys and {len(vs)} values")
    ps = None
    ts = None
    hs = None
    if type(partitions) is not int:
        ps = partitions if type(partitions) is list else list(partitions)
        if len(ps) != n:
            raise ValueError(f"produce_batch: {n} keys and {len(ps)} partitions")
    if timestamps is not None:
        ts = timestamps if type(timestamps) is list else list(timestamps)
        if len(ts) != n:
            raise ValueError(f"produce_batch: {n} keys and {len(ts)} timestamps")
    if headers is not None:
        hs = headers if type(headers) is list else list(headers)
        if len(hs) != n:
            raise ValueError(f"produce_batch: {n} keys and {len(hs)} headers")
    return ks, vs, ps, ts, hs


def _produce_batch(producer, topic, keys, values, partitions, timestamps, headers,
                   last_on_delivery, poll_timeout):
    ks, vs, ps, ts, hs = batch_columns(keys, values, partitions, timestamps, headers)
    n = len(ks)
    one_partition = partitions if ps is None else None
    produce = producer.produce
    i = 0
    while i < n:
        partition = one_partition if ps is None else ps[i]
        timestamp = 0 if ts is None else ts[i]
        if timestamp is None:
            timestamp = 0
        header = None if hs is None else hs[i]
        callback = last_on_delivery if i == n - 1 else None
        try:
            produce(topic, vs[i], ks[i], partition, callback, None, timestamp, header)
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
