"""``sequence-connector demo``: everything embedded on loopback.

Starts the tansu broker, the development schema registry and the Sequence
simulator, runs the real connector against them with a live progress line,
and when the time is up (or on Ctrl-C) reads every topic back from Kafka and
prints the counts and one decoded sample per topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from connector.app import Connector
from connector.config import Settings, load_settings
from connector.sandbox.brokers import Broker, start_broker
from connector.sandbox.registry import RegistryThread
from connector.sandbox.simulator import Simulator, SimulatorConfig
from connector.serde.registry import registry_client
from connector.sink.producer import kafka_conf
from connector.sink.reader import AvroValueDecoder, read_topic

T = TypeVar("T")

DEMO_KEY = "seq_test_key"
POLY_YES = "71166707665253014908308475311609108419118036985903834861277070930664191157865"
DEMO_TOPICS = (
    "prices:BTC-USD", "prices:ETH-USD", f"prices:polymarket:{POLY_YES}",
    "book:BTC-USD", "book:ETH-USD", f"book:polymarket:{POLY_YES}",
    "orders", "fills", "tca", "funding", "fair_price", "traces:dep_sim_alpha",
)  # fmt: skip


class SimulatorThread:
    """The simulator on its own event loop, so it never competes with the connector's."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.sim = Simulator(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="simulator",
                                        daemon=True)

    def start(self) -> SimulatorThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self._loop).result(timeout=15)
        return self

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the simulator's own loop, from any other thread."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    @property
    def base_url(self) -> str:
        return self.sim.base_url


@dataclass
class Sandbox:
    broker: Broker
    registry: RegistryThread
    simulator: SimulatorThread


@contextlib.contextmanager
def sandbox(seed: int = 1, rate: float = 300.0, broker_kind: str = "tansu") -> Iterator[Sandbox]:
    broker = start_broker(broker_kind)
    registry: RegistryThread | None = None
    sim: SimulatorThread | None = None
    try:
        registry = RegistryThread().start()
        sim = SimulatorThread(SimulatorConfig(seed=seed, rate=rate,
                                              api_keys=(DEMO_KEY,))).start()
        yield Sandbox(broker, registry, sim)
    finally:
        if sim is not None:
            sim.stop()
        if registry is not None:
            registry.stop()
        broker.stop()


def demo_settings(box: Sandbox, metrics_port: int = 0) -> Settings:
    env = dict(os.environ)
    env["SEQUENCE_API_KEY"] = DEMO_KEY
    return load_settings(env=env, overrides={
        "sequence": {"base_url": box.simulator.base_url, "stream_topics": DEMO_TOPICS,
                     "lifecycle": ("new_markets", "market_resolved"),
                     "sse": ("alerts", "tca")},
        "kafka": {"bootstrap_servers": box.broker.bootstrap, "partitions": 3},
        "schema_registry": {"url": box.registry.url},
        "connector": {"instance_id": "demo"},
        "observe": {"metrics_port": metrics_port, "log_format": "text", "log_level": "WARNING"},
    })


async def _progress(connector: Connector, duration: float, out: Any) -> None:
    tty = out.isatty()
    last: dict[str, int] = {}
    started = time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        now = dict(connector.produced)
        rates = {t.removeprefix("sequence."): now.get(t, 0) - last.get(t, 0) for t in now}
        last = now
        elapsed = time.monotonic() - started
        total = sum(now.values())
        parts = " ".join(f"{t}={r}/s" for t, r in sorted(rates.items()) if r)
        line = f"[{elapsed:4.0f}s/{duration:.0f}s] {total} records acked | {parts}"
        if tty:
            out.write("\r\x1b[2K" + line[:250])
        elif int(elapsed) % 5 == 0:
            out.write(line + "\n")
        out.flush()


async def _run_connector(settings: Settings, duration: float) -> Connector:
    connector = Connector(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, connector.stop)
    runner = asyncio.create_task(connector.run())
    progress = asyncio.create_task(_progress(connector, duration, sys.stderr))
    try:
        done, _ = await asyncio.wait([runner], timeout=duration)
        if not done:
            connector.stop()
        await runner
    finally:
        progress.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        sys.stderr.write("\n")
    return connector


def summarize(settings: Settings, topics: list[str]) -> dict[str, Any]:
    conf = kafka_conf(settings)
    decoder = AvroValueDecoder(registry_client(settings))
    counts: dict[str, int] = {}
    samples: dict[str, Any] = {}
    for topic in topics:
        n = 0
        for rec in read_topic(conf, topic, timeout_s=30):
            n += 1
            if topic not in samples and rec.value is not None:
                samples[topic] = (decoder.decode(topic, rec.value) if not topic.endswith(".dlq")
                                  else rec.value[:200].decode("utf-8", "replace"))
        counts[topic] = n
    return {"topics": counts, "samples": samples}


def run_demo(duration: float, summary_json: Path | None, seed: int, rate: float,
             broker_kind: str = "tansu") -> int:
    print(f"starting broker ({broker_kind}), schema registry and simulator (seed={seed}, "
          f"rate={rate}/s) ...", file=sys.stderr)
    with sandbox(seed=seed, rate=rate, broker_kind=broker_kind) as box:
        settings = demo_settings(box)
        print(f"broker {box.broker.bootstrap}  registry {box.registry.url}  "
              f"simulator {box.simulator.base_url}", file=sys.stderr)
        connector = asyncio.run(_run_connector(settings, duration))
        topics = sorted(set(connector.topics.all_topics().values()) | {connector.topics.dlq})
        summary = summarize(settings, topics)
    print("\nrecords read back from Kafka (independent consumer, Avro decoded by schema id):")
    for topic, count in summary["topics"].items():
        print(f"  {topic:<28} {count:>8}")
    print("\none decoded sample per topic:")
    for topic, sample in summary["samples"].items():
        text = orjson.dumps(sample, default=str).decode()
        print(f"  {topic}: {text[:300]}{'...' if len(text) > 300 else ''}")
    if summary_json is not None:
        summary_json.write_text(orjson.dumps({"topics": summary["topics"]},
                                             option=orjson.OPT_INDENT_2).decode())
        print(f"\nsummary written to {summary_json}")
    return 0
