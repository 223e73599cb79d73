"""One small HTTP port: ``/metrics`` (Prometheus), ``/healthz``, ``/readyz``.

``/healthz`` answers while the process and its event loop are alive (the
handler itself runs on the loop, so a blocked loop fails the probe).
``/readyz`` asks the connector's readiness callback, which checks that the
streams are connected and subscribed, the producer is healthy and no topic
is staler than its limit.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Readiness = Callable[[], tuple[bool, dict[str, object]]]


class OpsServer:
    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 readiness: Readiness) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._readiness = readiness
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
        sockets = getattr(site._server, "sockets", None)  # an asyncio.Server
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        ready, detail = self._readiness()
        return web.json_response({"ready": ready, **detail}, status=200 if ready else 503)
