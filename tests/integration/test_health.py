"""/healthz, /readyz and /metrics of a running connector, through real outages.

/readyz must turn 503 when the simulator goes silent (a stale family) and
when the broker stops (records left unacknowledged), and 200 again after.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from connector.app import Connector
from connector.config import load_settings
from connector.demo import SimulatorThread
from connector.sandbox.brokers import Broker
from connector.sandbox.simulator import SimulatorConfig
from tests.support.e2e import sim_call
from tests.support.http import http_get

KEY = "seq_test_key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_broker(own_broker_factory: Callable[[], Broker]) -> Broker:
    """A broker of the session's kind that this test pauses."""
    return own_broker_factory()


async def wait_status(url: str, status: int, timeout: float = 40.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    body = ""
    while loop.time() < end:
        code, body = await asyncio.to_thread(http_get, url)
        if code == status:
            return json.loads(body) if body.startswith("{") else {"text": body}
        await asyncio.sleep(0.25)
    raise AssertionError(f"{url} never answered {status}; last body {body}")


def test_readiness_follows_silence_and_broker_outage(own_broker: Broker,
                                                     registry_url: str) -> None:
    sim = SimulatorThread(SimulatorConfig(seed=9, rate=300.0, api_keys=(KEY,))).start()
    port = free_port()
    settings = load_settings(env={"SEQUENCE_API_KEY": KEY}, overrides={
        "sequence": {"base_url": sim.base_url, "lifecycle": (), "sse": (),
                     "stream_topics": ("prices:BTC-USD", "book:BTC-USD", "fills")},
        "kafka": {"bootstrap_servers": own_broker.bootstrap, "topic_prefix": "health",
                  "producer": {"message.timeout.ms": 60000}},
        "schema_registry": {"url": registry_url},
        "observe": {"metrics_port": port, "metrics_host": "127.0.0.1",
                    "stale_limits_s": {"prices": 2.0, "book": 2.0},
                    "max_unacked_age_s": 3.0},
    })
    base = f"http://127.0.0.1:{port}"

    async def scenario() -> dict[str, Any]:
        connector = Connector(settings)
        task = asyncio.create_task(connector.run())
        seen: dict[str, Any] = {}
        try:
            await connector.started.wait()
            seen["ready"] = await wait_status(base + "/readyz", 200)
            # the simulator goes silent: prices and book go stale
            await asyncio.to_thread(sim_call, sim, _stall(sim, 8.0))
            seen["silent"] = await wait_status(base + "/readyz", 503)
            assert (await asyncio.to_thread(http_get, base + "/healthz"))[0] == 200
            seen["recovered"] = await wait_status(base + "/readyz", 200, timeout=30)
            # the broker stops: records wait unacknowledged
            own_broker.pause()
            try:
                seen["broker_down"] = await wait_status(base + "/readyz", 503)
                assert (await asyncio.to_thread(http_get, base + "/healthz"))[0] == 200
            finally:
                own_broker.resume()
            seen["broker_back"] = await wait_status(base + "/readyz", 200, timeout=60)
            seen["metrics"] = (await asyncio.to_thread(http_get, base + "/metrics"))[1]
        finally:
            connector.stop()
            await task
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        sim.stop()
    assert seen["ready"]["ready"] is True
    assert seen["silent"]["stale"] and set(seen["silent"]["stale"]) <= {"prices", "book"}
    assert seen["recovered"]["stale"] == {}
    assert seen["broker_down"]["producer_ok"] is False
    assert seen["broker_down"]["oldest_unacked_s"] >= 3.0
    assert seen["broker_back"]["producer_ok"] is True
    metrics = seen["metrics"]
    assert 'sequence_connector_freshness_seconds{family="prices"}' in metrics
    assert 'sequence_connector_records_produced_total{topic="health.fills"}' in metrics
    assert "sequence_connector_added_latency_seconds_bucket" in metrics


async def _stall(sim: SimulatorThread, seconds: float) -> None:
    sim.sim.faults.stall(seconds)
