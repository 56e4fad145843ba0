# The native data path (issue 18): librdkafka's C API, reached through the library that
# confluent-kafka's extension loaded (rdkafka_api.h: declarations and the dlsym table).

from libc.stdint cimport int32_t, int64_t


cdef extern from "rdkafka_api.h" nogil:
    ctypedef struct rd_kafka_t:
        pass
    ctypedef struct rd_kafka_topic_t:
        pass
    ctypedef struct rd_kafka_queue_t:
        pass
    ctypedef struct rd_kafka_headers_t:
        pass
    ctypedef struct rd_kafka_conf_t:
        pass
    ctypedef struct rd_kafka_topic_conf_t:
        pass
    ctypedef struct rd_kafka_error_t:
        pass
    ctypedef struct rd_kafka_consumer_group_metadata_t:
        pass

    ctypedef enum rd_kafka_type_t:
        RD_KAFKA_PRODUCER
        RD_KAFKA_CONSUMER

    ctypedef enum rd_kafka_timestamp_type_t:
        RD_KAFKA_TIMESTAMP_NOT_AVAILABLE

    ctypedef enum rd_kafka_resp_err_t:
        RD_KAFKA_RESP_ERR__PARTITION_EOF
        RD_KAFKA_RESP_ERR__QUEUE_FULL
        RD_KAFKA_RESP_ERR__INVALID_ARG
        RD_KAFKA_RESP_ERR_NO_ERROR

    ctypedef enum rd_kafka_conf_res_t:
        RD_KAFKA_CONF_OK

    ctypedef enum rd_kafka_vtype_t:
        RD_KAFKA_VTYPE_END
        RD_KAFKA_VTYPE_RKT
        RD_KAFKA_VTYPE_PARTITION
        RD_KAFKA_VTYPE_VALUE
        RD_KAFKA_VTYPE_KEY
        RD_KAFKA_VTYPE_OPAQUE
        RD_KAFKA_VTYPE_MSGFLAGS
        RD_KAFKA_VTYPE_TIMESTAMP
        RD_KAFKA_VTYPE_HEADER

    int RD_KAFKA_MSG_F_COPY
    int RD_KAFKA_PURGE_F_QUEUE
    int RD_KAFKA_PURGE_F_INFLIGHT

    ctypedef struct rd_kafka_message_t:
        rd_kafka_resp_err_t err
        rd_kafka_topic_t *rkt
        int32_t partition
        void *payload
        size_t len
        void *key
        size_t key_len
        int64_t offset
        void *_private

    ctypedef struct rd_kafka_topic_partition_t:
        char *topic
        int32_t partition
        int64_t offset

    ctypedef struct rd_kafka_topic_partition_list_t:
        int cnt

    ctypedef struct rd_kafka_metadata_topic_t:
        char *topic
        int partition_cnt
        rd_kafka_resp_err_t err

    ctypedef struct rd_kafka_metadata_t:
        int topic_cnt
        rd_kafka_metadata_topic_t *topics

    ctypedef struct _vu_mem:
        void *ptr
        size_t size

    ctypedef struct _vu_header:
        const char *name
        const void *val
        ssize_t size

    ctypedef union _vu_u:
        rd_kafka_topic_t *rkt
        int i
        int32_t i32
        int64_t i64
        _vu_mem mem
        _vu_header header
        void *ptr

    ctypedef struct rd_kafka_vu_t:
        rd_kafka_vtype_t vtype
        _vu_u u

    ctypedef void rd_kafka_dr_msg_cb_t(rd_kafka_t *rk, const rd_kafka_message_t *rkmessage,
                                       void *opaque) noexcept
    ctypedef void rd_kafka_log_cb_t(const rd_kafka_t *rk, int level, const char *fac,
                                    const char *buf) noexcept

    int RTLD_NOW
    int RTLD_NOLOAD
    void *dlopen(const char *filename, int flags)
    int dlclose(void *handle)
    char *dlerror()

    const char *cstreams_rdkafka_load(void *handle)
    const char *cstreams_rdkafka_path()
    rd_kafka_t *cstreams_confluent_rk(void *handle)

    int rd_kafka_version()
    const char *rd_kafka_version_str()
    const char *rd_kafka_err2str(rd_kafka_resp_err_t err)
    void *rd_kafka_opaque(const rd_kafka_t *rk)
    rd_kafka_type_t rd_kafka_type(const rd_kafka_t *rk)
    const char *rd_kafka_topic_name(const rd_kafka_topic_t *rkt)
    rd_kafka_queue_t *rd_kafka_queue_new(rd_kafka_t *rk)
    void rd_kafka_queue_destroy(rd_kafka_queue_t *rkqu)
    rd_kafka_queue_t *rd_kafka_queue_get_partition(rd_kafka_t *rk, const char *topic,
                                                   int32_t partition)
    void rd_kafka_queue_forward(rd_kafka_queue_t *src, rd_kafka_queue_t *dst)
    size_t rd_kafka_queue_length(rd_kafka_queue_t *rkqu)
    ssize_t rd_kafka_consume_batch_queue(rd_kafka_queue_t *rkqu, int timeout_ms,
                                         rd_kafka_message_t **rkmessages,
                                         size_t rkmessages_size)
    void rd_kafka_message_destroy(rd_kafka_message_t *rkmessage)
    int64_t rd_kafka_message_timestamp(const rd_kafka_message_t *rkmessage,
                                       rd_kafka_timestamp_type_t *tstype)
    rd_kafka_resp_err_t rd_kafka_message_headers(const rd_kafka_message_t *rkmessage,
                                                 rd_kafka_headers_t **hdrsp)
    const char *rd_kafka_message_errstr(const rd_kafka_message_t *rkmessage)
    rd_kafka_resp_err_t rd_kafka_header_get_all(const rd_kafka_headers_t *hdrs, size_t idx,
                                                const char **namep, const void **valuep,
                                                size_t *sizep)

    rd_kafka_conf_t *rd_kafka_conf_new()
    void rd_kafka_conf_destroy(rd_kafka_conf_t *conf)
    rd_kafka_conf_res_t rd_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                                          const char *value, char *errstr, size_t errstr_size)
    void rd_kafka_conf_set_dr_msg_cb(rd_kafka_conf_t *conf, rd_kafka_dr_msg_cb_t *cb)
    void rd_kafka_conf_set_log_cb(rd_kafka_conf_t *conf, rd_kafka_log_cb_t *cb)
    void rd_kafka_conf_set_opaque(rd_kafka_conf_t *conf, void *opaque)
    rd_kafka_t *rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                             size_t errstr_size)
    void rd_kafka_destroy(rd_kafka_t *rk)
    const char *rd_kafka_name(const rd_kafka_t *rk)
    rd_kafka_resp_err_t rd_kafka_set_log_queue(rd_kafka_t *rk, rd_kafka_queue_t *rkqu)
    int rd_kafka_poll(rd_kafka_t *rk, int timeout_ms)
    rd_kafka_resp_err_t rd_kafka_flush(rd_kafka_t *rk, int timeout_ms)
    rd_kafka_resp_err_t rd_kafka_purge(rd_kafka_t *rk, int purge_flags)
    int rd_kafka_outq_len(rd_kafka_t *rk)
    rd_kafka_topic_t *rd_kafka_topic_new(rd_kafka_t *rk, const char *topic,
                                         rd_kafka_topic_conf_t *conf)
    void rd_kafka_topic_destroy(rd_kafka_topic_t *rkt)
    rd_kafka_error_t *rd_kafka_produceva(rd_kafka_t *rk, const rd_kafka_vu_t *vus, size_t cnt)
    rd_kafka_resp_err_t rd_kafka_error_code(const rd_kafka_error_t *error)
    const char *rd_kafka_error_string(const rd_kafka_error_t *error)
    int rd_kafka_error_is_fatal(const rd_kafka_error_t *error)
    int rd_kafka_error_is_retriable(const rd_kafka_error_t *error)
    int rd_kafka_error_txn_requires_abort(const rd_kafka_error_t *error)
    void rd_kafka_error_destroy(rd_kafka_error_t *error)
    rd_kafka_error_t *rd_kafka_init_transactions(rd_kafka_t *rk, int timeout_ms)
    rd_kafka_error_t *rd_kafka_begin_transaction(rd_kafka_t *rk)
    rd_kafka_error_t *rd_kafka_send_offsets_to_transaction(
        rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *offsets,
        const rd_kafka_consumer_group_metadata_t *cgmetadata, int timeout_ms)
    rd_kafka_error_t *rd_kafka_commit_transaction(rd_kafka_t *rk, int timeout_ms)
    rd_kafka_error_t *rd_kafka_abort_transaction(rd_kafka_t *rk, int timeout_ms)
    rd_kafka_error_t *rd_kafka_consumer_group_metadata_read(
        rd_kafka_consumer_group_metadata_t **cgmdp, const void *buffer, size_t size)
    void rd_kafka_consumer_group_metadata_destroy(rd_kafka_consumer_group_metadata_t *cgmd)
    rd_kafka_topic_partition_list_t *rd_kafka_topic_partition_list_new(int size)
    void rd_kafka_topic_partition_list_destroy(rd_kafka_topic_partition_list_t *rkparlist)
    rd_kafka_topic_partition_t *rd_kafka_topic_partition_list_add(
        rd_kafka_topic_partition_list_t *rktparlist, const char *topic, int32_t partition)
    rd_kafka_resp_err_t rd_kafka_metadata(rd_kafka_t *rk, int all_topics,
                                          rd_kafka_topic_t *only_rkt,
                                          const rd_kafka_metadata_t **metadatap,
                                          int timeout_ms)
    void rd_kafka_metadata_destroy(const rd_kafka_metadata_t *metadata)
    rd_kafka_queue_t *rd_kafka_queue_get_consumer(rd_kafka_t *rk)
    void rd_kafka_queue_cb_event_enable(rd_kafka_queue_t *rkqu,
                                        void (*event_cb)(rd_kafka_t *rk,
                                                         void *qev_opaque) noexcept nogil,
                                        void *qev_opaque)
    void rd_kafka_queue_yield(rd_kafka_queue_t *rkqu)


cdef struct _Group:
    # One (topic, partition) of a poll; its columns are borrowed from a list that owns them.
    rd_kafka_topic_t *rkt
    int32_t partition
    Py_ssize_t count
    Py_ssize_t fill
    void *keys
    void *values
    void *timestamps
    void *offsets


cdef class NativeConsumerQueue:
    cdef rd_kafka_t *rk
    cdef rd_kafka_queue_t *queue
    cdef rd_kafka_queue_t *consumer_queue   # confluent-kafka's: an event there wakes queue
    cdef rd_kafka_message_t **msgs
    cdef int *group_of
    cdef size_t capacity
    cdef _Group *groups
    cdef Py_ssize_t groups_cap
    cdef Py_ssize_t ngroups
    cdef object consumer
    cdef object batch_type
    cdef list routed             # [(topic bytes, partition)] forwarded on every poll
    cdef readonly long long consumed

    cdef int _group_index(self, rd_kafka_message_t *m, int last) except -2
    cdef tuple _columns(self, ssize_t n)
    cdef int _forward_all(self) except -1


ctypedef rd_kafka_error_t *(*_timed_call)(rd_kafka_t *rk, int timeout_ms) noexcept nogil


cdef struct _ProducerState:
    # What librdkafka's callbacks get as the producer's opaque, read without the GIL.
    void *owner                 # the NativeProducer (borrowed: it outlives its rd_kafka_t)
    bint default_callback       # on_delivery is set: every report goes to Python


cdef class NativeProducer:
    cdef _ProducerState state
    cdef rd_kafka_t *rk
    cdef dict topics                # name -> address of its rd_kafka_topic_t
    cdef object on_delivery         # the default delivery callback (err, report), or None
    cdef object logger
    cdef object callback_error      # an exception a callback raised, re-raised by the caller
    cdef readonly long long produced
    cdef readonly long long queue_full_waits

    cdef rd_kafka_topic_t *_rkt(self, str topic) except NULL
    cdef int _raise_callback_error(self) except -1
    cdef int _transactional_result(self, rd_kafka_error_t *error) except -1
    cdef int _timed(self, _timed_call call, object timeout) except -1
    cdef void _delivered(self, const rd_kafka_message_t *m) noexcept
