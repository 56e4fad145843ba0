/* The part of librdkafka's public C API that cstreams' native data path (native.pyx) uses,
 * declared from librdkafka's documented rdkafka.h (2.x): no rdkafka.h and no librdkafka have
 * to be installed to build it, and nothing is linked. At run time native.pyx finds the
 * librdkafka that confluent-kafka's extension (cimpl) already loaded, through that
 * extension's own handle (dlopen RTLD_NOLOAD), and fills the table of function pointers
 * below with dlsym: the process keeps exactly one librdkafka, the one confluent-kafka uses.
 *
 * Each function is declared once in CSTREAMS_RDKAFKA_FUNCTIONS (return type, name, argument
 * list); the macros below turn the list into a pointer per function and a name -> pointer
 * table, and #define each name to a call through its pointer, so that the Cython code calls
 * rd_kafka_xxx(...) as if it were linked. Opaque handles stay opaque; only the structs whose
 * fields are read or written (rd_kafka_message_t, the partition list, the leading fields of
 * a topic's metadata, rd_kafka_vu_t) are spelled out,
 * with rdkafka.h's layout (ABI-stable since librdkafka 1.x).
 */
#ifndef CSTREAMS_RDKAFKA_API_H
#define CSTREAMS_RDKAFKA_API_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <dlfcn.h>

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_topic_s rd_kafka_topic_t;
typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef struct rd_kafka_topic_conf_s rd_kafka_topic_conf_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;
typedef struct rd_kafka_headers_s rd_kafka_headers_t;
typedef struct rd_kafka_error_s rd_kafka_error_t;

typedef enum rd_kafka_type_t { RD_KAFKA_PRODUCER, RD_KAFKA_CONSUMER } rd_kafka_type_t;

typedef enum {
    RD_KAFKA_TIMESTAMP_NOT_AVAILABLE,
    RD_KAFKA_TIMESTAMP_CREATE_TIME,
    RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME
} rd_kafka_timestamp_type_t;

/* The full enum runs from -200 to the broker's error codes; the values named here. */
typedef enum {
    RD_KAFKA_RESP_ERR__PARTITION_EOF = -191,
    RD_KAFKA_RESP_ERR__INVALID_ARG = -186,
    RD_KAFKA_RESP_ERR__TIMED_OUT = -185,
    RD_KAFKA_RESP_ERR__QUEUE_FULL = -184,
    RD_KAFKA_RESP_ERR_NO_ERROR = 0
} rd_kafka_resp_err_t;

typedef struct rd_kafka_message_s {
    rd_kafka_resp_err_t err;
    rd_kafka_topic_t *rkt;
    int32_t partition;
    void *payload;
    size_t len;
    void *key;
    size_t key_len;
    int64_t offset;
    void *_private;
} rd_kafka_message_t;

typedef struct rd_kafka_consumer_group_metadata_s rd_kafka_consumer_group_metadata_t;

typedef enum {
    RD_KAFKA_CONF_UNKNOWN = -2,
    RD_KAFKA_CONF_INVALID = -1,
    RD_KAFKA_CONF_OK = 0
} rd_kafka_conf_res_t;

typedef struct rd_kafka_topic_partition_s {
    char *topic;
    int32_t partition;
    int64_t offset;
    void *metadata;
    size_t metadata_size;
    void *opaque;
    rd_kafka_resp_err_t err;
    void *_private;
} rd_kafka_topic_partition_t;

typedef struct rd_kafka_topic_partition_list_s {
    int cnt;
    int size;
    rd_kafka_topic_partition_t *elems;
} rd_kafka_topic_partition_list_t;

/* Metadata: only the leading fields of a topic's entry are read; the layout is rdkafka.h's. */
typedef struct rd_kafka_metadata_topic {
    char *topic;
    int partition_cnt;
    void *partitions;
    rd_kafka_resp_err_t err;
} rd_kafka_metadata_topic_t;

typedef struct rd_kafka_metadata {
    int broker_cnt;
    void *brokers;
    int topic_cnt;
    rd_kafka_metadata_topic_t *topics;
    int32_t orig_broker_id;
    char *orig_broker_name;
} rd_kafka_metadata_t;

#define RD_KAFKA_PARTITION_UA ((int32_t)-1)
#define RD_KAFKA_MSG_F_COPY 0x2
#define RD_KAFKA_PURGE_F_QUEUE 0x1
#define RD_KAFKA_PURGE_F_INFLIGHT 0x2

typedef enum rd_kafka_vtype_t {
    RD_KAFKA_VTYPE_END,
    RD_KAFKA_VTYPE_TOPIC,
    RD_KAFKA_VTYPE_RKT,
    RD_KAFKA_VTYPE_PARTITION,
    RD_KAFKA_VTYPE_VALUE,
    RD_KAFKA_VTYPE_KEY,
    RD_KAFKA_VTYPE_OPAQUE,
    RD_KAFKA_VTYPE_MSGFLAGS,
    RD_KAFKA_VTYPE_TIMESTAMP,
    RD_KAFKA_VTYPE_HEADER,
    RD_KAFKA_VTYPE_HEADERS
} rd_kafka_vtype_t;

typedef struct rd_kafka_vu_s {
    rd_kafka_vtype_t vtype;
    union {
        const char *cstr;
        rd_kafka_topic_t *rkt;
        int i;
        int32_t i32;
        int64_t i64;
        struct {
            void *ptr;
            size_t size;
        } mem;
        struct {
            const char *name;
            const void *val;
            ssize_t size;
        } header;
        rd_kafka_headers_t *headers;
        void *ptr;
        char _pad[64];
    } u;
} rd_kafka_vu_t;

typedef void (rd_kafka_dr_msg_cb_t)(rd_kafka_t *rk, const rd_kafka_message_t *rkmessage,
                                    void *opaque);
typedef void (rd_kafka_log_cb_t)(const rd_kafka_t *rk, int level, const char *fac,
                                 const char *buf);

#define CSTREAMS_RDKAFKA_FUNCTIONS(F)                                                        \
    F(int, rd_kafka_version, (void))                                                         \
    F(const char *, rd_kafka_version_str, (void))                                            \
    F(const char *, rd_kafka_err2str, (rd_kafka_resp_err_t err))                             \
    F(void *, rd_kafka_opaque, (const rd_kafka_t *rk))                                       \
    F(rd_kafka_type_t, rd_kafka_type, (const rd_kafka_t *rk))                                \
    F(const char *, rd_kafka_topic_name, (const rd_kafka_topic_t *rkt))                      \
    F(rd_kafka_queue_t *, rd_kafka_queue_new, (rd_kafka_t *rk))                              \
    F(void, rd_kafka_queue_destroy, (rd_kafka_queue_t *rkqu))                                \
    F(rd_kafka_queue_t *, rd_kafka_queue_get_partition,                                      \
      (rd_kafka_t *rk, const char *topic, int32_t partition))                                \
    F(void, rd_kafka_queue_forward, (rd_kafka_queue_t *src, rd_kafka_queue_t *dst))          \
    F(size_t, rd_kafka_queue_length, (rd_kafka_queue_t *rkqu))                               \
    F(ssize_t, rd_kafka_consume_batch_queue,                                                 \
      (rd_kafka_queue_t *rkqu, int timeout_ms, rd_kafka_message_t **rkmessages,              \
       size_t rkmessages_size))                                                              \
    F(void, rd_kafka_message_destroy, (rd_kafka_message_t *rkmessage))                       \
    F(int64_t, rd_kafka_message_timestamp,                                                   \
      (const rd_kafka_message_t *rkmessage, rd_kafka_timestamp_type_t *tstype))              \
    F(rd_kafka_resp_err_t, rd_kafka_message_headers,                                         \
      (const rd_kafka_message_t *rkmessage, rd_kafka_headers_t **hdrsp))                     \
    F(const char *, rd_kafka_message_errstr, (const rd_kafka_message_t *rkmessage))          \
    F(rd_kafka_resp_err_t, rd_kafka_header_get_all,                                          \
      (const rd_kafka_headers_t *hdrs, size_t idx, const char **namep,                       \
       const void **valuep, size_t *sizep))                                                      \
    F(rd_kafka_conf_t *, rd_kafka_conf_new, (void))                                          \
    F(void, rd_kafka_conf_destroy, (rd_kafka_conf_t *conf))                                  \
    F(rd_kafka_conf_res_t, rd_kafka_conf_set,                                                \
      (rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,             \
       size_t errstr_size))                                                                  \
    F(void, rd_kafka_conf_set_dr_msg_cb, (rd_kafka_conf_t *conf, rd_kafka_dr_msg_cb_t *cb))  \
    F(void, rd_kafka_conf_set_log_cb, (rd_kafka_conf_t *conf, rd_kafka_log_cb_t *cb))        \
    F(void, rd_kafka_conf_set_opaque, (rd_kafka_conf_t *conf, void *opaque))                 \
    F(rd_kafka_t *, rd_kafka_new,                                                            \
      (rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size))      \
    F(void, rd_kafka_destroy, (rd_kafka_t *rk))                                              \
    F(const char *, rd_kafka_name, (const rd_kafka_t *rk))                                   \
    F(rd_kafka_resp_err_t, rd_kafka_set_log_queue, (rd_kafka_t *rk, rd_kafka_queue_t *rkqu)) \
    F(int, rd_kafka_poll, (rd_kafka_t *rk, int timeout_ms))                                  \
    F(rd_kafka_resp_err_t, rd_kafka_flush, (rd_kafka_t *rk, int timeout_ms))                 \
    F(rd_kafka_resp_err_t, rd_kafka_purge, (rd_kafka_t *rk, int purge_flags))                \
    F(int, rd_kafka_outq_len, (rd_kafka_t *rk))                                              \
    F(rd_kafka_topic_t *, rd_kafka_topic_new,                                                \
      (rd_kafka_t *rk, const char *topic, rd_kafka_topic_conf_t *conf))                      \
    F(void, rd_kafka_topic_destroy, (rd_kafka_topic_t *rkt))                                 \
    F(rd_kafka_error_t *, rd_kafka_produceva,                                                \
      (rd_kafka_t *rk, const rd_kafka_vu_t *vus, size_t cnt))                                \
    F(rd_kafka_resp_err_t, rd_kafka_error_code, (const rd_kafka_error_t *error))             \
    F(const char *, rd_kafka_error_string, (const rd_kafka_error_t *error))                  \
    F(int, rd_kafka_error_is_fatal, (const rd_kafka_error_t *error))                         \
    F(int, rd_kafka_error_is_retriable, (const rd_kafka_error_t *error))                     \
    F(int, rd_kafka_error_txn_requires_abort, (const rd_kafka_error_t *error))               \
    F(void, rd_kafka_error_destroy, (rd_kafka_error_t *error))                               \
    F(rd_kafka_error_t *, rd_kafka_init_transactions, (rd_kafka_t *rk, int timeout_ms))      \
    F(rd_kafka_error_t *, rd_kafka_begin_transaction, (rd_kafka_t *rk))                      \
    F(rd_kafka_error_t *, rd_kafka_send_offsets_to_transaction,                              \
      (rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *offsets,                       \
       const rd_kafka_consumer_group_metadata_t *cgmetadata, int timeout_ms))                \
    F(rd_kafka_error_t *, rd_kafka_commit_transaction, (rd_kafka_t *rk, int timeout_ms))     \
    F(rd_kafka_error_t *, rd_kafka_abort_transaction, (rd_kafka_t *rk, int timeout_ms))      \
    F(rd_kafka_error_t *, rd_kafka_consumer_group_metadata_read,                             \
      (rd_kafka_consumer_group_metadata_t **cgmdp, const void *buffer, size_t size))         \
    F(void, rd_kafka_consumer_group_metadata_destroy,                                        \
      (rd_kafka_consumer_group_metadata_t *cgmd))                                            \
    F(rd_kafka_topic_partition_list_t *, rd_kafka_topic_partition_list_new, (int size))      \
    F(void, rd_kafka_topic_partition_list_destroy,                                           \
      (rd_kafka_topic_partition_list_t *rkparlist))                                          \
    F(rd_kafka_topic_partition_t *, rd_kafka_topic_partition_list_add,                       \
      (rd_kafka_topic_partition_list_t *rktparlist, const char *topic, int32_t partition))   \
    F(rd_kafka_resp_err_t, rd_kafka_metadata,                                                \
      (rd_kafka_t *rk, int all_topics, rd_kafka_topic_t *only_rkt,                           \
       const rd_kafka_metadata_t **metadatap, int timeout_ms))                               \
    F(void, rd_kafka_metadata_destroy, (const rd_kafka_metadata_t *metadata))                         \
    F(rd_kafka_queue_t *, rd_kafka_queue_get_consumer, (rd_kafka_t *rk))                     \
    F(void, rd_kafka_queue_cb_event_enable,                                                  \
      (rd_kafka_queue_t *rkqu, void (*event_cb)(rd_kafka_t *rk, void *qev_opaque),           \
       void *qev_opaque))                                                                    \
    F(void, rd_kafka_queue_yield, (rd_kafka_queue_t *rkqu))

#define CSTREAMS_RDKAFKA_POINTER(ret, name, args) static ret (*cstreams_p_##name) args = NULL;
CSTREAMS_RDKAFKA_FUNCTIONS(CSTREAMS_RDKAFKA_POINTER)
#undef CSTREAMS_RDKAFKA_POINTER

static void cstreams_rdkafka_unload(void) {
#define CSTREAMS_RDKAFKA_NULL(ret, name, args) cstreams_p_##name = NULL;
    CSTREAMS_RDKAFKA_FUNCTIONS(CSTREAMS_RDKAFKA_NULL)
#undef CSTREAMS_RDKAFKA_NULL
}

/* Fill every pointer from ``handle``; returns NULL, or the name of the first missing symbol
 * (then no pointer is kept). */
static const char *cstreams_rdkafka_load(void *handle) {
#define CSTREAMS_RDKAFKA_SYM(ret, name, args)                                                \
    if ((*(void **)(&cstreams_p_##name) = dlsym(handle, #name)) == NULL) {                   \
        cstreams_rdkafka_unload();                                                           \
        return #name;                                                                        \
    }
    CSTREAMS_RDKAFKA_FUNCTIONS(CSTREAMS_RDKAFKA_SYM)
#undef CSTREAMS_RDKAFKA_SYM
    return NULL;
}

/* Where the library that defines rd_kafka_version was mapped from (for the one-librdkafka
 * check), or NULL. */
static const char *cstreams_rdkafka_path(void) {
    Dl_info info;
    if (cstreams_p_rd_kafka_version == NULL ||
            dladdr(*(void **)(&cstreams_p_rd_kafka_version), &info) == 0)
        return NULL;
    return info.dli_fname;
}

/* The rd_kafka_t of a confluent-kafka client object: its Handle struct starts with
 * PyObject_HEAD and the rd_kafka_t pointer (confluent_kafka.h). The caller checks the type
 * and verifies the pointer with librdkafka before trusting it. */
typedef struct {
    PyObject_HEAD
    rd_kafka_t *rk;
} cstreams_confluent_handle_t;

static rd_kafka_t *cstreams_confluent_rk(void *handle) {
    return ((cstreams_confluent_handle_t *)handle)->rk;
}

#define rd_kafka_version (*cstreams_p_rd_kafka_version)
#define rd_kafka_version_str (*cstreams_p_rd_kafka_version_str)
#define rd_kafka_err2str (*cstreams_p_rd_kafka_err2str)
#define rd_kafka_opaque (*cstreams_p_rd_kafka_opaque)
#define rd_kafka_type (*cstreams_p_rd_kafka_type)
#define rd_kafka_topic_name (*cstreams_p_rd_kafka_topic_name)
#define rd_kafka_queue_new (*cstreams_p_rd_kafka_queue_new)
#define rd_kafka_queue_destroy (*cstreams_p_rd_kafka_queue_destroy)
#define rd_kafka_queue_get_partition (*cstreams_p_rd_kafka_queue_get_partition)
#define rd_kafka_queue_forward (*cstreams_p_rd_kafka_queue_forward)
#define rd_kafka_queue_length (*cstreams_p_rd_kafka_queue_length)
#define rd_kafka_consume_batch_queue (*cstreams_p_rd_kafka_consume_batch_queue)
#define rd_kafka_message_destroy (*cstreams_p_rd_kafka_message_destroy)
#define rd_kafka_message_timestamp (*cstreams_p_rd_kafka_message_timestamp)
#define rd_kafka_message_headers (*cstreams_p_rd_kafka_message_headers)
#define rd_kafka_message_errstr (*cstreams_p_rd_kafka_message_errstr)
#define rd_kafka_header_get_all (*cstreams_p_rd_kafka_header_get_all)
#define rd_kafka_conf_new (*cstreams_p_rd_kafka_conf_new)
#define rd_kafka_conf_destroy (*cstreams_p_rd_kafka_conf_destroy)
#define rd_kafka_conf_set (*cstreams_p_rd_kafka_conf_set)
#define rd_kafka_conf_set_dr_msg_cb (*cstreams_p_rd_kafka_conf_set_dr_msg_cb)
#define rd_kafka_conf_set_log_cb (*cstreams_p_rd_kafka_conf_set_log_cb)
#define rd_kafka_conf_set_opaque (*cstreams_p_rd_kafka_conf_set_opaque)
#define rd_kafka_new (*cstreams_p_rd_kafka_new)
#define rd_kafka_destroy (*cstreams_p_rd_kafka_destroy)
#define rd_kafka_name (*cstreams_p_rd_kafka_name)
#define rd_kafka_set_log_queue (*cstreams_p_rd_kafka_set_log_queue)
#define rd_kafka_poll (*cstreams_p_rd_kafka_poll)
#define rd_kafka_flush (*cstreams_p_rd_kafka_flush)
#define rd_kafka_purge (*cstreams_p_rd_kafka_purge)
#define rd_kafka_outq_len (*cstreams_p_rd_kafka_outq_len)
#define rd_kafka_topic_new (*cstreams_p_rd_kafka_topic_new)
#define rd_kafka_topic_destroy (*cstreams_p_rd_kafka_topic_destroy)
#define rd_kafka_produceva (*cstreams_p_rd_kafka_produceva)
#define rd_kafka_error_code (*cstreams_p_rd_kafka_error_code)
#define rd_kafka_error_string (*cstreams_p_rd_kafka_error_string)
#define rd_kafka_error_is_fatal (*cstreams_p_rd_kafka_error_is_fatal)
#define rd_kafka_error_is_retriable (*cstreams_p_rd_kafka_error_is_retriable)
#define rd_kafka_error_txn_requires_abort (*cstreams_p_rd_kafka_error_txn_requires_abort)
#define rd_kafka_error_destroy (*cstreams_p_rd_kafka_error_destroy)
#define rd_kafka_init_transactions (*cstreams_p_rd_kafka_init_transactions)
#define rd_kafka_begin_transaction (*cstreams_p_rd_kafka_begin_transaction)
#define rd_kafka_send_offsets_to_transaction (*cstreams_p_rd_kafka_send_offsets_to_transaction)
#define rd_kafka_commit_transaction (*cstreams_p_rd_kafka_commit_transaction)
#define rd_kafka_abort_transaction (*cstreams_p_rd_kafka_abort_transaction)
#define rd_kafka_consumer_group_metadata_read (*cstreams_p_rd_kafka_consumer_group_metadata_read)
#define rd_kafka_consumer_group_metadata_destroy (*cstreams_p_rd_kafka_consumer_group_metadata_destroy)
#define rd_kafka_topic_partition_list_new (*cstreams_p_rd_kafka_topic_partition_list_new)
#define rd_kafka_topic_partition_list_destroy (*cstreams_p_rd_kafka_topic_partition_list_destroy)
#define rd_kafka_topic_partition_list_add (*cstreams_p_rd_kafka_topic_partition_list_add)
#define rd_kafka_metadata (*cstreams_p_rd_kafka_metadata)
#define rd_kafka_metadata_destroy (*cstreams_p_rd_kafka_metadata_destroy)
#define rd_kafka_queue_get_consumer (*cstreams_p_rd_kafka_queue_get_consumer)
#define rd_kafka_queue_cb_event_enable (*cstreams_p_rd_kafka_queue_cb_event_enable)
#define rd_kafka_queue_yield (*cstreams_p_rd_kafka_queue_yield)

#endif
