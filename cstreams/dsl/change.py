"""Table updates that carry the value they replace, and their repartition-topic serde."""

from __future__ import annotations

from cstreams import serde as _serde
from cstreams.errors import SerdeError


class Change:
    """A table update: ``new`` replaces ``old`` (either None: an insert or a delete).

    Tables forward Changes only where a downstream operator needs the old value (a table's
    group_by, which must retract it from the old group); elsewhere they forward plain values.
    """

    __slots__ = ("new", "old")

    def __init__(self, new, old):
        self.new = new
        self.old = old

    def __eq__(self, other):
        return isinstance(other, Change) and other.new == self.new and other.old == self.old

    def __hash__(self):
        return hash((self.new, self.old))

    def __repr__(self):
        return f"Change(new={self.new!r}, old={self.old!r})"


_ADD, _SUBTRACT = b"\x00", b"\x01"


class ChangeSerde(_serde.Serde):
    """A repartition record of a table's group_by: either an addition (``Change(v, None)``)
    or a retraction (``Change(None, v)``), one flag byte before the value's own bytes."""

    name = "change"

    def __init__(self, inner):
        self.inner = inner

    def serialize(self, change):
        if change is None:
            return None
        if change.old is None:
            return _ADD + self.inner.serialize(change.new)
        if change.new is None:
            return _SUBTRACT + self.inner.serialize(change.old)
        raise SerdeError("a repartitioned table update carries an addition or a retraction, "
                         "not both")

    def deserialize(self, data):
        if data is None:
            return None
        if not data:
            raise SerdeError("empty table update record (expected a flag byte)")
        value = self.inner.deserialize(bytes(data[1:]))
        if data[:1] == _ADD:
            return Change(value, None)
        if data[:1] == _SUBTRACT:
            return Change(None, value)
        raise SerdeError(f"unknown table update flag {data[0]!r}")
