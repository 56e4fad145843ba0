"""A table example in the Streams DSL: users per city, kept right as users move or leave.

    users (table: user -> {"city", "active"}; a null value deletes the user; the topic is the
    table store's changelog) -> keep active users -> regroup by city (repartition) -> count
    with retraction: a user who moves leaves the old city's count and joins the new one ->
    city-counts (STRING city, INT64 count)

    cstreams run examples.city_counts:build_topology --application-id cities \
        --bootstrap-servers localhost:9092
"""

from __future__ import annotations

import cstreams as cs

S, J = cs.serde.STRING, cs.serde.JSON


def build_topology(input_topic="users", output_topic="city-counts"):
    builder = cs.StreamsBuilder()
    (builder.table(input_topic, key_serde=S, value_serde=J, name="users")
     .filter(lambda _user, u: u.get("active", True))
     .group_by(lambda user, u: (u["city"], user), value_serde=S, name="by-city")
     .count(name="per-city")
     .to_stream()
     .to(output_topic))
    return builder.build()


if __name__ == "__main__":
    print(build_topology().describe())
