"""Switch off, in the W1 worker process only, one optimisation of the runtime at a time, so
that bench/e2e.py measures each one's effect in the same run as the full build
(``--ablate gc,produce,keys,checkpoint``). Each patch restores the code path of before the
optimisation; nothing here is used outside the benchmark.

  gc          no gc.freeze() / raised gen0 threshold in the stream thread
  produce     the per-record Python produce loop (keyword timestamp=) instead of the compiled
              produce_batch, for the sink and the changelog producer
  keys        no reuse of consumed key bytes (the sink and count() serialize keys again)
  checkpoint  a checkpoint file written (and fsynced) per task on every commit
"""

from __future__ import annotations

KNOWN = ("gc", "produce", "keys", "checkpoint")


def _python_produce_loop(producer, topic, values, keys, partitions, timestamps=None,
                         headers=None, last_on_delivery=None, poll_timeout=0.05):
    n = len(keys)
    start = i = 0
    produce = producer.produce
    one = partitions if type(partitions) is int else None
    while start < n:
        try:
            if timestamps is None:
                for i in range(start, n):
                    produce(topic, values[i], keys[i], one if one is not None else partitions[i])
            elif headers is None:
                for i in range(start, n):
                    produce(topic, values[i], keys[i], partitions[i], timestamp=timestamps[i])
            else:
                for i in range(start, n):
                    produce(topic, values[i], keys[i], partitions[i], timestamp=timestamps[i],
                            headers=headers[i])
            start = n
        except BufferError:
            start = i
            producer.poll(poll_timeout)
    if last_on_delivery is not None:
        raise RuntimeError("ablation of 'produce' supports the at-least-once changelog only")
    return n


def apply(names: list[str]) -> None:
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise SystemExit(f"unknown ablations {unknown}; known: {KNOWN}")
    if "gc" in names:
        from cstreams.runtime import stream_thread
        stream_thread._gc_tune = lambda: None
        stream_thread._gc_restore = lambda: None
    if "produce" in names:
        # The collector binds produce_batch when it is built, the changelog producer at each
        # call: both see the patched module attribute (the App is built after this).
        from cstreams._impl import produce
        produce.produce_batch = _python_produce_loop
    if "keys" in names:
        from cstreams.internals.task import Task
        Task._key_origin = property(lambda self: None, lambda self, value: None)
    if "checkpoint" in names:
        from cstreams.runtime.task_manager import TaskManager
        orig = TaskManager.write_checkpoints

        def write_always(self, force=True):
            return orig(self, force=True)
        TaskManager.write_checkpoints = write_always
