"""Record and the columnar RecordBatch (compiled twin of cstreams._pure.record)."""

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE

from cstreams._core._capi cimport _as_list


cdef class Record:
    """One record: key, value, timestamp (ms), headers and its source coordinates."""

    def __init__(self, key, value, timestamp=0, headers=None, topic=None, partition=-1,
                 offset=-1):
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.headers = headers
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def __eq__(self, other):
        if not isinstance(other, Record):
            return NotImplemented
        cdef Record o = <Record>other
        return (
            self.key == o.key
            and self.value == o.value
            and self.timestamp == o.timestamp
            and self.headers == o.headers
            and self.topic == o.topic
            and self.partition == o.partition
            and self.offset == o.offset
        )

    def __ne__(self, other):
        r = self.__eq__(other)
        if r is NotImplemented:
            return r
        return not r

    __hash__ = None

    def __repr__(self):
        return (
            f"Record(key={self.key!r}, value={self.value!r}, timestamp={self.timestamp}, "
            f"topic={self.topic!r}, partition={self.partition}, offset={self.offset})"
        )

    def __reduce__(self):
        return (Record, (self.key, self.value, self.timestamp, self.headers, self.topic,
                         self.partition, self.offset))


cdef RecordBatch make_batch(object topic, object partition, list keys, list values,
                            list timestamps, list offsets, object headers):
    """A RecordBatch from columns already checked to be of equal length (no validation)."""
    cdef RecordBatch b = RecordBatch.__new__(RecordBatch)
    b.topic = topic
    b.partition = partition
    b.keys = keys
    b.values = values
    b.timestamps = timestamps
    b.offsets = offsets
    b.headers = headers
    return b


cdef class RecordBatch:
    """Records of one partition in offset order, stored as parallel lists.

    ``keys``, ``values``, ``timestamps`` and ``offsets`` are lists of equal length; ``headers``
    is None when no record carries headers, else a list with one entry (None or a list of
    (name, bytes) pairs) per record. Per-record objects are built only when asked for.
    """

    def __init__(self, topic, partition, keys, values, timestamps, offsets, headers=None):
        n = len(keys)
        if len(values) != n or len(timestamps) != n or len(offsets) != n:
            raise ValueError(
                f"RecordBatch columns differ in length: keys={n}, values={len(values)}, "
                f"timestamps={len(timestamps)}, offsets={len(offsets)}"
            )
        if headers is not None and len(headers) != n:
            raise ValueError(f"RecordBatch headers has {len(headers)} entries for {n} records")
        self.topic = topic
        self.partition = partition
        self.keys = _as_list(keys)
        self.values = _as_list(values)
        self.timestamps = _as_list(timestamps)
        self.offsets = _as_list(offsets)
        self.headers = headers

    def __len__(self):
        return len(self.keys)

    cpdef Record record(self, Py_ssize_t i):
        cdef Record r = Record.__new__(Record)
        headers = self.headers
        r.key = self.keys[i]
        r.value = self.values[i]
        r.timestamp = self.timestamps[i]
        r.headers = None if headers is None else headers[i]
        r.topic = self.topic
        r.partition = self.partition
        r.offset = self.offsets[i]
        return r

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.slice(i)
        cdef Py_ssize_t n = len(self.keys)
        cdef Py_ssize_t j = i
        if j < 0:
            j += n
        if j < 0 or j >= n:
            raise IndexError("RecordBatch index out of range")
        return self.record(j)

    def slice(self, s):
        headers = self.headers
        return RecordBatch(
            self.topic,
            self.partition,
            self.keys[s],
            self.values[s],
            self.timestamps[s],
            self.offsets[s],
            None if headers is None else headers[s],
        )

    def __iter__(self):
        cdef Py_ssize_t i
        for i in range(len(self.keys)):
            yield self.record(i)

    cpdef RecordBatch select(self, indexes):
        """A new batch holding the records at ``indexes`` (ascending), order kept."""
        cdef list keys = self.keys, values = self.values
        cdef list ts = self.timestamps, offs = self.offsets
        cdef list nk = [], nv = [], nt = [], no = []
        cdef list nh = None
        headers = self.headers
        if headers is not None:
            nh = []
        for i in indexes:
            nk.append(keys[i])
            nv.append(values[i])
            nt.append(ts[i])
            no.append(offs[i])
            if nh is not None:
                nh.append(headers[i])
        return make_batch(self.topic, self.partition, nk, nv, nt, no, nh)

    cpdef RecordBatch with_columns(self, keys, values):
        """The same records (timestamps, offsets, headers) with new keys and values."""
        return RecordBatch(
            self.topic, self.partition, keys, values, self.timestamps, self.offsets, self.headers
        )

    @property
    def first_offset(self):
        return self.offsets[0] if self.offsets else -1

    @property
    def last_offset(self):
        return self.offsets[-1] if self.offsets else -1

    @property
    def max_timestamp(self):
        return max(self.timestamps) if self.timestamps else -1

    def __repr__(self):
        return (
            f"RecordBatch(topic={self.topic!r}, partition={self.partition}, records={len(self)}, "
            f"offsets={self.first_offset}..{self.last_offset})"
        )

    def __reduce__(self):
        return (RecordBatch, (self.topic, self.partition, self.keys, self.values,
                              self.timestamps, self.offsets, self.headers))
