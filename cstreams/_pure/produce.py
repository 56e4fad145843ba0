"""The produce loop of the sink and changelog producers (pure-Python twin)."""

from __future__ import annotations


def produce_batch(producer, topic, values, keys, partitions, timestamps=None, headers=None,
                  last_on_delivery=None, poll_timeout=0.05):
    """Produce ``len(keys)`` records: ``values[i]``, ``keys[i]`` to ``partitions[i]`` (an int
    list, or one int for all), with ``timestamps[i]`` (None: 0, the producer's clock) and
    ``headers[i]`` (None: no headers). ``last_on_delivery``, if given, is the delivery
    callback of the last record only.

    A full local queue (BufferError) is served by ``producer.poll(poll_timeout)`` and the batch
    goes on from the record that did not fit; every record is produced once, in order.
    Returns the number of records produced.
    """
    keys = keys if type(keys) is list else list(keys)
    values = values if type(values) is list else list(values)
    n = len(keys)
    if len(values) != n:
        raise ValueError(f"produce_batch: {n} keys and {len(values)} values")
    one_partition = partitions if type(partitions) is int else None
    if one_partition is None:
        partitions = partitions if type(partitions) is list else list(partitions)
        if len(partitions) != n:
            raise ValueError(f"produce_batch: {n} keys and {len(partitions)} partitions")
    if timestamps is not None:
        timestamps = timestamps if type(timestamps) is list else list(timestamps)
        if len(timestamps) != n:
            raise ValueError(f"produce_batch: {n} keys and {len(timestamps)} timestamps")
    if headers is not None:
        headers = headers if type(headers) is list else list(headers)
        if len(headers) != n:
            raise ValueError(f"produce_batch: {n} keys and {len(headers)} headers")
    produce = producer.produce
    i = 0
    while i < n:
        partition = one_partition if one_partition is not None else partitions[i]
        timestamp = 0 if timestamps is None or timestamps[i] is None else timestamps[i]
        header = None if headers is None else headers[i]
        callback = last_on_delivery if i == n - 1 else None
        try:
            produce(topic, values[i], keys[i], partition, callback, None, timestamp, header)
        except BufferError:
            producer.poll(poll_timeout)
            continue
        except Exception as e:
            # Which record the client refused (cstreams.record_errors.send_failed).
            e.produced = i
            raise
        i += 1
    return n
