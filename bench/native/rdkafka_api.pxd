# Cython view of rdkafka_api.h: the part of librdkafka's public C API the spike calls.

from libc.stdint cimport int32_t, int64_t


cdef extern from "rdkafka_api.h" nogil:
    ctypedef struct rd_kafka_t:
        pass
    ctypedef struct rd_kafka_topic_t:
        pass
    ctypedef struct rd_kafka_conf_t:
        pass
    ctypedef struct rd_kafka_topic_conf_t:
        pass
    ctypedef struct rd_kafka_queue_t:
        pass
    ctypedef struct rd_kafka_headers_t:
        pass
    ctypedef struct rd_kafka_error_t:
        pass

    ctypedef enum rd_kafka_type_t:
        RD_KAFKA_PRODUCER
        RD_KAFKA_CONSUMER

    ctypedef enum rd_kafka_timestamp_type_t:
        RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        RD_KAFKA_TIMESTAMP_CREATE_TIME
        RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME

    ctypedef enum rd_kafka_resp_err_t:
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT
        RD_KAFKA_RESP_ERR__PARTITION_EOF
        RD_KAFKA_RESP_ERR__TIMED_OUT
        RD_KAFKA_RESP_ERR__QUEUE_FULL
        RD_KAFKA_RESP_ERR__NOENT
        RD_KAFKA_RESP_ERR_NO_ERROR

    ctypedef enum rd_kafka_conf_res_t:
        RD_KAFKA_CONF_UNKNOWN
        RD_KAFKA_CONF_INVALID
        RD_KAFKA_CONF_OK

    ctypedef struct rd_kafka_message_t:
        rd_kafka_resp_err_t err
        rd_kafka_topic_t *rkt
        int32_t partition
        void *payload
        size_t len
        void *key
        size_t key_len
        int64_t offset

    ctypedef struct rd_kafka_topic_partition_t:
        char *topic
        int32_t partition
        int64_t offset
        rd_kafka_resp_err_t err

    ctypedef struct rd_kafka_topic_partition_list_t:
        int cnt
        int size
        rd_kafka_topic_partition_t *elems

    int32_t RD_KAFKA_PARTITION_UA
    int RD_KAFKA_MSG_F_COPY

    ctypedef enum rd_kafka_vtype_t:
        RD_KAFKA_VTYPE_END
        RD_KAFKA_VTYPE_TOPIC
        RD_KAFKA_VTYPE_RKT
        RD_KAFKA_VTYPE_PARTITION
        RD_KAFKA_VTYPE_VALUE
        RD_KAFKA_VTYPE_KEY
        RD_KAFKA_VTYPE_OPAQUE
        RD_KAFKA_VTYPE_MSGFLAGS
        RD_KAFKA_VTYPE_TIMESTAMP
        RD_KAFKA_VTYPE_HEADER
        RD_KAFKA_VTYPE_HEADERS

    ctypedef struct _vu_mem:
        void *ptr
        size_t size

    ctypedef struct _vu_header:
        const char *name
        const void *val
        ssize_t size

    ctypedef union _vu_u:
        const char *cstr
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

    int rd_kafka_version()
    const char *rd_kafka_version_str()
    const char *rd_kafka_err2str(rd_kafka_resp_err_t err)

    rd_kafka_conf_t *rd_kafka_conf_new()
    void rd_kafka_conf_destroy(rd_kafka_conf_t *conf)
    rd_kafka_conf_res_t rd_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                                          const char *value, char *errstr, size_t errstr_size)
    void rd_kafka_conf_set_dr_msg_cb(rd_kafka_conf_t *conf, rd_kafka_dr_msg_cb_t *dr_msg_cb)
    void rd_kafka_conf_set_opaque(rd_kafka_conf_t *conf, void *opaque)

    rd_kafka_t *rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                             size_t errstr_size)
    void rd_kafka_destroy(rd_kafka_t *rk)
    int rd_kafka_poll(rd_kafka_t *rk, int timeout_ms)
    rd_kafka_resp_err_t rd_kafka_flush(rd_kafka_t *rk, int timeout_ms)
    int rd_kafka_outq_len(rd_kafka_t *rk)

    rd_kafka_topic_t *rd_kafka_topic_new(rd_kafka_t *rk, const char *topic,
                                         rd_kafka_topic_conf_t *conf)
    void rd_kafka_topic_destroy(rd_kafka_topic_t *rkt)
    const char *rd_kafka_topic_name(const rd_kafka_topic_t *rkt)

    rd_kafka_topic_partition_list_t *rd_kafka_topic_partition_list_new(int size)
    void rd_kafka_topic_partition_list_destroy(rd_kafka_topic_partition_list_t *rkparlist)
    rd_kafka_topic_partition_t *rd_kafka_topic_partition_list_add(
        rd_kafka_topic_partition_list_t *rktparlist, const char *topic, int32_t partition)

    rd_kafka_resp_err_t rd_kafka_subscribe(rd_kafka_t *rk,
                                           const rd_kafka_topic_partition_list_t *topics)
    rd_kafka_resp_err_t rd_kafka_poll_set_consumer(rd_kafka_t *rk)
    rd_kafka_queue_t *rd_kafka_queue_get_consumer(rd_kafka_t *rk)
    void rd_kafka_queue_destroy(rd_kafka_queue_t *rkqu)
    ssize_t rd_kafka_consume_batch_queue(rd_kafka_queue_t *rkqu, int timeout_ms,
                                         rd_kafka_message_t **rkmessages,
                                         size_t rkmessages_size)
    rd_kafka_resp_err_t rd_kafka_consumer_close(rd_kafka_t *rk)

    void rd_kafka_message_destroy(rd_kafka_message_t *rkmessage)
    int64_t rd_kafka_message_timestamp(const rd_kafka_message_t *rkmessage,
                                       rd_kafka_timestamp_type_t *tstype)
    rd_kafka_resp_err_t rd_kafka_message_headers(const rd_kafka_message_t *rkmessage,
                                                 rd_kafka_headers_t **hdrsp)
    rd_kafka_resp_err_t rd_kafka_header_get_all(const rd_kafka_headers_t *hdrs, size_t idx,
                                                const char **namep, const void **valuep,
                                                size_t *sizep)

    rd_kafka_error_t *rd_kafka_produceva(rd_kafka_t *rk, const rd_kafka_vu_t *vus, size_t cnt)
    rd_kafka_resp_err_t rd_kafka_error_code(const rd_kafka_error_t *error)
    const char *rd_kafka_error_string(const rd_kafka_error_t *error)
    void rd_kafka_error_destroy(rd_kafka_error_t *error)
