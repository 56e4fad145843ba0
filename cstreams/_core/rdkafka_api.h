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
 * fields are read (rd_kafka_message_t, the partition list, rd_kafka_vu_t) are spelled out,
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
    RD_KAFKA_RESP_ERR__TIMED_OUT = -185,
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
       const void **valuep, size_t *sizep))

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

#endif
