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

    ctypedef enum rd_kafka_type_t:
        RD_KAFKA_PRODUCER
        RD_KAFKA_CONSUMER

    ctypedef enum rd_kafka_timestamp_type_t:
        RD_KAFKA_TIMESTAMP_NOT_AVAILABLE

    ctypedef enum rd_kafka_resp_err_t:
        RD_KAFKA_RESP_ERR__PARTITION_EOF
        RD_KAFKA_RESP_ERR_NO_ERROR

    ctypedef struct rd_kafka_message_t:
        rd_kafka_resp_err_t err
        rd_kafka_topic_t *rkt
        int32_t partition
        void *payload
        size_t len
        void *key
        size_t key_len
        int64_t offset

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
