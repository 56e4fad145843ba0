"""The Kafka runtime behind cstreams.App: one module per concern.

- config: the client settings the runtime owns and how user settings pass through;
- collector: sink output to the producer, delivery failures remembered;
- changelog: store flushes to changelog topics, acknowledged offsets tracked;
- topics: broker metadata checks and changelog topic creation;
- restore: changelog restoration into local stores;
- task_manager: assignment -> tasks, revocation -> commit and close;
- commit: the at-least-once commit protocol;
- metrics: counters, the snapshot and the periodic progress line;
- stream_thread: the poll loop.
"""
