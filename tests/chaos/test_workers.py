"""``connector.workers: 2``: two worker processes under one supervisor.

The real ``python -m connector run`` against the simulator, the broker and
the registry. Market-data topics are shared out between the workers, the
trading topics stay on worker 0. Read back from Kafka: every symbol's prices
come from exactly one worker and are, in order, exactly the frames the
simulator sent on that worker's socket (a prefix: nothing skipped, nothing
twice); every fill in the simulator's REST history is in Kafka once. The
supervisor's one port merges both workers' metrics and readiness; SIGTERM
drains both and exits 0.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from connector.demo import SimulatorThread
from connector.protocol.families import Family
from connector.sandbox.simulator import SimulatorConfig
from tests.support.chaos import (
    ConnectorProcess,
    connector_env,
    fills_tally,
    new_prefix,
    read_family,
    rest_truth,
    wait_until,
)
from tests.support.e2e import KEY, _parse_ledger
from tests.support.http import http_get

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "BTC-USDT")
TOPICS = ("orders", "fills", "tca", *(f"prices:{s}" for s in SYMBOLS))
RUN_S = 6.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ledger_prices(sim: SimulatorThread) -> dict[str, list[list[int]]]:
    """symbol -> for each /v1/stream connection, the ts_ns of the prices it sent."""
    out: dict[str, list[list[int]]] = {}
    for conn in sim.sim.ledger.connections("/v1/stream"):
        per_symbol: dict[str, list[int]] = {}
        for frame in conn.raw_frames:
            parsed: Any = _parse_ledger(frame)
            channel = parsed.get("channel", "")
            if channel.startswith("prices:"):
                per_symbol.setdefault(channel.split(":", 1)[1], []).append(
                    parsed["data"]["ts_ns"])
        for symbol, stamps in per_symbol.items():
            out.setdefault(symbol, []).append(stamps)
    return out


def test_two_workers_share_the_stream_and_lose_or_double_nothing(
    bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    prefix = new_prefix("workers")
    port = _free_port()
    sim = SimulatorThread(SimulatorConfig(seed=5, rate=400.0, api_keys=(KEY,))).start()
    env = connector_env(prefix, sim.base_url, bootstrap, registry_url, topics=TOPICS,
                        CONNECTOR__WORKERS="2", OBSERVE__METRICS_PORT=str(port),
                        OBSERVE__METRICS_HOST="127.0.0.1")
    proc = ConnectorProcess(env, tmp_path / "connector.log")
    try:
        proc.start()

        def ready() -> bool:
            if not proc.alive():
                raise AssertionError(f"connector exited early:\n{proc.log_tail()}")
            return http_get(f"http://127.0.0.1:{port}" + "/readyz")[0] == 200

        wait_until(ready, 60, "both workers ready behind the supervisor's /readyz", 0.3)
        status, body = http_get(f"http://127.0.0.1:{port}" + "/readyz")
        assert json.loads(body)["workers"] == {"0": {"status": 200}, "1": {"status": 200}}
        time.sleep(RUN_S)
        status, metrics = http_get(f"http://127.0.0.1:{port}" + "/metrics")
        assert status == 200
        assert http_get(f"http://127.0.0.1:{port}" + "/healthz")[0] == 200
        rc = proc.terminate()
        assert rc == 0, f"SIGTERM must drain both workers and exit 0, got {rc}:\n" \
                        f"{proc.log_tail()}"
        truth = rest_truth(sim)
        ledger = _ledger_prices(sim)
    finally:
        proc.cleanup()
        sim.stop()

    # one port, both workers: the merged metrics carry a worker label
    for worker in ("0", "1"):
        assert (f'sequence_connector_events_received_total{{family="prices",source="ws",'
                f'worker="{worker}"}}') in metrics, metrics[:2000]
    assert 'family="fills",source="ws",worker="0"' in metrics
    assert 'family="fills",source="ws",worker="1"' not in metrics

    prices = read_family(bootstrap, prefix, registry_url, Family.prices)
    by_symbol: dict[str, list[Any]] = {}
    for record in prices:
        by_symbol.setdefault(record.value["symbol"], []).append(record)
    instances = {}
    for symbol in SYMBOLS:
        records = sorted(by_symbol.get(symbol, []), key=lambda r: r.raw.offset)
        assert records, f"no prices for {symbol}"
        owners = {r.raw.headers["connector.instance"] for r in records}
        assert len(owners) == 1, f"{symbol} written by several workers: {owners}"
        instances[symbol] = owners.pop()
        # each symbol had exactly one socket; Kafka holds a prefix of what it sent
        assert len(ledger[symbol]) == 1, f"{symbol} sent on {len(ledger[symbol])} sockets"
        sent = ledger[symbol][0]
        written = [r.value["ts_ns"] for r in records]
        assert written == sent[:len(written)], f"{symbol}: Kafka is not the socket's prefix"
        assert len(sent) - len(written) <= 25, \
            f"{symbol}: {len(sent) - len(written)} frames sent but never written"
    assert set(instances.values()) == {b"chaos-w0", b"chaos-w1"}, instances

    fills = read_family(bootstrap, prefix, registry_url, Family.fills)
    tally = fills_tally(truth.fills, fills)
    counts = {s: len(by_symbol[s]) for s in SYMBOLS}
    owners_of = {s: o.decode() for s, o in instances.items()}
    print(f"\n[workers] prices per symbol {counts} owners {owners_of} | {tally.line()}")
    assert tally.duplicates == 0 and not tally.missing and tally.sent > 0
    assert {r.raw.headers["connector.instance"] for r in fills} == {b"chaos-w0"}


def test_a_worker_that_dies_ends_the_supervisor_with_its_status(
    bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    """A refused API key is fatal in every worker: the supervisor exits 2 too
    (no restart storm), and the key is in no output."""
    sim = SimulatorThread(SimulatorConfig(seed=5, rate=50.0, api_keys=(KEY,))).start()
    env = connector_env(new_prefix("workers401"), sim.base_url, bootstrap, registry_url,
                        topics=TOPICS, CONNECTOR__WORKERS="2")
    env["SEQUENCE_API_KEY"] = "seq_wrong_key_do_not_print"
    proc = ConnectorProcess(env, tmp_path / "connector.log")
    try:
        proc.start()
        wait_until(lambda: not proc.alive(), 60, "the supervisor to exit")
        assert proc.proc is not None
        rc = proc.proc.returncode
        log = proc.log_tail(20_000)
    finally:
        proc.cleanup()
        sim.stop()
    assert rc == 2, log
    assert "refused the API key" in log
    assert "seq_wrong_key_do_not_print" not in log


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_exit_when_their_supervisor_is_killed(
    bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    """kill -9 of the supervisor must not leave orphan workers streaming."""
    sim = SimulatorThread(SimulatorConfig(seed=5, rate=100.0, api_keys=(KEY,))).start()
    env = connector_env(new_prefix("orphans"), sim.base_url, bootstrap, registry_url,
                        topics=TOPICS, CONNECTOR__WORKERS="2")
    proc = ConnectorProcess(env, tmp_path / "connector.log")
    try:
        proc.start()
        wait_until(lambda: len([c for c in _children(proc.pid) if _running(c)]) >= 2, 60,
                   "two worker processes")
        workers = [c for c in _children(proc.pid) if _running(c)]
        time.sleep(2.0)
        proc.kill9()
        wait_until(lambda: not any(_running(w) for w in workers), 30,
                   "the orphaned workers to exit")
    finally:
        proc.cleanup()
        sim.stop()
