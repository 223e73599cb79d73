"""One small HTTP port: ``/metrics`` (Prometheus), ``/healthz``, ``/readyz``.

``/healthz`` answers while the process and its event loop are alive (the
handler itself runs on the loop, so a blocked loop fails the probe).
``/readyz`` asks the connector's readiness callback, which checks that the
streams are connected and subscribed, the producer is healthy and no topic
is staler than its limit.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Verdict = tuple[bool, dict[str, object]]
# A check answers at once (a connector reads its own state) or after awaiting
# (the worker supervisor asks each worker's port).
Check = Callable[[], Verdict | Awaitable[Verdict]]
Readiness = Check


async def _verdict(check: Check) -> Verdict:
    answer = check()
    return await answer if inspect.isawaitable(answer) else answer


class OpsServer:
    """``liveness`` None: alive while the loop answers. ``before_scrape`` runs
    before each ``/metrics`` (the supervisor gathers its workers' series)."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 readiness: Check, liveness: Check | None = None,
                 before_scrape: Callable[[], Awaitable[None]] | None = None) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._readiness = readiness
        self._liveness = liveness
        self._before_scrape = before_scrape
        self._runner: web.AppRunner | None = None
        self.port = port

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        addresses = self._runner.addresses  # what the one site is bound to (port 0 picks)
        if addresses:
            self.port = addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _: web.Request) -> web.Response:
        if self._before_scrape is not None:
            await self._before_scrape()
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        if self._liveness is None:
            return web.json_response({"status": "ok"})
        alive, detail = await _verdict(self._liveness)
        return web.json_response({"status": "ok" if alive else "down", **detail},
                                 status=200 if alive else 503)

    async def _readyz(self, _: web.Request) -> web.Response:
        ready, detail = await _verdict(self._readiness)
        return web.json_response({"ready": ready, **detail}, status=200 if ready else 503)
