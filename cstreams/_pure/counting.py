"""count_batch: the counting kernel of count() aggregations (pure twin of the compiled
cstreams._core.counting)."""

from __future__ import annotations


def count_batch(store, keys, key_bytes=None):
    """Count ``keys`` into ``store`` (int values); return the running count per record, in
    order. One get_batch of the distinct keys, one put_batch of their final counts.
    ``key_bytes``: the keys already serialized with the store's key serde (no None), if the
    caller has them (ProcessorContext.serialized_keys)."""
    kbs = store.keys_bytes(keys) if key_bytes is None else key_bytes
    distinct = list(dict.fromkeys(kbs))
    running = {}
    for kb, c in zip(distinct, store.get_batch_by_bytes(distinct)):
        running[kb] = 0 if c is None else c
    out = []
    append = out.append
    for kb in kbs:
        c = running[kb] + 1
        running[kb] = c
        append(c)
    store.put_batch_by_bytes(distinct, [running[kb] for kb in distinct])
    return out
