"""The real connector, in its own process, measured from the outside.

Nothing in ``connector/`` changes for the benchmark. A subclass adds two
hooks, each one call per record or per session:

- ``_prepare`` (once, before any socket opens): one record to the run's
  ``<prefix>.bench-warmup`` topic, waited for. librdkafka's idempotent
  producer holds its first delivery ~0.5 s (producer id) on this broker;
  every producer in the bench is warmed the same way, so figures are steady
  state rather than start-up;
- ``_stream_session`` (once, when the subscribe ack arrives): CPU clock start;
- ``_acked`` extends the connector's own acknowledgement listener: counts acks, keeps
  the earliest ``recv_ns`` (the first frame's socket receive time), stops
  the clocks at the N-th ack, and in latency runs records the exact
  socket-receive -> Kafka-ack time of every record (the same quantity the
  connector observes into its ``added_latency`` histogram, without buckets).
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from collections.abc import Sequence

from bench.procs import Result, cpu_s, peak_rss_mb
from bench.stats import percentile
from connector.app import Connector
from connector.config import Settings, load_settings

WARMUP_FRACTION = 0.01  # latency: the first 1% of records (connection warm-up) is not counted


def warmup_topic(prefix: str) -> str:
    return f"{prefix}.bench-warmup"


class BenchConnector(Connector):
    def __init__(self, settings: Settings, expected: int, record_latency: bool) -> None:
        super().__init__(settings)
        self.expected = expected
        self.acked = 0
        self.first_recv_ns: int | None = None
        self.end_ns = 0
        self.cpu_start = 0.0
        self.cpu_end = 0.0
        self.latencies: array[int] | None = array("q") if record_latency else None
        self.done = asyncio.Event()
        self._warmup = warmup_topic(settings.kafka.topic_prefix)

    async def _prepare(self) -> None:
        await super()._prepare()
        sink = self.sink
        assert sink is not None
        before = sink.delivered
        sink.produce(warmup_topic(self.settings.kafka.topic_prefix), b"warm-up")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while sink.delivered == before and loop.time() < deadline:
            sink.poll(0)
            await asyncio.sleep(0.005)
        if sink.delivered == before:
            raise TimeoutError("warm-up record not acknowledged within 30 s")

    async def _stream_session(self, epoch: int, subscribed: Sequence[str],
                              rejected: Sequence[tuple[str, str]]) -> None:
        if epoch == 1:
            self.cpu_start = cpu_s()
        await super()._stream_session(epoch, subscribed, rejected)

    def _acked(self, topic: str, recv_ns: int, event_ns: int) -> None:
        super()._acked(topic, recv_ns, event_ns)
        if topic == self._warmup:
            return
        now = time.time_ns()
        self.acked += 1
        if self.first_recv_ns is None or recv_ns < self.first_recv_ns:
            self.first_recv_ns = recv_ns
        if self.latencies is not None:
            self.latencies.append(now - recv_ns)
        if self.acked == self.expected:
            self.end_ns = now
            self.cpu_end = cpu_s()
            self.done.set()


def bench_settings(*, base_url: str, topics: Sequence[str], api_key: str, bootstrap: str,
                   registry_url: str, prefix: str, partitions: int) -> Settings:
    return load_settings(env={"SEQUENCE_API_KEY": api_key}, overrides={
        "sequence": {"base_url": base_url, "stream_topics": tuple(topics),
                     "lifecycle": (), "sse": ()},
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix,
                  "partitions": partitions},
        "schema_registry": {"url": registry_url},
        "connector": {"instance_id": "bench"},
        "observe": {"metrics_port": 0, "log_format": "text", "log_level": "WARNING"},
    })


def run_connector(*, base_url: str, topics: list[str], api_key: str, bootstrap: str,
                  registry_url: str, prefix: str, partitions: int, events: int,
                  record_latency: bool, timeout_s: float) -> Result:
    logging.basicConfig(level=logging.WARNING)
    settings = bench_settings(base_url=base_url, topics=topics, api_key=api_key,
                              bootstrap=bootstrap, registry_url=registry_url, prefix=prefix,
                              partitions=partitions)
    return asyncio.run(_run(settings, events, record_latency, timeout_s))


async def _run(settings: Settings, events: int, record_latency: bool,
               timeout_s: float) -> Result:
    connector = BenchConnector(settings, events, record_latency)
    runner = asyncio.create_task(connector.run(), name="connector")
    done = asyncio.create_task(connector.done.wait())
    await asyncio.wait([runner, done], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finished = connector.done.is_set()
    connector.stop()
    done.cancel()
    await runner  # a connector error surfaces here, as the run's failure
    if not finished:
        raise TimeoutError(f"connector acked {connector.acked} of {events} records "
                           f"in {timeout_s:.0f}s (produced: {dict(connector.produced)})")
    assert connector.first_recv_ns is not None
    seconds = (connector.end_ns - connector.first_recv_ns) / 1e9
    cpu = connector.cpu_end - connector.cpu_start
    result: Result = {
        "events": events,
        "seconds": seconds,
        "events_per_s": events / seconds,
        "cpu_s": cpu,
        "cpu_s_per_million": cpu / events * 1e6,
        "peak_rss_mb": peak_rss_mb(),
        "dlq": connector.bridge.dlq_count,
    }
    if connector.latencies is not None:
        lat = sorted(connector.latencies[int(len(connector.latencies) * WARMUP_FRACTION):])
        result["latency_ms"] = {name: percentile(lat, q) / 1e6
                                for name, q in (("p50", 50), ("p99", 99), ("p999", 99.9))}
        result["latency_ms"]["max"] = lat[-1] / 1e6
    return result
