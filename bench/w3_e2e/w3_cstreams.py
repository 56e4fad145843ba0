"""W3 in cstreams (DSL), run by cs.App in this process: orders joined to the customers
table, each enriched order produced.

    table(customers: STRING, JSON, no cache)
    stream(orders: STRING, JSON).join(customers, enrich) -> to(output: STRING, JSON)

Same probe and client settings as bench/e2e's W1 worker (w1_cstreams.py): first output at
the first consume() returning records, processed once every input record (customers and
orders) was handed out, acknowledged at the commit covering every order.
``max_task_idle_ms=1000``: the join's tasks wait up to 1 s for a partition with nothing
fetched yet, so that customers (earlier timestamps) are processed before their orders.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

import w1_cstreams  # noqa: E402
from _common import (  # noqa: E402
    CONSUMER_GROUP_SETTINGS,
    PRODUCER_SETTINGS,
    SteadyStateProbe,
    emit,
    parse_args,
)


def enrich(order, customer):
    return {"order": order["order"], "amount": order["amount"], "name": customer["name"]}


def w3_topology(customers_topic, orders_topic, output_topic):
    import cstreams as cs

    S, J = cs.serde.STRING, cs.serde.JSON
    b = cs.StreamsBuilder()
    customers = b.table(customers_topic, key_serde=S, value_serde=J, name="customers",
                        cache=False)
    (b.stream(orders_topic, key_serde=S, value_serde=J)
     .join(customers, enrich, value_serde=J, name="enrich")
     .to(output_topic))
    return b.build()


class W3Hooks(w1_cstreams.Hooks):
    """Hands-out counted over both topics; commits over the orders topic."""

    def __init__(self, probe, orders_topic, total):
        super().__init__(probe, orders_topic)
        self.total = total

    def on_consume(self, msgs):
        if self.consumed >= self.total:
            self.probe.processed_all()
        if msgs:
            if self.consumed == 0:
                self.probe.first_output()
            self.consumed += len(msgs)


def main() -> None:
    p_args = parse_args(__doc__)
    customers_topic, orders_topic, customers = p_args.input.split(",")
    variant = "cstreams" if p_args.guarantee == "at_least_once" else "cstreams-eos"
    probe = SteadyStateProbe(p_args.records)
    hooks = W3Hooks(probe, orders_topic, p_args.records + int(customers))
    w1_cstreams.install_hooks(hooks)

    import cstreams as cs

    kwargs = dict(application_id=p_args.group, bootstrap_servers=p_args.bootstrap,
                  state_dir=p_args.state_dir,
                  config={**CONSUMER_GROUP_SETTINGS, **PRODUCER_SETTINGS},
                  commit_interval_ms=p_args.commit_interval_ms,
                  processing_guarantee=p_args.guarantee, max_task_idle_ms=1000)
    app = cs.App(w3_topology(customers_topic, orders_topic, p_args.output), **kwargs)
    app.start()
    try:
        if not hooks.done.wait(p_args.timeout):
            raise SystemExit(f"{variant}: timed out: {hooks.consumed} records handed out, "
                             f"{sum(hooks.committed.values())} orders committed of "
                             f"{p_args.records}")
        m = app.metrics()
        result = probe.report(variant, commit_interval_ms=p_args.commit_interval_ms,
                              implementation=cs.IMPLEMENTATION, poll_size=m.get("poll_size"),
                              batch_latency_ms_p50=m.get("batch_latency_ms_p50"),
                              batch_latency_ms_p99=m.get("batch_latency_ms_p99"),
                              batch_latency_ms_max=m.get("batch_latency_ms_max"))
    finally:
        app.close()
    emit(result)


if __name__ == "__main__":
    main()
