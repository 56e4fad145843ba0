"""Issue-18 spike: cstreams' consume and produce data path compiled straight onto librdkafka.

NativeConsumer.consume_batches() takes up to N messages from librdkafka's consumer queue with
one rd_kafka_consume_batch_queue() call and builds cstreams' per-partition batch columns
(keys and values as bytes, timestamps, offsets, headers when a record carries any) in C: no
Python call per record, one RecordBatch constructor call per partition of the poll. Offset
order within a partition is the queue's order, kept.

NativeProducer.produce_columns() loops over a sink's serialized columns in C, one
rd_kafka_produceva() per record with an explicit partition (and timestamp and headers when
given), a full local queue served by rd_kafka_poll(); delivery reports are counted in C (with
delivery.report.only.error=true only failures reach the callback) and surfaced by check().

Linked against the librdkafka that confluent-kafka's wheel ships (setup.py beside this file):
one librdkafka per process. A spike, not the library: bench/ only (issue 18).
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_AsLongLong, PyLong_FromLongLong
from cpython.ref cimport Py_INCREF, PyObject
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc, realloc

from rdkafka_api cimport *

# rd_kafka_produceva() appeared in librdkafka 1.6.0.
MIN_VERSION = 0x010600FF
if rd_kafka_version() < MIN_VERSION:
    raise ImportError(
        f"librdkafka {rd_kafka_version_str().decode()} is too old for the native data path "
        f"(needs 1.6.0 or later)")


class NativeKafkaError(Exception):
    """A librdkafka error on the native path, with the coordinates it concerns."""


def version():
    """(version string, version int) of the librdkafka this module is linked against."""
    return rd_kafka_version_str().decode(), rd_kafka_version()


def err_name(int code):
    return rd_kafka_err2str(<rd_kafka_resp_err_t>code).decode(errors="replace")


cdef rd_kafka_conf_t *_make_conf(dict config) except NULL:
    cdef char errstr[512]
    cdef rd_kafka_conf_t *conf = rd_kafka_conf_new()
    cdef bytes kb, vb
    for k, v in config.items():
        if v is True or v is False:
            v = "true" if v else "false"
        kb = str(k).encode()
        vb = str(v).encode()
        errstr[0] = 0
        if rd_kafka_conf_set(conf, kb, vb, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK:
            rd_kafka_conf_destroy(conf)
            raise NativeKafkaError(f"setting {k}={v!r}: {errstr.decode(errors='replace')}")
    return conf


cdef struct _Group:
    # One (topic, partition) of a poll; the columns are borrowed from a list that owns them.
    rd_kafka_topic_t *rkt
    int32_t partition
    Py_ssize_t count
    Py_ssize_t fill
    PyObject *keys
    PyObject *values
    PyObject *timestamps
    PyObject *offsets


cdef class NativeConsumer:
    """A subscribed group consumer whose polls come back as per-partition RecordBatches.

    ``batch_type`` is the RecordBatch class to build (cstreams.RecordBatch: the compiled one
    or its pure twin, as the selector chose). Partition EOF events (enable.partition.eof)
    are collected in ``eof`` as (topic, partition, offset)."""

    cdef rd_kafka_t *rk
    cdef rd_kafka_queue_t *queue
    cdef rd_kafka_message_t **msgs
    cdef int *group_of
    cdef size_t capacity
    cdef _Group *groups
    cdef Py_ssize_t groups_cap
    cdef object batch_type
    cdef Py_ssize_t ngroups
    cdef readonly list eof
    cdef readonly long long consumed

    def __cinit__(self, dict config, topics, batch_type, size_t max_records=10000):
        cdef char errstr[512]
        cdef rd_kafka_conf_t *conf = _make_conf(config)
        cdef rd_kafka_topic_partition_list_t *tl
        cdef rd_kafka_resp_err_t err
        cdef bytes tb
        self.batch_type = batch_type
        self.eof = []
        self.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr))
        if self.rk == NULL:
            rd_kafka_conf_destroy(conf)
            raise NativeKafkaError(f"consumer: {errstr.decode(errors='replace')}")
        rd_kafka_poll_set_consumer(self.rk)
        self.queue = rd_kafka_queue_get_consumer(self.rk)
        self.capacity = max_records
        self.msgs = <rd_kafka_message_t **>malloc(max_records * sizeof(rd_kafka_message_t *))
        self.group_of = <int *>malloc(max_records * sizeof(int))
        self.groups_cap = 16
        self.groups = <_Group *>malloc(self.groups_cap * sizeof(_Group))
        if self.msgs == NULL or self.group_of == NULL or self.groups == NULL:
            raise MemoryError()
        topics = list(topics)
        tl = rd_kafka_topic_partition_list_new(len(topics))
        for t in topics:
            tb = t.encode()
            rd_kafka_topic_partition_list_add(tl, tb, RD_KAFKA_PARTITION_UA)
        err = rd_kafka_subscribe(self.rk, tl)
        rd_kafka_topic_partition_list_destroy(tl)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR:
            raise NativeKafkaError(f"subscribe {topics}: {err_name(err)}")

    def __dealloc__(self):
        self._destroy(False)

    cdef _destroy(self, bint close):
        if self.queue != NULL:
            rd_kafka_queue_destroy(self.queue)
            self.queue = NULL
        if self.rk != NULL:
            if close:
                with nogil:
                    rd_kafka_consumer_close(self.rk)
            rd_kafka_destroy(self.rk)
            self.rk = NULL
        free(self.msgs)
        free(self.group_of)
        free(self.groups)
        self.msgs = NULL
        self.group_of = NULL
        self.groups = NULL

    def close(self):
        """Leave the group and destroy the handle."""
        self._destroy(True)

    def consume_batches(self, size_t max_records=0, double timeout=1.0):
        """One poll of up to ``max_records`` messages, as a list of RecordBatches, one per
        (topic, partition) in the order the partitions first appear, offset order kept."""
        cdef ssize_t n, i
        cdef int timeout_ms = <int>(timeout * 1000)
        if self.rk == NULL:
            raise NativeKafkaError("consumer is closed")
        if max_records == 0 or max_records > self.capacity:
            max_records = self.capacity
        with nogil:
            n = rd_kafka_consume_batch_queue(self.queue, timeout_ms, self.msgs, max_records)
        if n < 0:
            raise NativeKafkaError("rd_kafka_consume_batch_queue failed")
        try:
            return self._columns(n)
        finally:
            for i in range(n):
                rd_kafka_message_destroy(self.msgs[i])

    cdef int _group_index(self, rd_kafka_message_t *m, int last) except -2:
        cdef int g
        cdef _Group *grown
        if last >= 0 and self.groups[last].rkt == m.rkt \
                and self.groups[last].partition == m.partition:
            return last
        for g in range(self.ngroups):
            if self.groups[g].rkt == m.rkt and self.groups[g].partition == m.partition:
                return g
        if self.ngroups == self.groups_cap:
            grown = <_Group *>realloc(self.groups, 2 * self.groups_cap * sizeof(_Group))
            if grown == NULL:
                raise MemoryError()
            self.groups = grown
            self.groups_cap *= 2
        g = self.ngroups
        self.ngroups += 1
        self.groups[g].rkt = m.rkt
        self.groups[g].partition = m.partition
        self.groups[g].count = 0
        self.groups[g].fill = 0
        return g

    cdef list _columns(self, ssize_t n):
        cdef ssize_t i
        cdef int g = -1, last = -1
        cdef rd_kafka_message_t *m
        cdef _Group *grp
        cdef rd_kafka_timestamp_type_t tstype
        cdef rd_kafka_headers_t *hdrs
        cdef list owner = []
        cdef list out = []
        cdef list headers_of = []
        cdef list cols
        cdef object o
        self.ngroups = 0
        # Pass 1: the partition of every message, errors and partition EOF.
        for i in range(n):
            m = self.msgs[i]
            if m.err != RD_KAFKA_RESP_ERR_NO_ERROR:
                self.group_of[i] = -1
                if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF:
                    self.eof.append((_topic(m), m.partition, m.offset))
                    continue
                raise NativeKafkaError(
                    f"consume: topic {_topic(m)!r} partition {m.partition} offset {m.offset}: "
                    f"{err_name(m.err)}")
            g = self._group_index(m, last)
            last = g
            self.group_of[i] = g
            self.groups[g].count += 1
        # Columns of exactly the right size, owned by ``owner``, borrowed by the groups.
        for g in range(self.ngroups):
            grp = &self.groups[g]
            cols = [PyList_New(grp.count), PyList_New(grp.count), PyList_New(grp.count),
                    PyList_New(grp.count)]
            owner.append(cols)
            headers_of.append(None)
            grp.keys = <PyObject *>cols[0]
            grp.values = <PyObject *>cols[1]
            grp.timestamps = <PyObject *>cols[2]
            grp.offsets = <PyObject *>cols[3]
        # Pass 2: fill the columns in queue order (offset order within a partition).
        for i in range(n):
            g = self.group_of[i]
            if g < 0:
                continue
            m = self.msgs[i]
            grp = &self.groups[g]
            if m.key == NULL:
                o = None
            else:
                o = PyBytes_FromStringAndSize(<char *>m.key, m.key_len)
            Py_INCREF(o)
            PyList_SET_ITEM(<object>grp.keys, grp.fill, o)
            if m.payload == NULL:
                o = None
            else:
                o = PyBytes_FromStringAndSize(<char *>m.payload, m.len)
            Py_INCREF(o)
            PyList_SET_ITEM(<object>grp.values, grp.fill, o)
            o = PyLong_FromLongLong(rd_kafka_message_timestamp(m, &tstype))
            Py_INCREF(o)
            PyList_SET_ITEM(<object>grp.timestamps, grp.fill, o)
            o = PyLong_FromLongLong(m.offset)
            Py_INCREF(o)
            PyList_SET_ITEM(<object>grp.offsets, grp.fill, o)
            if rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR:
                if headers_of[g] is None:
                    headers_of[g] = [None] * grp.count
                headers_of[g][grp.fill] = _headers(hdrs)
            grp.fill += 1
        self.consumed += n
        for g in range(self.ngroups):
            grp = &self.groups[g]
            cols = owner[g]
            out.append(self.batch_type(
                rd_kafka_topic_name(grp.rkt).decode(), grp.partition,
                cols[0], cols[1], cols[2], cols[3], headers_of[g]))
        return out


cdef str _topic(rd_kafka_message_t *m):
    if m.rkt == NULL:
        return None
    return rd_kafka_topic_name(m.rkt).decode(errors="replace")


cdef list _headers(rd_kafka_headers_t *hdrs):
    cdef size_t idx = 0
    cdef const char *name
    cdef const void *val
    cdef size_t size
    cdef list out = []
    while rd_kafka_header_get_all(hdrs, idx, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR:
        out.append((name.decode(errors="replace"),
                    None if val == NULL else PyBytes_FromStringAndSize(<char *>val, size)))
        idx += 1
    return out


cdef struct _Deliveries:
    long long acknowledged
    long long failed
    int first_error
    int32_t first_partition
    int64_t first_offset


cdef void _on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                       void *opaque) noexcept nogil:
    # Runs inside rd_kafka_poll()/rd_kafka_flush() on the caller's thread; counts only.
    cdef _Deliveries *d = <_Deliveries *>opaque
    if m.err == RD_KAFKA_RESP_ERR_NO_ERROR:
        d.acknowledged += 1
    else:
        if d.failed == 0:
            d.first_error = m.err
            d.first_partition = m.partition
            d.first_offset = m.offset
        d.failed += 1


# __dealloc__ destroys the topic handles listed in self.topics: the GC must not clear it first.
@cython.no_gc_clear
cdef class NativeProducer:
    """A producer whose produce loop over serialized columns runs in C."""

    cdef rd_kafka_t *rk
    cdef _Deliveries deliveries
    cdef dict topics      # name -> address of its rd_kafka_topic_t
    cdef readonly long long produced
    cdef readonly long long queue_full_waits

    def __cinit__(self, dict config):
        cdef char errstr[512]
        cdef rd_kafka_conf_t *conf = _make_conf(config)
        self.topics = {}
        rd_kafka_conf_set_dr_msg_cb(conf, _on_delivery)
        rd_kafka_conf_set_opaque(conf, &self.deliveries)
        self.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))
        if self.rk == NULL:
            rd_kafka_conf_destroy(conf)
            raise NativeKafkaError(f"producer: {errstr.decode(errors='replace')}")

    def __dealloc__(self):
        if self.rk != NULL:
            for addr in self.topics.values():
                rd_kafka_topic_destroy(<rd_kafka_topic_t *><size_t>addr)
            rd_kafka_destroy(self.rk)
            self.rk = NULL

    @property
    def acknowledged(self):
        """Successful delivery reports counted in C (0 under delivery.report.only.error)."""
        return self.deliveries.acknowledged

    @property
    def failed(self):
        return self.deliveries.failed

    cdef rd_kafka_topic_t *_rkt(self, str topic) except NULL:
        addr = self.topics.get(topic)
        if addr is not None:
            return <rd_kafka_topic_t *><size_t>addr
        cdef bytes tb = topic.encode()
        cdef rd_kafka_topic_t *rkt = rd_kafka_topic_new(self.rk, tb, NULL)
        if rkt == NULL:
            raise NativeKafkaError(f"topic {topic!r}: rd_kafka_topic_new failed")
        self.topics[topic] = <size_t>rkt
        return rkt

    def produce_columns(self, str topic, list keys, list values, partitions,
                        list timestamps=None, list headers=None):
        """Produce ``values[i]`` with ``keys[i]`` (bytes or None) to ``partitions[i]`` (an int
        list, or one int for all), timestamp ``timestamps[i]`` (None or 0: the producer's
        clock) and ``headers[i]`` (None or a list of (name, bytes) pairs). Returns the number
        of records handed to librdkafka; raises NativeKafkaError naming topic, partition and
        record index on a produce error."""
        cdef Py_ssize_t n = PyList_GET_SIZE(keys), i, h, nh, cnt
        cdef list ps = None
        cdef int32_t one_partition = 0, partition
        cdef rd_kafka_vu_t vus[8]
        cdef rd_kafka_vu_t *vp
        cdef rd_kafka_vu_t *hvus = NULL
        cdef rd_kafka_error_t *error
        cdef rd_kafka_resp_err_t code
        cdef rd_kafka_topic_t *rkt = self._rkt(topic)
        cdef object k, v, t, hl
        cdef int64_t ts
        if PyList_GET_SIZE(values) != n:
            raise ValueError(f"produce_columns: {n} keys and {len(values)} values")
        if type(partitions) is int:
            one_partition = partitions
        else:
            ps = partitions if type(partitions) is list else list(partitions)
            if PyList_GET_SIZE(ps) != n:
                raise ValueError(f"produce_columns: {n} keys and {len(ps)} partitions")
        if timestamps is not None and PyList_GET_SIZE(timestamps) != n:
            raise ValueError(f"produce_columns: {n} keys and {len(timestamps)} timestamps")
        if headers is not None and PyList_GET_SIZE(headers) != n:
            raise ValueError(f"produce_columns: {n} keys and {len(headers)} headers")
        vus[0].vtype = RD_KAFKA_VTYPE_RKT
        vus[0].u.rkt = rkt
        vus[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS
        vus[1].u.i = RD_KAFKA_MSG_F_COPY
        vus[2].vtype = RD_KAFKA_VTYPE_PARTITION
        vus[3].vtype = RD_KAFKA_VTYPE_VALUE
        vus[4].vtype = RD_KAFKA_VTYPE_KEY
        i = 0
        try:
            while i < n:
                partition = one_partition if ps is None else <int32_t>PyLong_AsLongLong(
                    <object>PyList_GET_ITEM(ps, i))
                k = <object>PyList_GET_ITEM(keys, i)
                v = <object>PyList_GET_ITEM(values, i)
                vus[2].u.i32 = partition
                if v is None:
                    vus[3].u.mem.ptr = NULL
                    vus[3].u.mem.size = 0
                elif PyBytes_Check(v):
                    vus[3].u.mem.ptr = PyBytes_AS_STRING(v)
                    vus[3].u.mem.size = PyBytes_GET_SIZE(v)
                else:
                    raise TypeError(f"produce_columns: topic {topic!r} record {i}: value is "
                                    f"{type(v).__name__}, not bytes")
                if k is None:
                    vus[4].u.mem.ptr = NULL
                    vus[4].u.mem.size = 0
                elif PyBytes_Check(k):
                    vus[4].u.mem.ptr = PyBytes_AS_STRING(k)
                    vus[4].u.mem.size = PyBytes_GET_SIZE(k)
                else:
                    raise TypeError(f"produce_columns: topic {topic!r} record {i}: key is "
                                    f"{type(k).__name__}, not bytes")
                cnt = 5
                if timestamps is not None:
                    t = <object>PyList_GET_ITEM(timestamps, i)
                    if t is not None:
                        ts = PyLong_AsLongLong(t)
                        if ts:
                            vus[cnt].vtype = RD_KAFKA_VTYPE_TIMESTAMP
                            vus[cnt].u.i64 = ts
                            cnt += 1
                vp = vus
                hl = None if headers is None else <object>PyList_GET_ITEM(headers, i)
                if hl:
                    nh = len(hl)
                    free(hvus)
                    hvus = <rd_kafka_vu_t *>malloc((cnt + nh) * sizeof(rd_kafka_vu_t))
                    if hvus == NULL:
                        raise MemoryError()
                    for h in range(cnt):
                        hvus[h] = vus[h]
                    names = [name.encode() if isinstance(name, str) else name
                             for name, _ in hl]
                    for h in range(nh):
                        hv = hl[h][1]
                        hvus[cnt + h].vtype = RD_KAFKA_VTYPE_HEADER
                        hvus[cnt + h].u.header.name = PyBytes_AS_STRING(names[h])
                        if hv is None:
                            hvus[cnt + h].u.header.val = NULL
                            hvus[cnt + h].u.header.size = -1
                        else:
                            hvus[cnt + h].u.header.val = PyBytes_AS_STRING(hv)
                            hvus[cnt + h].u.header.size = PyBytes_GET_SIZE(hv)
                    vp = hvus
                    cnt += nh
                error = rd_kafka_produceva(self.rk, vp, cnt)
                if error != NULL:
                    code = rd_kafka_error_code(error)
                    if code == RD_KAFKA_RESP_ERR__QUEUE_FULL:
                        rd_kafka_error_destroy(error)
                        self.queue_full_waits += 1
                        with nogil:
                            rd_kafka_poll(self.rk, 50)
                        continue
                    msg = rd_kafka_error_string(error).decode(errors="replace")
                    rd_kafka_error_destroy(error)
                    raise NativeKafkaError(
                        f"produce: topic {topic!r} partition {partition} record {i}: {msg}")
                i += 1
        finally:
            free(hvus)
            self.produced += i
        rd_kafka_poll(self.rk, 0)
        return n

    def poll(self, double timeout=0.0):
        cdef int ms = <int>(timeout * 1000)
        with nogil:
            ms = rd_kafka_poll(self.rk, ms)
        return ms

    def flush(self, double timeout=60.0):
        """Wait until every record is acknowledged or failed; returns those still queued."""
        cdef int ms = <int>(timeout * 1000)
        with nogil:
            rd_kafka_flush(self.rk, ms)
        return rd_kafka_outq_len(self.rk)

    def check(self):
        """Raise if any delivery failed since the start (its partition and error named)."""
        cdef _Deliveries *d = &self.deliveries
        if d.failed:
            raise NativeKafkaError(
                f"{d.failed} record(s) failed delivery; first: partition {d.first_partition}: "
                f"{err_name(d.first_error)}")
