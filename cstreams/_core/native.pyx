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
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc, realloc

from cstreams._core.produce cimport batch_columns

# rd_kafka_queue_get_partition creating the partition on a miss, application forwarding
# kept by assign() (RD_KAFKA_Q_F_FWD_APP) and rd_kafka_message_errstr: checked in
# librdkafka 2.x's source; older versions are not used.
MIN_VERSION = 0x020000FF

cdef bint _loaded = False
_unavailable = "not loaded"
_consumer_type = None
_KafkaError = None
_KafkaException = None


class NativeUnavailable(Exception):
    """The native data path cannot be used here; the message says why."""


# confluent-kafka's Handle (src/confluent_kafka/src/confluent_kafka.h, every 2.x release):
# PyObject_HEAD, then the rd_kafka_t pointer (cstreams_confluent_rk in rdkafka_api.h). Read
# only after isinstance() against its Consumer type, and trusted only when librdkafka
# confirms it: rd_kafka_opaque(rk) is the Handle itself (common_conf_setup sets it) and the
# handle is a consumer.


def load(str cimpl_path, int expected_version, consumer_type, kafka_error_type,
         kafka_exception_type):
    """Resolve librdkafka through confluent-kafka's extension at ``cimpl_path``. Returns None
    when the native path is usable, else the reason it is not. ``expected_version`` is
    confluent_kafka.libversion()[1]: the library found must be that one. The native producer
    raises and reports errors as confluent-kafka's ``kafka_exception_type`` and
    ``kafka_error_type``, so that the runtime handles both paths' errors alike."""
    global _loaded, _unavailable, _consumer_type, _KafkaError, _KafkaException
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
    _KafkaError = kafka_error_type
    _KafkaException = kafka_exception_type
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


cdef void _wake(rd_kafka_t *rk, void *queue) noexcept nogil:
    rd_kafka_queue_yield(<rd_kafka_queue_t *>queue)


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
        # A rebalance callback, a client error or a commit result put on confluent-kafka's
        # consumer queue wakes consume_batches() at once (the loop then serves that queue)
        # instead of after its timeout. librdkafka calls _wake from its own thread, under
        # the consumer queue's lock, which close() takes to turn it off.
        self.consumer_queue = rd_kafka_queue_get_consumer(rk)
        if self.consumer_queue != NULL:
            rd_kafka_queue_cb_event_enable(self.consumer_queue, _wake, <void *>self.queue)

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
        if self.consumer_queue != NULL:
            rd_kafka_queue_cb_event_enable(self.consumer_queue, NULL, NULL)
            rd_kafka_queue_destroy(self.consumer_queue)
            self.consumer_queue = NULL
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
        (GIL released), and return (batches, errors). The wait ends early, with what is
        there, when an event reaches confluent-kafka's consumer queue (a rebalance callback
        to serve)."""
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
            o = _bytes_or_none(m.key, m.key_len)
            Py_INCREF(o)
            PyList_SET_ITEM(<object>grp.keys, grp.fill, o)
            o = _bytes_or_none(m.payload, m.len)
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


cdef inline object _bytes_or_none(const void *data, size_t size):
    return None if data == NULL else PyBytes_FromStringAndSize(<const char *>data, size)


cdef str _topic(const rd_kafka_message_t *m):
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
                    _bytes_or_none(val, size)))
        idx += 1
    return out


# --- the native producer -------------------------------------------------------------------
# A producer of cstreams' own on confluent-kafka's librdkafka: confluent-kafka's delivery
# callback drops the report of a message it did not produce itself, so records cannot be
# produced natively on its handle without losing their errors. This one has a delivery
# callback of its own, in C: a report goes to Python only when it is a failure, carries a
# per-record callback, or a default one was asked for (the at-least-once changelog producer
# needs every acknowledged offset); a successful report nobody asked for costs a comparison.
# It offers what the runtime uses of confluent_kafka.Producer, with the same signatures and
# the same errors (KafkaException carrying a KafkaError with its fatal / retriable /
# txn_requires_abort flags), so the collector, changelog and transaction code do not care
# which producer they hold. Python callbacks (the logger's, the delivery callbacks) run only
# inside poll(), flush() and the transactional calls, on the caller's thread; an exception one
# raises is re-raised by that call.

# syslog levels (librdkafka) -> logging levels, as confluent-kafka maps them.
cdef int _LOG_LEVELS[8]
_LOG_LEVELS[:] = [50, 50, 50, 40, 30, 20, 20, 10]

# Settings confluent-kafka's Producer takes as Python objects and what the native producer
# does with them; any other callable setting (error_cb, stats_cb, throttle_cb, oauth_cb, ...)
# keeps the runtime on confluent-kafka's Producer (NativeUnavailable).
_PYTHON_SETTINGS = frozenset(("logger", "on_delivery"))


cdef class DeliveryReport:
    """The record a delivery report is about: what confluent-kafka's Message offers a delivery
    callback (topic(), partition(), offset(), error())."""

    cdef str _topic
    cdef int32_t _partition
    cdef int64_t _offset
    cdef object _error

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def error(self):
        return self._error

    def __repr__(self):
        return (f"DeliveryReport({self._topic!r}, {self._partition}, {self._offset}, "
                f"{self._error!r})")


cdef object _exception(rd_kafka_error_t *error):
    """confluent-kafka's KafkaException for ``error``, which is destroyed."""
    kerr = _KafkaError(<int>rd_kafka_error_code(error),
                       rd_kafka_error_string(error).decode(errors="replace"),
                       fatal=bool(rd_kafka_error_is_fatal(error)),
                       retriable=bool(rd_kafka_error_is_retriable(error)),
                       txn_requires_abort=bool(rd_kafka_error_txn_requires_abort(error)))
    rd_kafka_error_destroy(error)
    return _KafkaException(kerr)


cdef object _invalid(str text):
    """confluent-kafka's KafkaException for a setting or argument librdkafka refused."""
    return _KafkaException(_KafkaError(<int>RD_KAFKA_RESP_ERR__INVALID_ARG, text))


cdef int _ms(object timeout) except? -2:
    """confluent-kafka's timeouts: seconds, None or negative for no limit."""
    if timeout is None or timeout < 0:
        return -1
    return <int>(timeout * 1000)


cdef void _dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                     void *opaque) noexcept nogil:
    cdef _ProducerState *state = <_ProducerState *>opaque
    if m.err == RD_KAFKA_RESP_ERR_NO_ERROR and m._private == NULL \
            and not state.default_callback:
        return
    with gil:
        if state.owner != NULL:
            (<NativeProducer>state.owner)._delivered(m)
        elif m._private != NULL:
            # A report served while the producer is destroyed: only the reference goes.
            Py_DECREF(<object>m._private)


cdef void _log_cb(const rd_kafka_t *rk, int level, const char *fac,
                  const char *buf) noexcept with gil:
    # Served from the main queue by poll() (log.queue), so on the polling thread.
    cdef _ProducerState *state = <_ProducerState *>rd_kafka_opaque(rk)
    if state.owner == NULL:
        return
    try:
        logger = (<NativeProducer>state.owner).logger
        if logger is not None:
            logger.log(_LOG_LEVELS[level if 0 <= level < 8 else 7], "%s [%s] %s",
                       fac.decode(errors="replace"), rd_kafka_name(rk).decode(errors="replace"),
                       buf.decode(errors="replace"))
    except BaseException:  # noqa: BLE001 - a failing logger must not break the data path
        pass


cdef rd_kafka_conf_t *_producer_conf(dict config, bint log_queue) except NULL:
    cdef char errstr[512]
    cdef rd_kafka_conf_t *conf = rd_kafka_conf_new()
    cdef bytes kb, vb
    items = list(config.items())
    if log_queue:
        items.append(("log.queue", "true"))
    for k, v in items:
        if k in _PYTHON_SETTINGS:
            continue
        if callable(v) or not isinstance(v, (str, bytes, int, float, bool)):
            rd_kafka_conf_destroy(conf)
            raise NativeUnavailable(f"producer setting {k!r} is a {type(v).__name__}: only "
                                    "confluent-kafka's Producer takes it")
        if v is True or v is False:
            v = "true" if v else "false"
        kb = str(k).encode()
        vb = v if isinstance(v, bytes) else str(v).encode()
        errstr[0] = 0
        if rd_kafka_conf_set(conf, kb, vb, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK:
            rd_kafka_conf_destroy(conf)
            raise _invalid(f"producer setting {k!r}: {errstr.decode(errors='replace')}")
    return conf


# __dealloc__ destroys the topic handles listed in self.topics: the GC must not clear it first.
@cython.final
@cython.no_gc_clear
cdef class NativeProducer:
    """A producer whose produce loop over serialized columns runs in C (produce_columns), with
    what the runtime uses of confluent_kafka.Producer: poll, flush, purge, len, list_topics
    for one topic, and the transactional API."""

    def __cinit__(self, dict config):
        if not _loaded:
            raise NativeUnavailable(_unavailable)
        cdef char errstr[512]
        cdef rd_kafka_conf_t *conf
        self.topics = {}
        self.logger = config.get("logger")
        self.on_delivery = config.get("on_delivery")
        conf = _producer_conf(config, self.logger is not None)
        self.state.owner = <void *>self
        self.state.default_callback = self.on_delivery is not None
        rd_kafka_conf_set_dr_msg_cb(conf, _dr_msg_cb)
        if self.logger is not None:
            rd_kafka_conf_set_log_cb(conf, _log_cb)
        rd_kafka_conf_set_opaque(conf, &self.state)
        self.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))
        if self.rk == NULL:
            rd_kafka_conf_destroy(conf)
            raise _invalid(errstr.decode(errors="replace"))
        if self.logger is not None:
            rd_kafka_set_log_queue(self.rk, NULL)

    def __dealloc__(self):
        cdef rd_kafka_t *rk = self.rk
        if rk == NULL:
            return
        for addr in self.topics.values():
            rd_kafka_topic_destroy(<rd_kafka_topic_t *><size_t>addr)
        self.topics = None
        self.rk = NULL
        self.state.owner = NULL
        with nogil:
            rd_kafka_destroy(rk)

    cdef rd_kafka_topic_t *_rkt(self, str topic) except NULL:
        addr = self.topics.get(topic)
        if addr is not None:
            return <rd_kafka_topic_t *><size_t>addr
        cdef bytes tb = topic.encode()
        cdef rd_kafka_topic_t *rkt = rd_kafka_topic_new(self.rk, tb, NULL)
        if rkt == NULL:
            raise _invalid(f"topic {topic!r}: rd_kafka_topic_new failed")
        self.topics[topic] = <size_t>rkt
        return rkt

    cdef void _delivered(self, const rd_kafka_message_t *m) noexcept:
        cdef DeliveryReport report
        callback = self.on_delivery
        if m._private != NULL:
            callback = <object>m._private
            Py_DECREF(callback)     # the reference produce_columns gave the message
        try:
            if callback is None:
                return
            report = DeliveryReport.__new__(DeliveryReport)
            report._topic = _topic(m)
            report._partition = m.partition
            report._offset = m.offset
            if m.err != RD_KAFKA_RESP_ERR_NO_ERROR:
                # Not rd_kafka_message_errstr(): for a produced message it reads the payload.
                report._error = _KafkaError(<int>m.err, rd_kafka_err2str(m.err).decode(
                    errors="replace"))
            callback(report._error, report)
        except BaseException as e:
            if self.callback_error is None:
                self.callback_error = e

    cdef int _raise_callback_error(self) except -1:
        e = self.callback_error
        if e is not None:
            self.callback_error = None
            raise e
        return 0

    def produce_columns(self, str topic, keys, values, partitions, timestamps=None,
                        headers=None, last_on_delivery=None, double poll_timeout=0.05):
        """Produce ``values[i]`` with ``keys[i]`` (bytes, str or None) to ``partitions[i]``
        (an int list, or one int for all; -1: the configured partitioner), timestamp
        ``timestamps[i]`` (None or 0: the producer's clock), headers ``headers[i]`` (None, or
        (name, value) pairs or a dict); ``last_on_delivery``, if given, is the delivery
        callback of the last record. What cstreams._pure.produce.produce_batch does through
        confluent-kafka's produce(), in C: a full local queue is served by poll() and the
        batch goes on from the record that did not fit; an error the client raises for a
        record carries ``produced``, the number of records produced before it."""
        cdef list ks, vs, ps, ts, hs
        cdef Py_ssize_t n, i = 0, h, nh, cnt
        cdef int32_t one_partition = 0, partition
        cdef rd_kafka_vu_t vus[8]
        cdef rd_kafka_vu_t *vp
        cdef rd_kafka_vu_t *hvus = NULL
        cdef rd_kafka_error_t *error
        cdef rd_kafka_resp_err_t code
        cdef rd_kafka_topic_t *rkt
        cdef object t, hl, opaque
        cdef bytes kb, vb
        cdef int64_t ts_ms
        cdef int wait_ms = <int>(poll_timeout * 1000)
        cdef list keep
        if self.rk == NULL:
            raise RuntimeError("the producer is closed")
        ks, vs, ps, ts, hs = batch_columns(keys, values, partitions, timestamps, headers)
        n = len(ks)
        if ps is None:
            one_partition = partitions
        rkt = self._rkt(topic)
        vus[0].vtype = RD_KAFKA_VTYPE_RKT
        vus[0].u.rkt = rkt
        vus[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS
        vus[1].u.i = RD_KAFKA_MSG_F_COPY
        vus[2].vtype = RD_KAFKA_VTYPE_PARTITION
        vus[3].vtype = RD_KAFKA_VTYPE_VALUE
        vus[4].vtype = RD_KAFKA_VTYPE_KEY
        try:
            while i < n:
                partition = one_partition if ps is None else <int32_t>ps[i]
                vus[2].u.i32 = partition
                # vb and kb keep the bytes alive until the record is produced.
                vb = _point_at(&vus[3], vs[i], "value", topic, i)
                kb = _point_at(&vus[4], ks[i], "key", topic, i)
                cnt = 5
                if ts is not None:
                    t = ts[i]
                    if t is not None:
                        ts_ms = t
                        if ts_ms:
                            vus[cnt].vtype = RD_KAFKA_VTYPE_TIMESTAMP
                            vus[cnt].u.i64 = ts_ms
                            cnt += 1
                opaque = None
                if last_on_delivery is not None and i == n - 1:
                    opaque = last_on_delivery
                    vus[cnt].vtype = RD_KAFKA_VTYPE_OPAQUE
                    vus[cnt].u.ptr = <void *>opaque
                    cnt += 1
                vp = vus
                hl = None if hs is None else hs[i]
                if hl:
                    if isinstance(hl, dict):
                        hl = list(hl.items())
                    nh = len(hl)
                    free(hvus)
                    hvus = <rd_kafka_vu_t *>malloc((cnt + nh) * sizeof(rd_kafka_vu_t))
                    if hvus == NULL:
                        raise MemoryError()
                    for h in range(cnt):
                        hvus[h] = vus[h]
                    # The encoded names and values live until the record is produced.
                    keep = []
                    for h in range(nh):
                        name, hv = hl[h]
                        name = _as_bytes(name, "header name", topic, i)
                        keep.append(name)
                        hvus[cnt + h].vtype = RD_KAFKA_VTYPE_HEADER
                        hvus[cnt + h].u.header.name = <char *>name
                        if hv is None:
                            hvus[cnt + h].u.header.val = NULL
                            hvus[cnt + h].u.header.size = -1
                        else:
                            hv = _as_bytes(hv, "header value", topic, i)
                            keep.append(hv)
                            hvus[cnt + h].u.header.val = <char *>hv
                            hvus[cnt + h].u.header.size = len(<bytes>hv)
                    vp = hvus
                    cnt += nh
                if opaque is not None:
                    Py_INCREF(opaque)   # released by the delivery report
                error = rd_kafka_produceva(self.rk, vp, cnt)
                if error != NULL:
                    if opaque is not None:
                        Py_DECREF(opaque)
                    code = rd_kafka_error_code(error)
                    if code == RD_KAFKA_RESP_ERR__QUEUE_FULL:
                        rd_kafka_error_destroy(error)
                        self.queue_full_waits += 1
                        with nogil:
                            rd_kafka_poll(self.rk, wait_ms)
                        self._raise_callback_error()
                        continue
                    raise _exception(error)
                i += 1
        except BaseException as e:
            # Which record the client refused (cstreams.record_errors.send_failed).
            e.produced = i
            raise
        finally:
            free(hvus)
            self.produced += i
        return n

    def produce(self, topic, value=None, key=None, partition=-1, on_delivery=None,
                callback=None, timestamp=0, headers=None):
        """One record, as confluent-kafka's produce() takes it (positionally too)."""
        return self.produce_columns(topic, [key], [value], partition, [timestamp],
                                    None if headers is None else [headers],
                                    on_delivery if on_delivery is not None else callback)

    def poll(self, timeout=None):
        cdef int ms = _ms(timeout), served
        with nogil:
            served = rd_kafka_poll(self.rk, ms)
        self._raise_callback_error()
        return served

    def flush(self, timeout=None):
        """Wait until every record is acknowledged or failed (delivery callbacks served);
        returns how many are still queued or in flight."""
        cdef int ms = _ms(timeout)
        with nogil:
            rd_kafka_flush(self.rk, ms)
        self._raise_callback_error()
        return rd_kafka_outq_len(self.rk)

    def __len__(self):
        return rd_kafka_outq_len(self.rk)

    def purge(self, in_queue=True, in_flight=True, blocking=True):
        """Drop queued (and in-flight) records; their reports say _PURGE_QUEUE/_INFLIGHT."""
        cdef int flags = ((RD_KAFKA_PURGE_F_QUEUE if in_queue else 0)
                          | (RD_KAFKA_PURGE_F_INFLIGHT if in_flight else 0)
                          | (0 if blocking else 0x4))
        cdef rd_kafka_resp_err_t err = rd_kafka_purge(self.rk, flags)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR:
            raise _KafkaException(_KafkaError(<int>err))

    def list_topics(self, str topic, timeout=None):
        """Metadata of one topic, shaped as confluent-kafka's: ``.topics[topic]`` with
        ``.partitions`` (a dict keyed by partition id) and ``.error``."""
        cdef const rd_kafka_metadata_t *md = NULL
        cdef rd_kafka_topic_t *rkt = self._rkt(topic)
        cdef int ms = _ms(timeout)
        cdef rd_kafka_resp_err_t err
        cdef int i
        with nogil:
            err = rd_kafka_metadata(self.rk, 0, rkt, &md, ms)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR:
            raise _KafkaException(_KafkaError(<int>err))
        topics = {}
        try:
            for i in range(md.topic_cnt):
                name = md.topics[i].topic.decode(errors="replace")
                topics[name] = TopicMetadata(
                    name, dict.fromkeys(range(md.topics[i].partition_cnt)),
                    None if md.topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR
                    else _KafkaError(<int>md.topics[i].err))
        finally:
            rd_kafka_metadata_destroy(md)
        return ClusterMetadata(topics)

    # --- transactions (KIP-98 / KIP-447), as confluent-kafka's -----------------------------
    def init_transactions(self, timeout=None):
        self._timed(rd_kafka_init_transactions, timeout)

    def begin_transaction(self):
        self._transactional_result(rd_kafka_begin_transaction(self.rk))

    def send_offsets_to_transaction(self, positions, bytes group_metadata, timeout=None):
        """``positions``: TopicPartitions (the next offset to read); ``group_metadata``: what
        the consumer's consumer_group_metadata() returned (librdkafka's serialized form)."""
        cdef int ms = _ms(timeout)
        cdef rd_kafka_error_t *error
        cdef rd_kafka_consumer_group_metadata_t *cgmd = NULL
        cdef rd_kafka_topic_partition_list_t *offsets
        cdef rd_kafka_topic_partition_t *part
        error = rd_kafka_consumer_group_metadata_read(&cgmd, <char *>group_metadata,
                                                      len(group_metadata))
        if error != NULL:
            raise _exception(error)
        offsets = rd_kafka_topic_partition_list_new(len(positions))
        try:
            for tp in positions:
                part = rd_kafka_topic_partition_list_add(offsets, tp.topic.encode(),
                                                         tp.partition)
                part.offset = tp.offset
            with nogil:
                error = rd_kafka_send_offsets_to_transaction(self.rk, offsets, cgmd, ms)
        finally:
            rd_kafka_topic_partition_list_destroy(offsets)
            rd_kafka_consumer_group_metadata_destroy(cgmd)
        self._transactional_result(error)

    def commit_transaction(self, timeout=None):
        self._timed(rd_kafka_commit_transaction, timeout)

    def abort_transaction(self, timeout=None):
        self._timed(rd_kafka_abort_transaction, timeout)

    cdef int _timed(self, _timed_call call, object timeout) except -1:
        """A transactional call that may block up to ``timeout``, without the GIL."""
        cdef int ms = _ms(timeout)
        cdef rd_kafka_error_t *error
        with nogil:
            error = call(self.rk, ms)
        return self._transactional_result(error)

    cdef int _transactional_result(self, rd_kafka_error_t *error) except -1:
        if error != NULL:
            raise _exception(error)
        return self._raise_callback_error()


cdef inline bytes _point_at(rd_kafka_vu_t *vu, object o, str what, str topic, Py_ssize_t i):
    """Point ``vu``'s memory at ``o`` as bytes (NULL for None); returns the bytes object,
    which must outlive the produce call."""
    cdef bytes b
    if o is None:
        vu.u.mem.ptr = NULL
        vu.u.mem.size = 0
        return None
    b = _as_bytes(o, what, topic, i)
    vu.u.mem.ptr = <char *>b
    vu.u.mem.size = len(b)
    return b


cdef bytes _as_bytes(object v, str what, str topic, Py_ssize_t i):
    # confluent-kafka's produce() takes str (UTF-8) or bytes-like for keys, values, headers.
    if type(v) is bytes:
        return <bytes>v
    if isinstance(v, str):
        return (<str>v).encode()
    try:
        return bytes(memoryview(v))
    except TypeError:
        raise TypeError(f"topic {topic!r} record {i}: {what} is {type(v).__name__}, not "
                        "bytes or str") from None


class TopicMetadata:
    __slots__ = ("topic", "partitions", "error")

    def __init__(self, topic, partitions, error):
        self.topic = topic
        self.partitions = partitions
        self.error = error


class ClusterMetadata:
    __slots__ = ("topics",)

    def __init__(self, topics):
        self.topics = topics
