"""The simulator process: one aiohttp server (WS, SSE, REST) plus generator loops.

Like the real API host, one port serves everything. ``/_sim/*`` routes are
the simulator's own (no auth): ``GET /_sim/ledger``, ``GET /_sim/stats``,
``POST /_sim/faults`` (see ``faults.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Self

from aiohttp import web

from connector.sandbox.simulator import rest, sockets, sse
from connector.sandbox.simulator.config import SimulatorConfig
from connector.sandbox.simulator.errors import error_response
from connector.sandbox.simulator.faults import Faults
from connector.sandbox.simulator.ledger import Ledger
from connector.sandbox.simulator.lifecycle import NEW_KEY, RESOLVED_KEY
from connector.sandbox.simulator.state import SimState

Handler = Callable[[SimState, web.Request], Awaitable[web.StreamResponse]]

# Paths that authenticate themselves (tickets, handshake faults) or need none.
_SELF_AUTH = frozenset({
    "/v1/stream", "/v1/ws/new_markets", "/v1/ws/market_resolved",
    "/v1/tca/stream", "/v1/alerts/stream", "/v1/health/live",
})
# Never burst more than this much generation after the loop was starved
# (a stall, a slow CI box): the simulated clock skips ahead instead.
_MAX_CATCH_UP_S = 0.25


def build_app(state: SimState) -> web.Application:
    @web.middleware
    async def envelope_errors(request: web.Request,
                              handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                              ) -> web.StreamResponse:
        path = request.path
        if path.startswith("/v1/") and path not in _SELF_AUTH:
            if not state.auth.bearer_ok(request):
                return error_response(401, "missing or invalid API key")
            if state.faults.take_rest_429():
                return error_response(429, "rate limited (simulated)",
                                      retry_after=state.faults.rest_retry_after)
        try:
            return await handler(request)
        except rest.BadParam as exc:
            return exc.response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error_response(exc.status, exc.reason)

    app = web.Application(middlewares=[envelope_errors])

    def route(method: str, path: str, handler: Handler) -> None:
        app.router.add_route(method, path, functools.partial(handler, state))

    route("GET", "/v1/stream", sockets.stream_handler)
    route("GET", "/v1/ws/new_markets", sockets.lifecycle_handler("new_markets", NEW_KEY))
    route("GET", "/v1/ws/market_resolved",
          sockets.lifecycle_handler("market_resolved", RESOLVED_KEY))
    route("GET", "/v1/tca/stream", sse.sse_handler("tca", "tca_report"))
    route("GET", "/v1/alerts/stream", sse.sse_handler("alerts", "alert"))
    route("GET", "/v1/quotes/{symbol}", rest.get_quote)
    route("GET", "/v1/quotes", rest.get_quotes)
    route("GET", "/v1/orders", rest.get_orders)
    route("GET", "/v1/fills", rest.get_fills)
    route("GET", "/v1/tca", rest.get_tca)
    route("GET", "/v1/market/funding-rates", rest.get_funding)
    route("GET", "/v1/markets", rest.get_markets)
    route("GET", "/v1/symbols", rest.get_symbols)
    route("GET", "/v1/health/live", rest.get_health)
    route("GET", "/v1/ws/ticket", rest.get_ticket)
    route("GET", "/_sim/ledger", rest.get_ledger)
    route("GET", "/_sim/stats", rest.get_stats)
    route("POST", "/_sim/faults", rest.post_faults)
    return app


class Simulator:
    """A local Sequence API. ``await start()``, use ``base_url``, ``await stop()``."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.state = SimState(config)
        self.ledger: Ledger = self.state.ledger
        self.faults: Faults = self.state.faults
        self.port = config.port
        self.base_url = f"http://{config.host}:{config.port}"
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        self._runner = web.AppRunner(build_app(self.state), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.base_url = f"http://{self.config.host}:{self.port}"
        self._tasks = [asyncio.create_task(self._generate(), name="sim-generate"),
                       asyncio.create_task(self._lifecycle(), name="sim-lifecycle")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        # Streams never end on their own; cut them so shutdown does not wait.
        await self.state.faults.drop_streams(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _generate(self) -> None:
        """Emit ``rate`` events/s in small batches: one sleep per tick, not per event."""
        rate = self.config.rate
        tick = min(0.05, max(0.002, 1.0 / rate))
        loop = asyncio.get_running_loop()
        start = loop.time()
        emitted = 0
        feed = self.state.feed
        while True:
            await asyncio.sleep(tick)
            due = int((loop.time() - start) * rate) - emitted
            cap = int(rate * _MAX_CATCH_UP_S) + 1
            if due > cap:
                emitted += due - cap
                due = cap
            if due > 0:
                feed.emit(due)
                emitted += due

    async def _lifecycle(self) -> None:
        while True:
            await asyncio.sleep(self.config.lifecycle_interval)
            self.state.lifecycle.tick()


def run_simulator(config: SimulatorConfig) -> None:
    """Serve until SIGINT/SIGTERM (the CLI's ``simulate`` command)."""

    async def main() -> None:
        sim = Simulator(config)
        await sim.start()
        print(f"simulator listening on {sim.base_url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await sim.stop()

    asyncio.run(main())
