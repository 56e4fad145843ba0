cpdef list count_batch(object store, object keys, object key_bytes=*)
