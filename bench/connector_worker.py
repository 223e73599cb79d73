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
import shutil
import tempfile
import time
from array import array
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.procs import Result, cpu_s, peak_rss_mb
from bench.stats import latency_ms
from connector.app import Connector
from connector.config import Settings, load_settings


def warmup_topic(prefix: str) -> str:
    return f"{prefix}.bench-warmup"


class BenchConnector(Connector):
    def __init__(self, settings: Settings, expected: int, record_latency: bool,
                 start_gate: str | None = None) -> None:
        super().__init__(settings, tune_gc=True)  # as the CLI runs it
        self.start_gate = Path(start_gate) if start_gate else None
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
        assert sink is not None  # noqa: S101 - for mypy: the connector's _prepare built it
        before = sink.delivered
        sink.produce(warmup_topic(self.settings.kafka.topic_prefix), b"warm-up")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while sink.delivered == before and loop.time() < deadline:
            sink.poll(0)
            await asyncio.sleep(0.005)
        if sink.delivered == before:
            raise TimeoutError("warm-up record not acknowledged within 30 s")
        if self.start_gate is not None:
            # workers of one measurement start reading together, not as each
            # finishes its own start-up (which would stretch the window)
            (self.start_gate / f"ready-{self.settings.connector.instance_id}").touch()
            go = self.start_gate / "go"
            while not go.exists() and loop.time() < deadline + 60:
                await asyncio.sleep(0.002)

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
                   registry_url: str, prefix: str, partitions: int,
                   instance_id: str = "bench",
                   producer: dict[str, Any] | None = None) -> Settings:
    return load_settings(env={"SEQUENCE_API_KEY": api_key}, overrides={
        "sequence": {"base_url": base_url, "stream_topics": tuple(topics),
                     "lifecycle": (), "sse": ()},
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix,
                  "partitions": partitions, "producer": dict(producer or {})},
        "schema_registry": {"url": registry_url},
        "connector": {"instance_id": instance_id},
        "observe": {"metrics_port": 0, "log_format": "text", "log_level": "WARNING"},
    })


def run_connector(*, base_url: str, topics: list[str], api_key: str, bootstrap: str,
                  registry_url: str, prefix: str, partitions: int, events: int,
                  record_latency: bool, timeout_s: float, instance_id: str = "bench",
                  start_gate: str | None = None,
                  producer: dict[str, Any] | None = None) -> Result:
    logging.basicConfig(level=logging.WARNING)
    settings = bench_settings(base_url=base_url, topics=topics, api_key=api_key,
                              bootstrap=bootstrap, registry_url=registry_url, prefix=prefix,
                              partitions=partitions, instance_id=instance_id,
                              producer=producer)
    return asyncio.run(_run(settings, events, record_latency, timeout_s, start_gate))


async def _run(settings: Settings, events: int, record_latency: bool,
               timeout_s: float, start_gate: str | None = None) -> Result:
    connector = BenchConnector(settings, events, record_latency, start_gate)
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
    assert connector.first_recv_ns is not None  # noqa: S101 - for mypy: it acked every record
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
        "first_recv_ns": connector.first_recv_ns,
        "end_ns": connector.end_ns,
    }
    if connector.latencies is not None:
        result["latency_ms"] = latency_ms(connector.latencies)
    return result


def run_connector_workers(*, workers: int, frames_path: str, base_url: str, topics: list[str],
                          api_key: str, bootstrap: str, registry_url: str, prefix: str,
                          partitions: int, events: int, timeout_s: float,
                          producer: dict[str, Any] | None = None) -> Result:
    """The connector with ``connector.workers: N``, measured as one.

    The data path of a multi-worker connector is N ordinary connector
    processes, each with the subscriptions ``connector.shard.shard_plan``
    gives it (the supervisor only forwards signals and serves the port).
    So each worker here is a ``BenchConnector`` in its own process with
    exactly that share, all started together; the feed server sends each
    socket only its channels' frames. events/s = all records / (first
    socket receive in any worker -> last acknowledgement in any worker);
    CPU and RSS are the workers' sums.
    """
    from bench.feed import read_frames
    from bench.feed_server import frame_channel
    from bench.procs import run_in_child
    from connector.shard import shard_plan

    settings = bench_settings(base_url=base_url, topics=topics, api_key=api_key,
                              bootstrap=bootstrap, registry_url=registry_url, prefix=prefix,
                              partitions=partitions)
    shards = shard_plan(settings, workers)
    channels = [frame_channel(f) for f in read_frames(Path(frames_path), events)]
    gate = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    jobs = []
    for shard in shards:
        wanted = set(shard.stream_topics)
        expected = sum(1 for c in channels if c in wanted)
        if expected:
            jobs.append({"base_url": base_url, "topics": list(shard.stream_topics),
                         "api_key": api_key, "bootstrap": bootstrap,
                         "registry_url": registry_url, "prefix": prefix,
                         "partitions": partitions, "events": expected,
                         "record_latency": False, "timeout_s": timeout_s,
                         "instance_id": f"bench-w{shard.index}", "start_gate": str(gate),
                         "producer": producer})
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(run_in_child, run_connector, job, limit_s=timeout_s + 60)
                   for job in jobs]
        deadline = time.monotonic() + 120
        while (len(list(gate.glob("ready-*"))) < len(jobs) and time.monotonic() < deadline
               and not any(f.done() for f in futures)):
            time.sleep(0.01)
        (gate / "go").touch()
        results = [f.result() for f in futures]
    shutil.rmtree(gate, ignore_errors=True)
    total = sum(r["events"] for r in results)
    seconds = (max(r["end_ns"] for r in results)
               - min(r["first_recv_ns"] for r in results)) / 1e9
    cpu = sum(r["cpu_s"] for r in results)
    return {"events": total, "seconds": seconds, "events_per_s": total / seconds,
            "cpu_s": cpu, "cpu_s_per_million": cpu / total * 1e6,
            "peak_rss_mb": sum(r["peak_rss_mb"] for r in results),
            "workers": len(results),
            "per_worker_events": [r["events"] for r in results],
            "per_worker_events_per_s": [round(r["events_per_s"]) for r in results]}
