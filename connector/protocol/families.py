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
