"""cstreams' internals, apart from the public API: the task (cstreams.internals.task), the one
module that imports confluent_kafka (cstreams.internals.kafka) and the task state directories
(cstreams.internals.state). The runtime (cstreams.runtime) and the test driver build on them;
user code should not import them."""
