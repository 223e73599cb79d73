"""Prometheus metrics: one registry per connector instance.

A private registry (not the process-global default) lets tests and the demo
run several connectors in one process without name clashes.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
AGE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        p = "sequence_connector_"
        # The per-record metrics are plain ints exported at scrape time (see
        # FastCounter): prometheus_client's take a lock per inc/observe, which
        # cost ~10 µs per record on the hot path.
        self.events_received = FastCounter(
            p + "events_received_total", "Events received from Sequence", ["family", "source"],
            registry=r)
        self.records_produced = FastCounter(
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
        self.added_latency = FastHistogram(
            p + "added_latency_seconds", "Socket receive to Kafka ack", ["topic"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.event_age = FastHistogram(
            p + "event_age_seconds", "Vendor event time to Kafka ack", ["topic"],
            buckets=AGE_BUCKETS, registry=r)


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class HistogramChild:
    """Bucket counts (not cumulative) and a sum; ``observe`` is one bisect."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le: value <= bound
        self.sum += value


class _FastMetric(Collector):
    """Labelled metric for the per-record path, exported by a collector.

    Updated only from the event loop's thread, without a lock: an update is
    a few bytecodes on plain ints. A scrape (another thread) copies the
    values under the GIL, so it may see a sum and buckets one observation
    apart, never a torn number: fine for monitoring, and ~10x cheaper than
    prometheus_client's locked children.
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry) -> None:
        self._name = name
        self._doc = documentation
        self._labelnames = list(labelnames)
        self._children: dict[tuple[str, ...], object] = {}
        registry.register(self)

    def _labels(self, values: tuple[str, ...], make: Callable[[], object]) -> object:
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self._labelnames):
                raise ValueError(f"{self._name}: expected labels {self._labelnames}")
            child = self._children[values] = make()
        return child

    def describe(self) -> list[object]:
        return []  # unchecked collector: names are unique by construction


class FastCounter(_FastMetric):
    def labels(self, *values: str) -> CounterChild:
        return self._labels(tuple(values), CounterChild)  # type: ignore[return-value]

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._doc, labels=self._labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.value)  # type: ignore[attr-defined]
        yield family


class FastHistogram(_FastMetric):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        super().__init__(name, documentation, labelnames, registry)
        self._bounds = tuple(float(b) for b in buckets)

    def labels(self, *values: str) -> HistogramChild:
        return self._labels(tuple(values),  # type: ignore[return-value]
                            lambda: HistogramChild(self._bounds))

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self._name, self._doc, labels=self._labelnames)
        for values, child in list(self._children.items()):
            counts = list(child.counts)  # type: ignore[attr-defined]
            total = child.sum  # type: ignore[attr-defined]
            cumulative, running = [], 0
            for bound, count in zip((*self._bounds, float("inf")), counts, strict=True):
                running += count
                cumulative.append((floatToGoString(bound), running))  # type: ignore[no-untyped-call]
            family.add_metric(list(values), cumulative, sum_value=total)
        yield family


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
