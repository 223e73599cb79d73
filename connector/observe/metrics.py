"""Prometheus metrics: one registry per connector instance.

A private registry (not the process-global default) lets tests and the demo
run several connectors in one process without name clashes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
AGE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        p = "sequence_connector_"
        self.events_received = Counter(
            p + "events_received_total", "Events received from Sequence", ["family", "source"],
            registry=r)
        self.records_produced = Counter(
            p + "records_produced_total", "Records acknowledged by Kafka", ["topic"], registry=r)
        self.delivery_errors = Counter(
            p + "delivery_errors_total", "Records Kafka failed to acknowledge", ["topic"],
            registry=r)
        self.dlq_records = Counter(
            p + "dlq_records_total", "Records sent to the dead-letter topic", ["stage"],
            registry=r)
        self.dedupe_hits = Counter(
            p + "dedupe_hits_total", "Duplicates dropped before producing", ["family"],
            registry=r)
        self.unknown_fields = Counter(
            p + "unknown_fields_total", "Vendor fields not in our schema (carried or dropped)",
            ["family"], registry=r)
        self.gaps = Counter(p + "gaps_total", "Gap events from Sequence", ["family"], registry=r)
        self.gap_dropped = Counter(
            p + "gap_dropped_events_total", "Events Sequence said it dropped", ["family"],
            registry=r)
        self.reconnects = Counter(
            p + "reconnects_total", "Socket reconnects", ["stream"], registry=r)
        self.rejected_topics = Counter(
            p + "subscribe_rejected_total", "Topics Sequence rejected on subscribe", ["topic"],
            registry=r)
        self.resnapshots = Counter(
            p + "resnapshots_total", "Re-snapshots taken from REST", ["family"], registry=r)
        self.backfilled = Counter(
            p + "backfilled_records_total", "Records recovered by REST backfill", ["family"],
            registry=r)
        self.control_records = Counter(
            p + "control_records_total", "Control records written", ["kind"], registry=r)
        self.producer_rebuilds = Counter(
            p + "producer_rebuilds_total",
            "Producers rebuilt after a fatal error; unacknowledged records resent", registry=r)
        self.queue_depth = Gauge(
            p + "handoff_queue_records", "Records waiting between socket and producer",
            registry=r)
        self.producer_queue = Gauge(
            p + "producer_queue_records", "Records in librdkafka's queue", registry=r)
        self.connected = Gauge(
            p + "connected", "1 when the stream is connected and subscribed", ["stream"],
            registry=r)
        self.added_latency = Histogram(
            p + "added_latency_seconds", "Socket receive to Kafka ack", ["topic"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.event_age = Histogram(
            p + "event_age_seconds", "Vendor event time to Kafka ack", ["topic"],
            buckets=AGE_BUCKETS, registry=r)


class FreshnessCollector(Collector):
    """Per-family freshness computed at scrape time: now minus the last event."""

    def __init__(self, last_event_ns: Callable[[], Mapping[str, int]]) -> None:
        self._last = last_event_ns

    def collect(self) -> Iterator[GaugeMetricFamily]:
        last = GaugeMetricFamily("sequence_connector_last_event_timestamp_seconds",
                                 "Receive time of the last event", labels=["family"])
        fresh = GaugeMetricFamily("sequence_connector_freshness_seconds",
                                  "Seconds since the last event of the family",
                                  labels=["family"])
        now = time.time_ns()
        for family, ns in self._last().items():
            last.add_metric([family], ns / 1e9)
            fresh.add_metric([family], max(0.0, (now - ns) / 1e9))
        yield last
        yield fresh
