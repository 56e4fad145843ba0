"""The native data path (issue 18): cstreams' consumer loop compiled onto librdkafka's C API.

How librdkafka is reached: nothing is linked and no header is needed at build time
(rdkafka_api.h declares what is used, from librdkafka's public API). ``load()`` takes the
path of confluent-kafka's extension module (confluent_kafka.cimpl), which is already loaded,
opens it again with RTLD_NOLOAD (no second copy of anything is mapped) and resolves every
function through that handle with dlsym, which searches the extension and then the libraries
it depends on: the librdkafka confluent-kafka's wheel ships (or the system one a source build
of confluent-kafka linked). One librdkafka per process, the one confluent-kafka uses.

NativeConsumerQueue takes the rd_kafka_t of a confluent-kafka Consumer (which keeps group
membership, rebalance callbacks, commits, pause/resume, seek and positions), routes the
fetch queues of the assigned partitions into a queue of its own (rd_kafka_queue_forward, set
before assign(): librdkafka then leaves the forwarding alone) and takes batches from it with
rd_kafka_consume_batch_queue(), building one RecordBatch per (topic, partition) in C: no
Message object and no Python call per record.
"""

cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLongLong
from cpython.ref cimport Py_INCREF, PyObject
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc, realloc

# rd_kafka_queue_get_partition creating the partition on a miss, application forwarding
# kept by assign() (RD_KAFKA_Q_F_FWD_APP) and rd_kafka_message_errstr: checked in
# librdkafka 2.x's source; older versions are not used.
MIN_VERSION = 0x020000FF

cdef bint _loaded = False
_unavailable = "not loaded"
_consumer_type = None


class NativeUnavailable(Exception):
    """The native data path cannot be used here; the message says why."""


# confluent-kafka's Handle (src/confluent_kafka/src/confluent_kafka.h, every 2.x release):
# PyObject_HEAD, then the rd_kafka_t pointer (cstreams_confluent_rk in rdkafka_api.h). Read
# only after isinstance() against its Consumer type, and trusted only when librdkafka
# confirms it: rd_kafka_opaque(rk) is the Handle itself (common_conf_setup sets it) and the
# handle is a consumer.


def load(str cimpl_path, int expected_version, consumer_type):
    """Resolve librdkafka through confluent-kafka's extension at ``cimpl_path``. Returns None
    when the native path is usable, else the reason it is not. ``expected_version`` is
    confluent_kafka.libversion()[1]: the library found must be that one."""
    global _loaded, _unavailable, _consumer_type
    if _loaded:
        return None
    cdef bytes path = cimpl_path.encode()
    cdef void *handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD)
    cdef const char *missing
    if handle == NULL:
        err = dlerror()
        _unavailable = (f"confluent-kafka's extension {cimpl_path} is not loaded in this "
                        f"process ({'' if err == NULL else err.decode(errors='replace')})")
        return _unavailable
    missing = cstreams_rdkafka_load(handle)
    # The handle is kept open: the extension stays loaded for the life of the process anyway.
    if missing != NULL:
        _unavailable = f"librdkafka symbol {missing.decode()} not found through {cimpl_path}"
        return _unavailable
    version = rd_kafka_version()
    if version != expected_version:
        _unavailable = (f"librdkafka found through confluent-kafka is {version:#x}, "
                        f"confluent-kafka reports {expected_version:#x}")
        return _unavailable
    if version < MIN_VERSION:
        _unavailable = (f"librdkafka {rd_kafka_version_str().decode()} is older than 2.0.0, "
                        "the oldest the native data path was checked against")
        return _unavailable
    _consumer_type = consumer_type
    _loaded = True
    _unavailable = None
    return None


def unavailable():
    """Why the native path is not usable (None once load() succeeded)."""
    return _unavailable


def version():
    """(version string, version int, library path) of the librdkafka in use."""
    if not _loaded:
        raise NativeUnavailable(_unavailable)
    path = cstreams_rdkafka_path()
    return (rd_kafka_version_str().decode(), rd_kafka_version(),
            None if path == NULL else path.decode())


def err_name(int code):
    if not _loaded:
        raise NativeUnavailable(_unavailable)
    return rd_kafka_err2str(<rd_kafka_resp_err_t>code).decode(errors="replace")


PARTITION_EOF = RD_KAFKA_RESP_ERR__PARTITION_EOF


# __dealloc__ destroys the queue before the reference to the consumer goes: the GC must not
# clear that reference first (librdkafka's destroy, in the consumer's dealloc, would wait for
# the queue).
@cython.final
@cython.no_gc_clear
cdef class NativeConsumerQueue:
    """The record path of a confluent-kafka Consumer, taken in C.

    ``route(partitions)`` (in the rebalance callback, before assign) sends the fetched
    records of those (topic, partition)s to this queue; ``consume_batches()`` returns
    ``(batches, errors)``: one ``batch_type`` (cstreams' RecordBatch) per partition in the
    order the partitions first appear, offset order kept, and the error events of the poll
    as (topic, partition, offset, code, reason) tuples, partition EOF included. ``close()``
    must run before the consumer's close(): librdkafka waits for the queue's references."""

    def __cinit__(self, consumer, batch_type, size_t max_records=10000):
        if not _loaded:
            raise NativeUnavailable(_unavailable)
        if not isinstance(consumer, _consumer_type):
            raise NativeUnavailable(f"{type(consumer).__name__} is not a confluent-kafka "
                                    "Consumer")
        cdef rd_kafka_t *rk = cstreams_confluent_rk(<PyObject *>consumer)
        if rk == NULL:
            raise NativeUnavailable("the consumer is closed")
        if rd_kafka_opaque(rk) != <void *>consumer:
            raise NativeUnavailable("the consumer's rd_kafka_t does not point back to it "
                                    "(an unknown confluent-kafka layout)")
        if rd_kafka_type(rk) != RD_KAFKA_CONSUMER:
            raise NativeUnavailable("the consumer's rd_kafka_t is not a consumer")
        self.rk = rk
        self.consumer = consumer
        self.batch_type = batch_type
        self.routed = []
        self.capacity = max_records if max_records > 0 else 1
        self.msgs = <rd_kafka_message_t **>malloc(self.capacity * sizeof(rd_kafka_message_t *))
        self.group_of = <int *>malloc(self.capacity * sizeof(int))
        self.groups_cap = 16
        self.groups = <_Group *>malloc(self.groups_cap * sizeof(_Group))
        if self.msgs == NULL or self.group_of == NULL or self.groups == NULL:
            raise MemoryError()
        self.queue = rd_kafka_queue_new(rk)
        if self.queue == NULL:
            raise NativeUnavailable("rd_kafka_queue_new failed")

    def __dealloc__(self):
        self.close()
        free(self.msgs)
        free(self.group_of)
        free(self.groups)

    @property
    def closed(self):
        return self.queue == NULL

    def close(self):
        """Drop the queue (records still in it are discarded: nothing was handed out)."""
        if self.queue != NULL:
            rd_kafka_queue_destroy(self.queue)
            self.queue = NULL
        self.rk = NULL

    def route(self, partitions):
        """Forward the fetch queue of each (topic, partition) to this queue, and keep doing
        so on every poll until ``forget()``. Call it before assign(): librdkafka then does not
        forward a fetch queue the application forwarded to the consumer queue. Every poll
        forwards again, because librdkafka clears a partition's forwarding when it stops
        fetching it (rd_kafka_toppar_fetch_stop: a seek-less assign() of a partition that was
        assigned, an unassign() before it completed) and then, the queue being marked as
        forwarded by the application, forwards it nowhere: its records would wait forever."""
        cdef bytes tb
        for topic, partition in partitions:
            tb = topic.encode()
            if (tb, partition) not in self.routed:
                self.routed.append((tb, partition))
        self._forward_all()

    def forget(self, partitions):
        """The (topic, partition)s revoked or lost: no longer forwarded on every poll."""
        gone = {(t.encode(), p) for t, p in partitions}
        self.routed = [tp for tp in self.routed if tp not in gone]

    cdef int _forward_all(self) except -1:
        cdef rd_kafka_queue_t *pq
        cdef bytes tb
        if self.queue == NULL:
            return 0
        for tb, partition in self.routed:
            pq = rd_kafka_queue_get_partition(self.rk, tb, <int32_t>partition)
            if pq == NULL:
                raise NativeUnavailable(f"no partition queue for {tb.decode()}-{partition}")
            rd_kafka_queue_forward(pq, self.queue)
            rd_kafka_queue_destroy(pq)
        return 0

    def __len__(self):
        return 0 if self.queue == NULL else rd_kafka_queue_length(self.queue)

    def consume_batches(self, size_t max_records=0, double timeout=0.0):
        """Wait up to ``timeout`` seconds for the first message, take up to ``max_records``
        (GIL released), and return (batches, errors)."""
        cdef ssize_t n, i
        cdef int timeout_ms = <int>(timeout * 1000)
        if self.queue == NULL:
            return [], []
        if max_records == 0 or max_records > self.capacity:
            max_records = self.capacity
        if self.routed:
            self._forward_all()
        with nogil:
            n = rd_kafka_consume_batch_queue(self.queue, timeout_ms, self.msgs, max_records)
        if n < 0:
            raise NativeUnavailable("rd_kafka_consume_batch_queue failed")
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

    cdef tuple _columns(self, ssize_t n):
        cdef ssize_t i
        cdef int g = -1, last = -1
        cdef rd_kafka_message_t *m
        cdef _Group *grp
        cdef rd_kafka_timestamp_type_t tstype
        cdef rd_kafka_headers_t *hdrs
        cdef list owner = []
        cdef list out = []
        cdef list errors = []
        cdef list headers_of = []
        cdef list cols
        cdef object o
        self.ngroups = 0
        # Pass 1: the partition of every record; error events (partition EOF among them).
        for i in range(n):
            m = self.msgs[i]
            if m.err != RD_KAFKA_RESP_ERR_NO_ERROR:
                self.group_of[i] = -1
                errors.append((_topic(m), m.partition, m.offset, <int>m.err,
                               rd_kafka_message_errstr(m).decode(errors="replace")))
                continue
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
            grp.keys = <void *>cols[0]
            grp.values = <void *>cols[1]
            grp.timestamps = <void *>cols[2]
            grp.offsets = <void *>cols[3]
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
        self.consumed += n - len(errors)
        for g in range(self.ngroups):
            grp = &self.groups[g]
            cols = owner[g]
            out.append(self.batch_type(
                rd_kafka_topic_name(grp.rkt).decode(errors="replace"), grp.partition,
                cols[0], cols[1], cols[2], cols[3], headers_of[g]))
        return out, errors


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
