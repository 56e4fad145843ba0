"""Timestamp extractors: where a source's records get the timestamps that drive stream time,
windows and stream-time punctuations.

- None (the default): the record's Kafka timestamp (CreateTime or LogAppendTime).
- A callable ``fn(key, value, kafka_timestamp) -> int`` over the deserialized record, for
  event time carried in the payload (``field("ts")`` reads a JSON field).
- ``batch(fn)``: ``fn(keys, values, kafka_timestamps) -> list of int``, once per batch.

A missing (None) or negative timestamp goes to the error handler with the record's topic,
partition and offset: fail stops, skip and dead-letter drop the record. It never reaches a
window as time 0.

    topo.add_source("in", ["clicks"], key_serde=..., value_serde=cs.serde.JSON,
                    timestamp_extractor=cs.timestamps.field("ts"))
"""

from __future__ import annotations

from typing import Callable

from cstreams._impl import record as _record
from cstreams.errors import ProcessingError, TopologyError


class InvalidTimestampError(ProcessingError):
    """A record's extracted timestamp is missing or negative."""


class TimestampExtractor:
    """``fn`` per record (key, value, timestamp) or, with ``batch=True``, per batch (keys,
    values, timestamps)."""

    def __init__(self, fn: Callable, batch: bool = False):
        if not callable(fn):
            raise TopologyError(f"a timestamp extractor must be callable, got {fn!r}")
        self.fn = fn
        self.batch = bool(batch)

    def __repr__(self):
        return f"<TimestampExtractor {getattr(self.fn, '__name__', self.fn)!r}" \
               f"{' batch' if self.batch else ''}>"


def batch(fn: Callable) -> TimestampExtractor:
    return TimestampExtractor(fn, batch=True)


def field(name: str) -> TimestampExtractor:
    """The value's ``name`` field (a dict value, e.g. JSON), in milliseconds."""
    return TimestampExtractor(lambda k, v, ts: v.get(name) if isinstance(v, dict) else None)


def resolve(extractor):
    if extractor is None or isinstance(extractor, TimestampExtractor):
        return extractor
    if callable(extractor):
        return TimestampExtractor(extractor)
    raise TopologyError(f"timestamp_extractor must be a callable or a TimestampExtractor, "
                        f"got {extractor!r}")


def _decode_each(serde, datas):
    de = serde.deserialize
    out = []
    for d in datas:
        try:
            out.append(de(d))
        except Exception:  # noqa: BLE001 - the source node reports it when it decodes
            out.append(None)
    return out


def apply(extractor, raw, source, task):
    """``raw`` (a bytes batch of ``source``) with extracted timestamps; records whose
    timestamp is missing or negative go to ``task``'s error handler and, when it skips them,
    are dropped. Returns None when no record is left."""
    try:
        keys = source.key_serde.deserialize_batch(raw.keys)
    except Exception:  # noqa: BLE001
        keys = _decode_each(source.key_serde, raw.keys)
    try:
        values = source.value_serde.deserialize_batch(raw.values)
    except Exception:  # noqa: BLE001
        values = _decode_each(source.value_serde, raw.values)
    fn = extractor.fn
    try:
        if extractor.batch:
            tss = list(fn(keys, values, raw.timestamps))
            if len(tss) != len(keys):
                raise ValueError(f"returned {len(tss)} timestamps for {len(keys)} records")
        else:
            tss = [fn(k, v, t) for k, v, t in zip(keys, values, raw.timestamps)]
    except Exception as e:
        raise ProcessingError(
            f"timestamp extractor of source {source.name!r} failed on the batch at topic "
            f"{raw.topic!r} partition {raw.partition} offsets {raw.first_offset}.."
            f"{raw.last_offset}: {type(e).__name__}: {e}",
            topic=raw.topic, partition=raw.partition, offset=raw.first_offset,
            node=source.name) from e
    keep = []
    for i, ts in enumerate(tss):
        if isinstance(ts, int) and ts >= 0:
            keep.append(i)
            continue
        off = raw.offsets[i]
        err = InvalidTimestampError(
            f"source {source.name!r}: the record at topic {raw.topic!r} partition "
            f"{raw.partition} offset {off} has an invalid timestamp {ts!r} (missing or "
            f"negative)", topic=raw.topic, partition=raw.partition, offset=off,
            node=source.name)
        task.handle_error(err, raw.record(i))
    out = _record.RecordBatch(raw.topic, raw.partition, raw.keys, raw.values, tss, raw.offsets,
                    raw.headers)
    if len(keep) == len(tss):
        return out
    return out.select(keep) if keep else None


__all__ = ["InvalidTimestampError", "TimestampExtractor", "apply", "batch", "field", "resolve"]
