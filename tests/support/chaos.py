"""Shared pieces of the chaos tests: a connector subprocess, an RSS sampler,
the simulator's REST truth and the checks of what Kafka holds against it.

Everything is checked on what the independent reader (kafka-python + Apache
Avro) finds in Kafka, against the simulator's REST history (its own record of
every order, fill and TCA report it generated), never on log lines.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from connector.demo import SimulatorThread
from connector.protocol.families import Family
from connector.serde.topics import TopicNames
from tests.support.e2e import KEY, sim_call
from tests.support.faithful import assert_faithful
from tests.support.readback import DecodedRecord, read_decoded, topic_exists

TRADING_TOPICS = ("orders", "fills", "tca", "prices:BTC-USD")


def new_prefix(name: str) -> str:
    return f"chaos{name}{uuid.uuid4().hex[:8]}"


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str,
               interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


# -- the connector as a subprocess ------------------------------------------------------
def connector_env(prefix: str, sim_url: str, bootstrap: str, registry_url: str,
                  topics: tuple[str, ...] = TRADING_TOPICS, **extra: str) -> dict[str, str]:
    """Environment for ``python -m connector run``; ``extra`` maps SEQCONN__ names
    (without the prefix, e.g. ``KAFKA__PARTITIONS``) to values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCONN__")}
    env.update({
        "SEQUENCE_API_KEY": KEY,
        "SEQCONN__SEQUENCE__BASE_URL": sim_url,
        "SEQCONN__SEQUENCE__STREAM_TOPICS": "[" + ", ".join(f'"{t}"' for t in topics) + "]",
        "SEQCONN__SEQUENCE__LIFECYCLE": "[]",
        "SEQCONN__SEQUENCE__SSE": "[]",
        "SEQCONN__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "SEQCONN__KAFKA__TOPIC_PREFIX": prefix,
        "SEQCONN__KAFKA__PARTITIONS": "3",
        "SEQCONN__SCHEMA_REGISTRY__URL": registry_url,
        "SEQCONN__OBSERVE__METRICS_PORT": "0",
        "SEQCONN__CONNECTOR__INSTANCE_ID": "chaos",
    })
    env.update({f"SEQCONN__{k}": v for k, v in extra.items()})
    return env


class ConnectorProcess:
    """``python -m connector run`` in its own session; its output goes to a file
    (for a human reading a failure, not for assertions)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ConnectorProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self._log.write(f"--- start {time.time():.3f}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "run"], env=self.env, stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: signal.Signals) -> None:
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, sig)

    def kill9(self) -> None:
        """SIGKILL: no drain, no flush, whatever librdkafka holds is gone."""
        self.send(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(timeout=10)
        self._reap()

    def terminate(self, timeout_s: float = 45.0) -> int:
        """SIGTERM and wait for the drain; returns the exit status."""
        assert self.proc is not None
        self.send(signal.SIGCONT)  # in case a test left it stopped
        self.send(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout_s)
        finally:
            self.cleanup()
        return rc

    def rss_kb(self) -> int | None:
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, AssertionError):
            return None
        return None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"

    def cleanup(self) -> None:
        """Kill it if it still runs (tests call this in ``finally``)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._reap()

    def _reap(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class RssSampler:
    """VmRSS of a process every ``interval_s`` on a thread, in kB."""

    process: ConnectorProcess
    interval_s: float = 1.0
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            kb = self.process.rss_kb()
            if kb is not None:
                self.samples.append((time.monotonic(), kb))
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def peak_kb(self, since: float = 0.0, until: float = float("inf")) -> int:
        return max(kb for t, kb in self.samples if since <= t <= until)


# -- the simulator side --------------------------------------------------------------------
def stream_sessions(sim: SimulatorThread) -> tuple[int, int]:
    """(open /v1/stream connections that sent their subscribe ack and some data,
    /v1/stream connections ever)."""
    async def query() -> tuple[int, int]:
        state = sim.sim.state
        # the ack is the first frame written: a session with more than one frame
        # sent has been acknowledged (the connector's session callback has run)
        open_ = sum(1 for c in state.conns if c.path == "/v1/stream" and c.outbox.subs
                    and len(c.record.raw_frames) > 1)
        ever = len(sim.sim.ledger.connections("/v1/stream"))
        return open_, ever

    result: tuple[int, int] = sim_call(sim, query())
    return result


def wait_subscribed(sim: SimulatorThread, sessions_before: int, timeout_s: float = 60.0,
                    proc: ConnectorProcess | None = None) -> None:
    """Until a new /v1/stream session has subscribed (the connector is streaming)."""
    def ready() -> bool:
        if proc is not None and not proc.alive():
            raise AssertionError(f"connector exited early:\n{proc.log_tail()}")
        open_, ever = stream_sessions(sim)
        return open_ >= 1 and ever > sessions_before

    wait_until(ready, timeout_s, "the connector to subscribe", 0.2)


@dataclass
class RestTruth:
    """The simulator's REST history at one moment (read on its own loop)."""

    fills: list[dict[str, Any]]
    orders: dict[str, dict[str, Any]]
    tca: list[dict[str, Any]]


def rest_truth(sim: SimulatorThread) -> RestTruth:
    async def read() -> RestTruth:
        trading = sim.sim.state.feed.trading
        return RestTruth([dict(f) for f in trading.fills],
                         {k: dict(v) for k, v in trading.orders.items()},
                         [dict(r) for r in trading.tca])

    truth: RestTruth = sim_call(sim, read())
    return truth


def fault(sim: SimulatorThread, apply: Callable[[Any], Any]) -> Any:
    """Run ``apply(faults)`` on the simulator's loop (awaiting it if it returns a coroutine)."""
    async def run() -> Any:
        out = apply(sim.sim.faults)
        if asyncio.iscoroutine(out):
            out = await out
        return out

    return sim_call(sim, run())


# -- reading Kafka and judging it -------------------------------------------------------------
def read_family(bootstrap: str, prefix: str, registry_url: str, family: Family,
                timeout_s: float = 30.0, missing_ok: bool = False,
                read_committed: bool = False) -> list[DecodedRecord]:
    """Every record of a family's topic, decoded by the independent reader. A topic
    that does not exist is an error, or empty with ``missing_ok`` (after a broker
    lost everything)."""
    topic = TopicNames(prefix=prefix).topic(family)
    if missing_ok and not topic_exists(bootstrap, topic):
        return []
    return read_decoded(bootstrap, TopicNames(prefix=prefix).topic(family), registry_url,
                        timeout_s, read_committed=read_committed)


@dataclass
class Tally:
    what: str
    sent: int  # in the simulator's REST history, within the checked window
    received: int  # records in Kafka within the window
    duplicates: int
    missing: list[str]

    def line(self) -> str:
        return (f"{self.what}: sent(REST)={self.sent} received(Kafka)={self.received} "
                f"duplicates={self.duplicates} missing={len(self.missing)}")


def fills_tally(rest_fills: list[dict[str, Any]], records: list[DecodedRecord],
                since_ns: int = 0, until_ns: int | None = None, what: str = "fills") -> Tally:
    """REST fills with ``since_ns <= ts <= newest fill in Kafka`` (or ``until_ns``,
    whichever is earlier) against Kafka; duplicates are counted over all of Kafka."""
    keys = [r.raw.key.decode() for r in records if r.raw.key is not None]
    newest = max((r.value["ts_unix_ns"] for r in records), default=-1)
    if until_ns is not None:
        newest = min(newest, until_ns)
    window = [f for f in rest_fills if since_ns <= f["ts_unix_ns"] <= newest]
    expected = {f["venue_execution_id"] for f in window}
    in_window = [k for k in keys if k in expected]
    duplicates = len(keys) - len(set(keys))
    missing = sorted(expected - set(keys))
    by_id = {f["venue_execution_id"]: f for f in rest_fills}
    for record in records:
        source = by_id.get(record.raw.key.decode() if record.raw.key else "")
        if source is not None:
            assert_faithful(source, record.value)
    return Tally(what, len(expected), len(set(in_window)), duplicates, missing)


def tca_tally(rest_tca: list[dict[str, Any]], records: list[DecodedRecord]) -> Tally:
    """TCA reports have no timestamp: REST keeps them in generation order, so
    every report up to the newest one found in Kafka must be there, once."""
    keys = [r.raw.key.decode() for r in records if r.raw.key is not None]
    order = [r["node_order_id"] for r in rest_tca]
    present = set(keys)
    last = max((i for i, k in enumerate(order) if k in present), default=-1)
    expected = order[: last + 1]
    missing = sorted(set(expected) - present)
    return Tally("tca", len(expected), len(present & set(expected)),
                 len(keys) - len(present), missing)


def orders_check(rest_orders: dict[str, dict[str, Any]], records: list[DecodedRecord]
                 ) -> tuple[int, int, list[str]]:
    """Latest state per order in Kafka (highest offset of its key) against REST's state,
    for every order REST last updated no later than the newest order state in Kafka.
    Returns (orders checked, records in Kafka, ids whose latest state differs/missing)."""
    latest: dict[str, DecodedRecord] = {}
    for record in sorted(records, key=lambda r: (r.raw.partition, r.raw.offset)):
        assert record.raw.key is not None
        latest[record.raw.key.decode()] = record
    newest = max((r.value["updated_unix_ns"] for r in records), default=-1)
    checked = [o for o in rest_orders.values() if o["updated_unix_ns"] <= newest]
    wrong = []
    for order in checked:
        record = latest.get(order["node_order_id"])
        if record is None:
            wrong.append(order["node_order_id"])
            continue
        try:
            assert_faithful(order, record.value)
        except AssertionError:
            wrong.append(order["node_order_id"])
    return len(checked), len(records), wrong


def control_records(bootstrap: str, prefix: str, registry_url: str) -> list[DecodedRecord]:
    records = read_family(bootstrap, prefix, registry_url, Family.control)
    return sorted(records, key=lambda r: (r.value["at_ns"], r.raw.partition, r.raw.offset))


# Ceiling on RSS growth over the pre-outage baseline, default bounds (20k-record
# hand-off, 50k-record librdkafka queue plus the sink's pending copy of each).
# Measured: ~205 MB, flat from ~40 s into the pause (at 3000 events/s); the
# 30 s message timeout rebuilds the producer mid-pause, which adds ~50 MB.
# The ceiling leaves ~45% margin.
RSS_GROWTH_CEILING_MB = 300


def settled_fills(sim: SimulatorThread, proc: ConnectorProcess, bootstrap: str, prefix: str,
                   registry_url: str, since_ns: int, live_after_ns: int,
                   timeout_s: float) -> Tally:
    """Wait (bounded) until Kafka holds a fill newer than ``live_after_ns`` (the
    connector is live again); that fill's time is the cutoff. Then wait (bounded)
    until every REST fill from ``since_ns`` to the cutoff is in Kafka: partitions
    catch up at different speeds, so a snapshot taken at one moment may miss
    fills still on their way. Returns the last tally (the test asserts on it)."""
    deadline = time.monotonic() + timeout_s
    cutoff: int | None = None
    while True:
        assert proc.alive(), f"the connector exited:\n{proc.log_tail()}"
        try:
            records = read_family(bootstrap, prefix, registry_url, Family.fills, timeout_s=20,
                                  missing_ok=True)
        except TimeoutError:
            # the broker is still catching up after the outage (observed on a
            # loaded CI box right after the resume): read again until the deadline
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)
            continue
        newest = max((r.value["ts_unix_ns"] for r in records), default=-1)
        if cutoff is None and newest > live_after_ns:
            cutoff = newest
        tally = fills_tally(rest_truth(sim).fills, records, since_ns=since_ns,
                            until_ns=cutoff if cutoff is not None else newest)
        if cutoff is not None and not tally.missing:
            return tally
        if time.monotonic() > deadline:
            return tally
        time.sleep(2.0)
