"""Per-user totals in the Streams DSL: payments {"user": ..., "amount": n} (JSON, keyed by
anything) in, the running total and count per user out.

    payments -> drop invalid amounts -> group by user (repartition) -> aggregate into
    {"count", "total"} (RocksDB store "totals-store") -> user-totals (STRING user, JSON)

    cstreams run examples.user_totals:build_topology --application-id totals \
        --bootstrap-servers localhost:9092
"""

from __future__ import annotations

import cstreams as cs

S, J = cs.serde.STRING, cs.serde.JSON


def build_topology(input_topic="payments", output_topic="user-totals"):
    builder = cs.StreamsBuilder()
    (builder.stream(input_topic, key_serde=S, value_serde=J)
     .filter(lambda _k, p: isinstance(p.get("amount"), int) and p["amount"] > 0)
     .group_by(lambda _k, p: p["user"], key_serde=S, value_serde=J, name="by-user")
     .aggregate(lambda: {"count": 0, "total": 0},
                lambda _user, p, agg: {"count": agg["count"] + 1,
                                       "total": agg["total"] + p["amount"]},
                value_serde=J, name="totals")
     .to_stream()
     .to(output_topic))
    return builder.build()


if __name__ == "__main__":
    print(build_topology().describe())
