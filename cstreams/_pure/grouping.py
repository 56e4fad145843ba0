"""Group consumed messages into one RecordBatch per (topic, partition)."""

from __future__ import annotations

from .record import RecordBatch


def group_messages(messages):
    """Split a consume() result into per-partition batches of raw bytes.

    Returns ``(batches, errors)``: ``batches`` holds one RecordBatch per (topic, partition) in
    first-seen order, each in the order the messages came (offset order, as the consumer
    delivers them); ``errors`` holds the messages whose ``error()`` was set, untouched.
    """
    index = {}
    batches = []
    errors = []
    for m in messages:
        if m.error() is not None:
            errors.append(m)
            continue
        tp = (m.topic(), m.partition())
        cols = index.get(tp)
        if cols is None:
            cols = ([], [], [], [], [], [False])
            index[tp] = cols
            batches.append((tp, cols))
        cols[0].append(m.key())
        cols[1].append(m.value())
        cols[2].append(m.timestamp()[1])
        cols[3].append(m.offset())
        h = m.headers()
        cols[4].append(h)
        if h is not None:
            cols[5][0] = True
    out = []
    for (topic, partition), (keys, values, ts, offs, headers, has_headers) in batches:
        hs = headers if has_headers[0] else None
        out.append(RecordBatch(topic, partition, keys, values, ts, offs, hs))
    return out, errors
