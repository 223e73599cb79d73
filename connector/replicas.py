"""More than one replica: shards owned through Kafka's consumer-group protocol.

With ``connector.shards: N`` (N >= 1) ``run`` makes this process one replica
of many. The subscriptions split into N shards (connector/sharding.py); the
replica joins the group ``<prefix>.connector`` on ``<prefix>.shards`` (one
partition per shard, connector/sink/membership.py) and runs one ordinary
:class:`~connector.app.Connector` per shard it is assigned. On revocation it
stops that shard (intake stopped, drained, flushed; with exactly-once the
last transaction committed) before the group hands it on, within
``connector.revoke_timeout_s``.

Completeness stays auditable. Every shard writes its last-covered time to
its own partition of ``<prefix>.shards`` every ``covered_interval_s`` (in the
shard's transaction with exactly-once). A new owner reads it back and writes
control records: ``shard_assigned`` (key ``shard:<n>``) and, per Sequence
topic of the shard, ``handover`` with the window ``[previous covered, now]``
that no replica covered (``detail_json``: ``from_ns``, ``to_ns``,
``previous_instance``); also after a plain restart (kill -9, start) of a
single replica. A revoked shard writes ``shard_revoked``.

A shard that fails (its producer fenced by a newer owner, a record refused
for good) stops the replica with that error's exit status, as a worker
does: the orchestrator restarts it, and it rejoins as a member.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from connector.app import Connector
from connector.config import Settings
from connector.errors import ConnectorError, TransientError
from connector.handoff import ControlRequest
from connector.normalize.records import ControlKind
from connector.observe.http import OpsServer
from connector.sharding import (
    ShardSpec,
    group_id,
    shard_settings,
    shard_specs,
    shards_topic,
    transactional_id,
)
from connector.sink.membership import ShardMembership, ensure_shards_topic, last_covered
from connector.sink.producer import kafka_conf

log = logging.getLogger(__name__)

ASSIGN_TIMEOUT_S = 10.0
CONNECT_WAIT_S = 10.0


@dataclass
class _ShardRun:
    spec: ShardSpec
    task: asyncio.Task[None] | None = None
    connector: Connector | None = None
    stopping: bool = False
    revoked_reason: str = ""
    assigned_at: float = field(default_factory=time.monotonic)


class _ShardMetrics(Collector):
    """Every running shard's connector metrics, with a ``shard`` label."""

    def __init__(self, runner: ReplicaRunner) -> None:
        self._runner = runner

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for index, run in sorted(self._runner.runs.items()):
            if run.connector is None:
                continue
            for family in run.connector.metrics.registry.collect():
                out = merged.get(family.name)
                if out is None:
                    out = merged[family.name] = Metric(family.name, family.documentation,
                                                       family.type, family.unit)
                for sample in family.samples:
                    out.samples.append(sample._replace(
                        labels={**sample.labels, "shard": str(index)}))
        return list(merged.values())


class ReplicaRunner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        c = settings.connector
        self.specs = shard_specs(settings, c.shards)
        self.instance = c.instance_id
        self.topic = shards_topic(settings)
        self.client = kafka_conf(settings)
        self.exactly_once = c.delivery == "exactly_once"
        self.runs: dict[int, _ShardRun] = {}
        self._stop = asyncio.Event()
        self._failed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.registry = CollectorRegistry()
        p = "sequence_connector_"
        self.owned = Gauge(f"{p}shards_owned", "shards this replica owns",
                           registry=self.registry)
        self.rebalances = Counter(f"{p}rebalances", "shard assignments and revocations",
                                  ["event"], registry=self.registry)
        self.handover = Histogram(f"{p}handover_seconds",
                                  "market data not covered by any replica at a shard handover",
                                  buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 900),
                                  registry=self.registry)
        self.registry.register(_ShardMetrics(self))

    def stop(self) -> None:
        self._stop.set()

    # -- the replica's life --------------------------------------------------------
    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        s = self.settings
        ops = None
        if s.observe.metrics_port:
            ops = OpsServer(s.observe.metrics_host, s.observe.metrics_port, self.registry,
                            self.readiness)
            await ops.start()
        try:
            if not await self._ensure_topic():
                return
            membership = ShardMembership(
                self.client, group_id(s), self.instance, self.topic,
                s.connector.session_timeout_s, on_assign=self._assigned_cb,
                on_revoke=lambda shards: self._revoked_cb(shards, "revoked"),
                on_lost=lambda shards: self._revoked_cb(shards, "lost"))
            thread = threading.Thread(target=self._membership_main, args=(membership,),
                                      name="membership", daemon=True)
            thread.start()
            log.info("replica joined", extra={"group": group_id(s), "instance": self.instance,
                                              "shards": len(self.specs)})
            await self._stop.wait()
            await self._stop_shards(list(self.runs), "replica stopping")
            membership.stop()
            await asyncio.to_thread(thread.join, s.connector.session_timeout_s + 5)
        finally:
            for run in list(self.runs.values()):
                if run.task is not None:
                    run.task.cancel()
            if ops is not None:
                await ops.stop()
        if self._failed is not None:
            raise self._failed

    async def _ensure_topic(self) -> bool:
        s = self.settings
        delay = 0.5
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(ensure_shards_topic, self.client, self.topic,
                                        len(self.specs), s.kafka.replication_factor)
                return True
            except TransientError as exc:
                log.warning("waiting for dependency", extra={
                    "dependency": "kafka", "target": s.kafka.bootstrap_servers,
                    "error": str(exc), "retry_in_s": delay})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, 10.0)
        return False

    def _membership_main(self, membership: ShardMembership) -> None:
        try:
            membership.run()
        except Exception as exc:  # noqa: BLE001 - handed to the loop, which exits with it
            self._fail_threadsafe(exc)
            return
        if not self._stop.is_set():
            self._fail_threadsafe(ConnectorError("group membership ended"))

    def _loop_of_run(self) -> asyncio.AbstractEventLoop:
        """The loop ``run`` runs on (the membership thread hands work to it)."""
        if self._loop is None:
            raise RuntimeError("the replica is not running")
        return self._loop

    def _fail_threadsafe(self, exc: BaseException) -> None:
        self._loop_of_run().call_soon_threadsafe(self._fail, exc)

    def _fail(self, exc: BaseException) -> None:
        if self._failed is None:
            self._failed = exc
        self._stop.set()

    # -- rebalance callbacks (on the membership thread, inside poll) --------------
    def _assigned_cb(self, shards: list[int]) -> None:
        asyncio.run_coroutine_threadsafe(self._start_shards(shards),
                                         self._loop_of_run()).result(ASSIGN_TIMEOUT_S)

    def _revoked_cb(self, shards: list[int], why: str) -> None:
        """Blocks until the shards are stopped: only then may the group hand them on."""
        future = asyncio.run_coroutine_threadsafe(self._stop_shards(shards, why),
                                                  self._loop_of_run())
        try:
            future.result(self.settings.connector.revoke_timeout_s + 5)
        except TimeoutError:
            log.error("shards not stopped within the revoke deadline", extra={"shards": shards})

    # -- shards ----------------------------------------------------------------------
    async def _start_shards(self, shards: list[int]) -> None:
        for index in shards:
            if index in self.runs or index >= len(self.specs) or self._stop.is_set():
                continue
            run = _ShardRun(self.specs[index])
            run.task = asyncio.create_task(self._run_shard(run), name=f"shard:{index}")
            self.runs[index] = run
            self.rebalances.labels("assigned").inc()
        self.owned.set(len(self.runs))

    async def _stop_shards(self, shards: list[int], why: str) -> None:
        runs = [(i, self.runs[i]) for i in shards if i in self.runs]
        for _, run in runs:
            run.stopping = True
            run.revoked_reason = why
            if run.connector is not None and why != "lost":
                await self._control(run.connector, ControlKind.shard_revoked,
                                    f"shard:{run.spec.index}", reason=why,
                                    detail=self._detail(run.spec))
            if run.connector is not None:
                run.connector.stop()
            elif run.task is not None:
                run.task.cancel()
        deadline = self.settings.connector.revoke_timeout_s
        for index, run in runs:
            done: set[asyncio.Task[None]] = set()
            if run.task is not None:
                done, _ = await asyncio.wait([run.task], timeout=deadline)
            if run.task is not None and not done:
                log.error("shard did not stop within the revoke deadline",
                          extra={"shard": index})
                run.task.cancel()
            self.runs.pop(index, None)
            self.rebalances.labels(why).inc()
        self.owned.set(len(self.runs))

    async def _run_shard(self, run: _ShardRun) -> None:
        spec = run.spec
        if spec.empty:
            log.info("shard owned, nothing to subscribe", extra={"shard": spec.index})
            await self._stop.wait()
            return
        settings = shard_settings(self.settings, spec)
        tid = transactional_id(self.settings, spec.index) if self.exactly_once else None
        connector = Connector(settings, transactional_id=tid)
        run.connector = connector
        if run.stopping:
            return
        log.info("shard starting", extra={"shard": spec.index, "topics": list(spec.stream_topics),
                                          "transactional_id": tid})
        task = asyncio.create_task(connector.run(), name=f"connector:{spec.index}")
        helpers: list[asyncio.Task[None]] = []
        try:
            started = asyncio.create_task(connector.started.wait())
            await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
            started.cancel()
            if connector.started.is_set():
                helpers.append(asyncio.create_task(self._announce(run, connector, helpers)))
            await task
        except ConnectorError as exc:
            if run.stopping:
                # fenced while letting go (a zombie coming back): the new owner has it
                log.warning("shard stopped with an error after revocation",
                            extra={"shard": spec.index, "error": str(exc)})
                return
            log.error("shard failed", extra={"shard": spec.index, "error": str(exc)})
            self._fail(exc)
        except Exception as exc:  # a bug: the replica exits with it (status 1)
            log.exception("shard failed unexpectedly", extra={"shard": spec.index})
            self._fail(exc)
        finally:
            for helper in helpers:
                helper.cancel()
            if not task.done():
                connector.stop()
                await asyncio.gather(task, return_exceptions=True)
            log.info("shard stopped", extra={"shard": spec.index})

    async def _control(self, connector: Connector, kind: ControlKind, topic: str,
                       **fields: Any) -> None:
        await connector.handoff.put(ControlRequest(kind=kind, topic=topic, fields=fields,
                                                   recv_ns=time.time_ns()))

    def _detail(self, spec: ShardSpec, **more: Any) -> dict[str, Any]:
        return {"shard": spec.index, "shards": len(self.specs), "instance": self.instance,
                "topics": [*spec.stream_topics, *spec.lifecycle, *(f"sse:{t}" for t in spec.sse)],
                **more}

    async def _announce(self, run: _ShardRun, connector: Connector,
                        helpers: list[asyncio.Task[None]]) -> None:
        """``shard_assigned`` at once (its ``assigned_ns``: this owner's records
        are all received after it) and, with a previous owner's covered time,
        a ``handover`` per topic with the window nobody covered."""
        spec = run.spec
        await self._control(connector, ControlKind.shard_assigned, f"shard:{spec.index}",
                            reason="shard assigned",
                            detail=self._detail(spec, assigned_ns=time.time_ns()))
        # the previous owner's last mark, read before this owner writes its
        # own (and after init_transactions aborted whatever it left open)
        try:
            raw = await asyncio.to_thread(last_covered, self.client, self.topic, spec.index)
        except ConnectorError as exc:
            log.warning("could not read the shard's last covered time",
                        extra={"shard": spec.index, "error": str(exc)})
            raw = None
        helpers.append(asyncio.create_task(self._mark_covered(spec, connector)))
        end = time.monotonic() + CONNECT_WAIT_S
        while time.monotonic() < end and not self._connected(connector):
            await asyncio.sleep(0.05)
        now = time.time_ns()
        previous: dict[str, Any] = orjson.loads(raw) if raw else {}
        covered = previous.get("covered_ns")
        if not isinstance(covered, int):
            return
        window_s = max(0.0, (now - covered) / 1e9)
        self.handover.observe(window_s)
        log.info("shard handed over", extra={"shard": spec.index, "uncovered_s": window_s,
                                             "previous_instance": previous.get("instance")})
        for topic in self._detail(spec)["topics"]:
            await self._control(
                connector, ControlKind.handover, topic,
                reason=f"not covered by any replica for {window_s:.3f} s (shard handover)",
                detail={"shard": spec.index, "from_ns": covered, "to_ns": now,
                        "previous_instance": previous.get("instance"),
                        "instance": self.instance})

    @staticmethod
    def _connected(connector: Connector) -> bool:
        ready, detail = connector.readiness()
        connected = detail.get("connected")
        return ready or (isinstance(connected, dict) and bool(connected)
                         and all(connected.values()))

    async def _mark_covered(self, spec: ShardSpec, connector: Connector) -> None:
        key = f"shard-{spec.index}".encode()
        interval = self.settings.connector.covered_interval_s
        while True:
            sink = connector.sink
            if sink is not None:
                value = orjson.dumps({"shard": spec.index, "instance": self.instance,
                                      "covered_ns": time.time_ns()})
                sink.mark(self.topic, spec.index, key, value)
            await asyncio.sleep(interval)

    # -- health ------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Ready when every owned shard is; a standby (no shard) is ready too."""
        shards: dict[str, object] = {}
        ready = True
        for index, run in sorted(self.runs.items()):
            if run.connector is None:
                shards[str(index)] = {"ready": run.spec.empty}
                ready = ready and run.spec.empty
                continue
            ok, detail = run.connector.readiness()
            shards[str(index)] = {"ready": ok, **detail}
            ready = ready and ok
        return ready, {"instance": self.instance, "shards": shards,
                       "standby": not self.runs}


async def run_replica(settings: Settings) -> None:
    import signal

    runner = ReplicaRunner(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.stop)
    log.info("starting replica", extra={"instance": settings.connector.instance_id,
                                        "shards": settings.connector.shards,
                                        "delivery": settings.connector.delivery})
    await runner.run()
    log.info("stopped")


def run_replica_exit_code(settings: Settings) -> int:
    """``run`` with ``connector.shards``: this replica to the end; its exit status."""
    from connector.process import exit_code

    def run() -> int:
        asyncio.run(run_replica(settings))
        return 0

    return exit_code(run)
