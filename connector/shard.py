"""More than one core: worker processes sharded by subscription.

One connector process spends about one core (the hot path is Python). With
``connector.workers: N`` the ``run`` command becomes a small supervisor that
starts N worker processes, each a whole ordinary connector (own socket, own
hand-off, own idempotent producer) over its share of the subscriptions:

- the plan is the replicas' (``sharding.shard_specs``): market-data topics of
  ``sequence.stream_topics`` (prices, book, funding,
  fair_price, traces) are dealt out round-robin, in the configured order;
  everything about one Sequence topic stays in one worker, so per-key order
  is kept exactly as with one process;
- orders, fills and tca, the lifecycle sockets and the SSE streams all stay
  on worker 0: their dedupe state and REST backfill need a single owner, or
  two workers would each write a backfilled fill once.

The supervisor does not touch data. It serves the one public port: /metrics
merges every worker's metrics under a ``worker`` label, /healthz is 200
while every worker lives, /readyz is 200 when every worker is ready. It
forwards SIGTERM/SIGINT to the workers and exits 0 when they all drained and
exited 0; when a worker dies it stops the others and exits with that
worker's status, so the orchestrator restarts the whole pod (a restart is
safe: Kafka holds the dedupe state and backfill covers the gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from connector.config import Settings
from connector.observe.http import OpsServer
from connector.sharding import ShardSpec, shard_specs

log = logging.getLogger(__name__)


def shard_plan(settings: Settings, workers: int | None = None) -> list[ShardSpec]:
    """The subscriptions of each worker: the replicas' plan
    (``sharding.shard_specs``), less the shards that would get nothing."""
    n = workers if workers is not None else settings.connector.workers
    specs = [spec for spec in shard_specs(settings, n) if not spec.empty]
    return [dataclasses.replace(spec, index=i) for i, spec in enumerate(specs)]


def worker_overrides(settings: Settings, shard: ShardSpec, port: int) -> dict[str, dict[str, Any]]:
    """``load_settings`` overrides that turn the whole config into one worker's."""
    overrides: dict[str, dict[str, Any]] = {
        "sequence": {"stream_topics": shard.stream_topics, "lifecycle": shard.lifecycle,
                     "sse": shard.sse},
        "connector": {"workers": 1,
                      "instance_id": f"{settings.connector.instance_id}-w{shard.index}"},
        "observe": {"metrics_host": "127.0.0.1", "metrics_port": port},
    }
    if settings.connector.shards:
        # with connector.shards each worker is a replica, a member of the
        # group: the group, not this plan, gives it its share
        del overrides["sequence"]
    return overrides


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _orphan_watch(parent: int) -> None:
    """A worker whose supervisor vanished (kill -9) drains and exits too."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(config: str | None, overrides: dict[str, dict[str, Any]],
                 parent: int) -> None:
    """Entry point of a worker process (spawned: a fresh interpreter)."""
    from connector.process import run_settings_exit_code

    threading.Thread(target=_orphan_watch, args=(parent,), daemon=True,
                     name="orphan-watch").start()
    from connector.config import load_settings

    def load() -> Settings:
        return load_settings(config, overrides=overrides)

    if "sequence" not in overrides:  # a replica (connector.shards)
        from connector.process import load_logged
        from connector.replicas import run_replica_exit_code

        sys.exit(run_replica_exit_code(load_logged(load)))
    sys.exit(run_settings_exit_code(load))


# -- metrics of every worker under one port -----------------------------------------
class WorkersCollector(Collector):
    """Adds ``worker="<i>"`` to every sample scraped from the workers."""

    def __init__(self) -> None:
        self.texts: dict[int, str] = {}

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for index, text in sorted(self.texts.items()):
            for family in text_string_to_metric_families(text):
                out = merged.get(family.name)
                if out is None:
                    out = merged[family.name] = Metric(family.name, family.documentation,
                                                       family.type, family.unit)
                for sample in family.samples:
                    out.add_sample(sample.name, {**sample.labels, "worker": str(index)},
                                   sample.value, sample.timestamp, sample.exemplar)
        yield from merged.values()


class Supervisor:
    def __init__(self, settings: Settings, config: str | Path | None) -> None:
        self.settings = settings
        self.config = str(config) if config is not None else None
        s = settings.sequence
        # with connector.shards: N replicas, each a group member (connector/replicas.py)
        self.shards = shard_plan(settings) if not settings.connector.shards else [
            ShardSpec(i, s.stream_topics, s.lifecycle, s.sse)
            for i in range(settings.connector.workers)]
        self.ports = [_free_port() for _ in self.shards]
        self._ctx = multiprocessing.get_context("spawn")
        self.procs: list[Any] = []
        self._stopping = False
        self._collector = WorkersCollector()
        self._registry = CollectorRegistry()
        self._registry.register(self._collector)
        self._http: aiohttp.ClientSession | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))
        runner = await self._serve()  # after the client: a probe may arrive at once
        try:
            for shard, port in zip(self.shards, self.ports, strict=True):
                proc = self._ctx.Process(
                    target=_worker_main, name=f"worker-{shard.index}",
                    args=(self.config, worker_overrides(self.settings, shard, port),
                          os.getpid()))
                proc.start()
                self.procs.append(proc)
                log.info("worker started", extra={"worker": shard.index, "pid": proc.pid,
                                                  "topics": list(shard.stream_topics),
                                                  "lifecycle": list(shard.lifecycle),
                                                  "sse": list(shard.sse)})
            return await self._watch()
        finally:
            self.stop()
            await self._reap()
            await self._http.close()
            if runner is not None:
                await runner.stop()

    def stop(self) -> None:
        """Ask every worker to drain and exit (SIGTERM), once."""
        if self._stopping:
            return
        self._stopping = True
        for proc in self.procs:
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)

    async def _watch(self) -> int:
        while True:
            codes = [p.exitcode for p in self.procs]
            if all(c is not None for c in codes):
                return next((c for c in codes if c), 0)
            failed = next((c for c in codes if c), None)
            if failed is not None and not self._stopping:
                index = codes.index(failed)
                log.error("worker died; stopping the others",
                          extra={"worker": index, "exitcode": failed})
                self.stop()
                await self._reap()
                return failed if failed > 0 else 1
            await asyncio.sleep(0.2)

    async def _reap(self) -> None:
        deadline = time.monotonic() + self.settings.connector.drain_timeout_s + 10
        while any(p.is_alive() for p in self.procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for proc in self.procs:
            if proc.is_alive():
                log.error("worker did not stop in time; killing it", extra={"pid": proc.pid})
                proc.kill()
                proc.join(5)

    # -- the public port: every worker behind one ------------------------------------
    async def _serve(self) -> OpsServer | None:
        o = self.settings.observe
        if not o.metrics_port:
            return None
        server = OpsServer(o.metrics_host, o.metrics_port, self._registry, self._readiness,
                           liveness=self._liveness, before_scrape=self._gather_metrics)
        await server.start()
        return server

    async def _fetch(self, index: int, path: str) -> tuple[int, str]:
        assert self._http is not None  # noqa: S101 - for mypy: run() opens it before serving
        try:
            async with self._http.get(f"http://127.0.0.1:{self.ports[index]}{path}") as resp:
                return resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 0, f"{type(exc).__name__}: {exc}"

    async def _gather_metrics(self) -> None:
        results = await asyncio.gather(*(self._fetch(i, "/metrics")
                                         for i in range(len(self.procs))))
        self._collector.texts = {i: text for i, (status, text) in enumerate(results)
                                 if status == 200}

    def _liveness(self) -> tuple[bool, dict[str, object]]:
        alive = {str(i): p.is_alive() for i, p in enumerate(self.procs)}
        return bool(alive) and all(alive.values()), {"workers": alive}

    async def _readiness(self) -> tuple[bool, dict[str, object]]:
        results = await asyncio.gather(*(self._fetch(i, "/readyz")
                                         for i in range(len(self.procs))))
        ready = bool(results) and all(status == 200 for status, _ in results)
        return ready, {"workers": {str(i): {"status": status}
                                   for i, (status, _) in enumerate(results)}}


def run_supervisor(settings: Settings, config: str | Path | None) -> int:
    log.info("starting workers", extra={"workers": settings.connector.workers})
    return asyncio.run(Supervisor(settings, config).run())
