"""Variants (c) and (d): W1 as a cstreams topology, run by cs.App in this process.

    source (STRING keys, JSON values) -> count (built-in, RocksDB store with changelog)
        -> sink (STRING keys, INT64 counts)

The steady-state probe hooks the client classes the runtime builds, at a cost of one Python
call per consume() batch and per commit, never per record:
  first output   the first consume() of the main consumer that returns input records once
                 the warm-up window has been handed out (the floor and the hand-written loop
                 sample at the same point);
  last produced  the next consume() after the N-th input record was handed out: the batch
                 holding it has been processed and its output produced;
  last acked     the commit whose offsets cover all N input records (at-least-once: the
                 consumer's synchronous commit, after producer.flush(); exactly-once: the
                 transaction commit that carries the offsets, hooked in cstreams'
                 TransactionalProducer.commit since the native producer is not
                 confluent-kafka's).
"""

from __future__ import annotations

import threading

import confluent_kafka
from _common import CONSUMER_GROUP_SETTINGS, PRODUCER_SETTINGS, SteadyStateProbe, emit, parse_args


def w1_topology(input_topic: str, output_topic: str, store: str = "counts"):
    import cstreams as cs

    topo = cs.Topology()
    topo.add_source("in", topics=[input_topic], key_serde=cs.serde.STRING,
                    value_serde=cs.serde.JSON)
    topo.add_store(cs.stores.rocksdb(store, key_serde=cs.serde.STRING,
                                     value_serde=cs.serde.INT64))
    topo.add_processor("count", cs.processors.count(store), parents=["in"], stores=[store])
    topo.add_sink("out", topic=output_topic, parents=["count"], key_serde=cs.serde.STRING,
                  value_serde=cs.serde.INT64)
    return topo


class Hooks:
    """Tracks input records handed out and input offsets committed, for the probe."""

    def __init__(self, probe: SteadyStateProbe, input_topic: str) -> None:
        self.probe = probe
        self.input_topic = input_topic
        self.consumed = 0
        self.committed: dict[int, int] = {}
        self.done = threading.Event()

    def on_consume(self, msgs) -> None:
        if self.consumed >= self.probe.records:
            self.probe.processed_all()
        if msgs:
            self.probe.first_output(self.consumed)
            self.consumed += len(msgs)

    def on_native_records(self, n: int) -> None:
        # The native data path hands records out of its own queue, not through consume().
        if n:
            self.probe.first_output(self.consumed)
            self.consumed += n

    def _offsets(self, tps) -> dict[int, int]:
        return {tp.partition: tp.offset for tp in tps or ()
                if tp.topic == self.input_topic and tp.offset >= 0}

    def on_commit(self, offsets) -> None:
        self.committed.update(self._offsets(offsets))
        if sum(self.committed.values()) >= self.probe.records:
            self.probe.processed_all()
            self.probe.last_output()
            self.done.set()


def install_hooks(hooks: Hooks) -> None:
    """Replace confluent_kafka's client classes before cstreams imports them."""

    class ProbeConsumer(confluent_kafka.Consumer):
        _main = False

        def subscribe(self, *args, **kwargs):
            self._main = True  # the main consumer; the restore consumer only assign()s
            return super().subscribe(*args, **kwargs)

        def consume(self, *args, **kwargs):
            msgs = super().consume(*args, **kwargs)
            if self._main:
                hooks.on_consume(msgs)
            return msgs

        def commit(self, *args, **kwargs):
            result = super().commit(*args, **kwargs)
            if self._main:
                offsets = kwargs.get("offsets")
                if offsets is None and args and isinstance(args[0], list):
                    offsets = args[0]
                if offsets is None and "message" not in kwargs:
                    offsets = self.position(self.assignment())
                if offsets is not None:
                    hooks.on_commit(offsets)
            return result

    confluent_kafka.Consumer = ProbeConsumer
    # Exactly-once: the transaction commit that carries the offsets, hooked in cstreams'
    # TransactionalProducer, whichever producer it holds (confluent-kafka's, or the native
    # one of issue 18, which is not a confluent_kafka.Producer).
    from cstreams.runtime import transaction

    real_commit = transaction.TransactionalProducer.commit

    def commit(self, offsets, group_metadata):
        result = real_commit(self, offsets, group_metadata)
        hooks.on_commit(offsets)
        return result

    transaction.TransactionalProducer.commit = commit


def data_path() -> str:
    from cstreams import _impl

    return "native" if _impl.native_kafka() is not None else "confluent-kafka"


def install_native_hook(hooks: Hooks) -> None:
    """On the native data path (issue 18) records come from StreamThread._poll's native
    queue: count them there, once per poll, as the consume() hook does on the other path."""
    from cstreams.runtime import stream_thread

    poll = stream_thread.StreamThread._poll

    def _poll(self, max_records, timeout):
        native = self.native
        if native is None:
            return poll(self, max_records, timeout)
        before = native.consumed
        out = poll(self, max_records, timeout)
        hooks.on_native_records(native.consumed - before)   # consume()'s are hooked there
        return out

    stream_thread.StreamThread._poll = _poll


def main() -> None:
    args = parse_args(__doc__)
    variant = "cstreams" if args.guarantee == "at_least_once" else "cstreams-eos"
    probe = SteadyStateProbe(args.records, args.warmup)
    hooks = Hooks(probe, args.input)
    install_hooks(hooks)

    import cstreams as cs

    install_native_hook(hooks)
    ablated = [a.strip() for a in args.ablate.split(",") if a.strip()]
    if ablated:
        from ablate import apply

        apply(ablated)
        variant += "-without-" + "+".join(ablated)
    try:
        app_cls = cs.App
    except (AttributeError, ImportError) as exc:
        emit({"variant": variant, "unavailable": f"cstreams.App: {exc}"})
        return
    config = {**CONSUMER_GROUP_SETTINGS, **PRODUCER_SETTINGS}
    kwargs = dict(application_id=args.group, bootstrap_servers=args.bootstrap,
                  state_dir=args.state_dir, config=config,
                  commit_interval_ms=args.commit_interval_ms)
    if args.guarantee != "at_least_once":
        kwargs["processing_guarantee"] = args.guarantee
    if args.max_batch_latency_ms is not None:
        kwargs["max_batch_latency_ms"] = args.max_batch_latency_ms
        variant += f"-latency-{args.max_batch_latency_ms:g}ms"
    if args.max_poll_records is not None:
        kwargs["max_poll_records"] = args.max_poll_records
    topo = w1_topology(args.input, args.output)
    try:
        app = app_cls(topo, **kwargs)
    except (TypeError, ValueError, cs.CStreamsError) as exc:
        if args.guarantee == "at_least_once":
            raise
        emit({"variant": variant, "unavailable": f"{type(exc).__name__}: {exc}"})
        return
    app.start()
    try:
        if not hooks.done.wait(args.timeout):
            raise SystemExit(f"{variant}: timed out: {hooks.consumed} input records handed out, "
                             f"{sum(hooks.committed.values())} committed of {args.records}")
        m = app.metrics()
        result = probe.report(variant, commit_interval_ms=args.commit_interval_ms,
                              implementation=cs.IMPLEMENTATION,
                              data_path=data_path(),
                              poll_size=m.get("poll_size"),
                              batch_latency_ms_p50=m.get("batch_latency_ms_p50"),
                              batch_latency_ms_p99=m.get("batch_latency_ms_p99"),
                              batch_latency_ms_max=m.get("batch_latency_ms_max"))
    finally:
        app.close()
    emit(result)


if __name__ == "__main__":
    main()
