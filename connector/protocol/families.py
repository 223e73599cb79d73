"""The families of records the connector produces: one Avro schema and one
Kafka topic each."""

from __future__ import annotations

from enum import StrEnum


class Family(StrEnum):
    """What kind of record an event becomes.

    The DLQ is deliberately absent: it carries raw bytes, not a schema.
    """

    prices = "prices"
    book = "book"
    orders = "orders"
    fills = "fills"
    tca = "tca"
    traces = "traces"
    funding = "funding"
    fair_price = "fair_price"
    markets_new = "markets_new"
    markets_resolved = "markets_resolved"
    alerts = "alerts"
    control = "control"


# The account's own streams: orders, fills and TCA. Their dedupe state and
# their REST backfill watermarks need a single owner (one process, one shard).
ACCOUNT_FAMILIES = frozenset({Family.orders, Family.fills, Family.tca})
# Their channel names on /v1/stream are the family names.
ACCOUNT_CHANNELS = frozenset(f.value for f in ACCOUNT_FAMILIES)
# The lifecycle sockets by their settings name, and the family each produces.
LIFECYCLE_FAMILIES = {"new_markets": Family.markets_new,
                      "market_resolved": Family.markets_resolved}

