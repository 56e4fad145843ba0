"""Serdes: BYTES, STRING, INT32, INT64 (big-endian, as Kafka's), FLOAT64, JSON, custom."""

from __future__ import annotations

from cstreams._impl import serde as _serde

Serde = _serde.Serde
BYTES = _serde.BYTES
STRING = _serde.STRING
INT32 = _serde.INT32
INT64 = _serde.INT64
FLOAT64 = _serde.FLOAT64
JSON = _serde.JSON


def custom(serialize=None, deserialize=None, name="custom"):
    """A serde from two callables (object -> bytes, bytes -> object)."""
    return _serde.CallableSerde(serialize, deserialize, name)


_BY_NAME = {"bytes": BYTES, "string": STRING, "str": STRING, "int32": INT32, "int64": INT64,
            "float64": FLOAT64, "json": JSON}


def resolve(serde, where):
    """Accept a Serde, a built-in's name, or a (serialize, deserialize) pair."""
    from cstreams.errors import TopologyError

    if serde is None:
        return BYTES
    if isinstance(serde, Serde):
        return serde
    if isinstance(serde, str):
        try:
            return _BY_NAME[serde.lower()]
        except KeyError:
            raise TopologyError(
                f"{where}: unknown serde name {serde!r}; known: {sorted(_BY_NAME)}"
            ) from None
    if isinstance(serde, tuple) and len(serde) == 2:
        return custom(serde[0], serde[1])
    raise TopologyError(
        f"{where}: a serde must be a cstreams.serde.Serde, a name or a (serialize, deserialize) "
        f"pair, not {type(serde).__name__}"
    )


__all__ = ["Serde", "BYTES", "STRING", "INT32", "INT64", "FLOAT64", "JSON", "custom"]
