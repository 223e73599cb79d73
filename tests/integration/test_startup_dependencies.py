"""A dependency that is down when the connector starts, then comes up late.

For each of the schema registry, Kafka and Sequence, the connector runs as a
real process (``python -m connector run``) while that dependency is not
there. It must say so on every retry (a JSON line naming the dependency,
the error and the next delay), stay live (``/healthz`` 200) and unready
(``/readyz`` 503 naming what it waits for), then, once the dependency is
up, become ready and write records that the independent reader finds in
Kafka. With a start-up deadline it must instead exit with the documented
status and one error line. Every stderr line is checked to be JSON: a
traceback or a raw librdkafka line would break a log pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connector.demo import SimulatorThread
from connector.process import EXIT_STARTUP_TIMEOUT
from connector.protocol.families import Family
from connector.sandbox.broker import free_port
from connector.sandbox.brokers import Broker
from connector.sandbox.registry import RegistryThread
from connector.sandbox.simulator import SimulatorConfig
from tests.support.chaos import connector_env, new_prefix, read_family
from tests.support.connector_process import ConnectorRun, LogLine
from tests.support.e2e import KEY
from tests.support.readback import DecodedRecord

TOPICS = ("prices:BTC-USD", "orders", "fills")


def sim_config(port: int = 0) -> SimulatorConfig:
    return SimulatorConfig(port=port, seed=11, rate=200.0, api_keys=(KEY,))


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    running = SimulatorThread(sim_config()).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def run_factory(tmp_path: Path) -> Iterator[Callable[..., ConnectorRun]]:
    runs: list[ConnectorRun] = []

    def start(sim_url: str, bootstrap: str, registry_url: str, prefix: str,
              **extra: str) -> ConnectorRun:
        env = connector_env(prefix, sim_url, bootstrap, registry_url, TOPICS,
                            # the stream reconnects soon after Sequence is back
                            SEQUENCE__BACKOFF_CAP_S="2", **extra)
        runs.append(ConnectorRun(env, tmp_path).start())
        return runs[-1]

    try:
        yield start
    finally:
        for run in runs:
            run.cleanup()


def is_retry(dependency: str) -> Callable[[LogLine], bool]:
    return lambda line: (line.get("dependency") == dependency and line["level"] == "warning"
                         and "delay_s" in line and bool(line.get("error")))


def check_waiting(run: ConnectorRun, dependency: str, timeout_s: float = 30.0) -> LogLine:
    """A retry line names the dependency; live but not ready, and /readyz says why."""
    line = run.wait_line(is_retry(dependency), timeout_s, f"a retry line naming {dependency}")
    assert line["delay_s"] >= 0
    assert run.get("/healthz")[0] == 200
    deadline = time.monotonic() + 10
    while True:
        status, body = run.get_json("/readyz")
        assert status == 503, body
        if body.get("waiting_for") == dependency:
            break
        assert time.monotonic() < deadline, f"/readyz never named {dependency}: {body}"
        time.sleep(0.1)
    assert run.get("/healthz")[0] == 200
    return line


def check_ready_and_writing(run: ConnectorRun, bootstrap: str, registry_url: str,
                            prefix: str) -> list[DecodedRecord]:
    """Ready, prices in Kafka (read back and decoded), a clean stop, JSON only."""
    run.wait_http("/readyz", 200, timeout_s=40)
    deadline = time.monotonic() + 30
    while True:
        prices = read_family(bootstrap, prefix, registry_url, Family.prices, timeout_s=10,
                             missing_ok=True)
        if prices:
            break
        assert time.monotonic() < deadline, "no prices in Kafka after the connector was ready"
        time.sleep(0.5)
    assert {r.value["symbol"] for r in prices} == {"BTC-USD"}
    assert all(r.raw.headers["connector.instance"] == b"chaos" for r in prices)
    assert run.terminate() == 0
    run.lines()  # every line JSON
    assert "Traceback" not in run.stderr()
    assert run.stdout_path.read_text() == ""
    return prices


def test_registry_down_at_start(run_factory: Callable[..., ConnectorRun], sim: SimulatorThread,
                                bootstrap: str) -> None:
    port = free_port()
    registry = RegistryThread(port=port)
    prefix = new_prefix("regdown")
    run = run_factory(sim.base_url, bootstrap, f"http://127.0.0.1:{port}", prefix)
    try:
        line = check_waiting(run, "schema-registry")
        assert "Connection refused" in line["error"]
        assert line["target"] == f"http://127.0.0.1:{port}"
        registry.start()
        check_ready_and_writing(run, bootstrap, registry.url, prefix)
    finally:
        registry.stop()


def test_kafka_down_at_start(run_factory: Callable[..., ConnectorRun], sim: SimulatorThread,
                             registry_url: str,
                             own_broker_factory: Callable[[], Broker]) -> None:
    broker = own_broker_factory()
    broker.stop()  # its port is known; nothing answers there until restart()
    prefix = new_prefix("kdown")
    run = run_factory(sim.base_url, broker.bootstrap, registry_url, prefix)
    line = check_waiting(run, "kafka")
    assert line["target"] == broker.bootstrap
    broker.restart()
    check_ready_and_writing(run, broker.bootstrap, registry_url, prefix)


def test_sequence_down_at_start(run_factory: Callable[..., ConnectorRun], bootstrap: str,
                                registry_url: str) -> None:
    port = free_port()
    prefix = new_prefix("seqdown")
    run = run_factory(f"http://127.0.0.1:{port}", bootstrap, registry_url, prefix)
    sim = SimulatorThread(sim_config(port))
    try:
        line = check_waiting(run, "sequence")
        assert line["event"] == "reconnecting" and "connect failed" in line["error"]
        sim.start()
        check_ready_and_writing(run, bootstrap, registry_url, prefix)
    finally:
        sim.stop()


def test_startup_deadline_exits_with_one_line(run_factory: Callable[..., ConnectorRun],
                                              sim: SimulatorThread, bootstrap: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    run = run_factory(sim.base_url, bootstrap, dead, new_prefix("deadline"),
                      CONNECTOR__STARTUP_TIMEOUT_S="3")
    assert run.wait(timeout_s=30) == EXIT_STARTUP_TIMEOUT
    lines = run.lines()  # every line is JSON
    assert "Traceback" not in run.stderr()
    errors = [line for line in lines if line["level"] in ("error", "critical")]
    assert len(errors) == 1, errors
    [error] = errors
    assert error["exit_code"] == EXIT_STARTUP_TIMEOUT
    assert "schema-registry still unreachable" in error["event"]
    assert "startup_timeout_s" in error["event"]
    retries = [line for line in lines if is_retry("schema-registry")(line)]
    assert retries, "no retry line before the deadline"
    assert run.stdout_path.read_text() == ""


def test_sigterm_while_waiting_stops_cleanly(run_factory: Callable[..., ConnectorRun],
                                             sim: SimulatorThread, bootstrap: str) -> None:
    """Waiting forever (the default) must not mean deaf to SIGTERM."""
    dead = f"http://127.0.0.1:{free_port()}"
    run = run_factory(sim.base_url, bootstrap, dead, new_prefix("sigterm"))
    check_waiting(run, "schema-registry")
    assert run.terminate(timeout_s=20) == 0
    lines = run.lines()
    assert not [line for line in lines if line["level"] in ("error", "critical")]
    assert any(line["event"].startswith("stopped while waiting") for line in lines)
