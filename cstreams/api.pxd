# cstreams' public Cython API: `from cstreams.api cimport ...` in a user's .pyx.
#
# Everything here is a re-export of the compiled core's declarations (cstreams/_core/*.pxd),
# so that user code names one stable module. A module compiled against these declarations
# depends on the core's C layout (object structs, vtables): rebuild it whenever the cstreams
# major.minor version changes, and call check_abi(__name__) at the top of the module so that a
# stale build fails at import with a clear ImportError instead of crashing.

from cstreams._core.record cimport (
    Record,
    RecordBatch,
    batch_size,
    key_at,
    make_batch,
    offset_at,
    timestamp_at,
    value_at,
)
from cstreams._core.processor cimport BatchProcessor
from cstreams._core.context cimport ProcessorContext
from cstreams._core.store cimport KeyValueStore
from cstreams._core.serde cimport Serde


# The cstreams major.minor these declarations describe, compiled into the user's module.
# tests/integration/test_cython_user.py checks it against cstreams.__version__.
cdef extern from *:
    """
    #define CSTREAMS_ABI_VERSION "0.1"
    """
    const char *CSTREAMS_ABI_VERSION


cdef inline int check_abi(str module_name) except -1:
    """Raise ImportError unless the running cstreams has the major.minor this module was
    compiled against, and its compiled core is loaded."""
    from cstreams._abi import check
    check(module_name, (<bytes>CSTREAMS_ABI_VERSION).decode("ascii"))
    return 0
