"""Sequence's WebSockets: the unified ``/v1/stream`` and the lifecycle sockets.

The only importer of ``websockets``. A reader here does three things: connect
(with the reconnect policy), subscribe and check the ack, and hand every raw
frame to the bounded hand-off unchanged. Decoding happens downstream, so this
loop stays thin and a full hand-off stops it reading (TCP backpressure).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from connector.control.handoff import BoundedHandoff, Inbound
from connector.control.reconnect import AuthError, RetryLater, parse_retry_after, retrying
from connector.errors import FatalError

log = logging.getLogger(__name__)

# Called once per connection with (epoch, subscribed, rejected); for lifecycle
# sockets subscribed/rejected are empty.
OnSession = Callable[[int, Sequence[str], Sequence[tuple[str, str]]], Awaitable[None]]
AckParser = Callable[[str | bytes], tuple[Sequence[str], Sequence[tuple[str, str]]] | None]

HEALTHY_AFTER_S = 30.0  # a connection this old resets the backoff


def ws_url(base_url: str, path: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://"):] + path
    if base.startswith("http://"):
        return "ws://" + base[len("http://"):] + path
    return base + path


class WebSocketReader:
    """One socket, reconnecting forever (until a fatal error or ``stop``)."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        api_key: str,
        handoff: BoundedHandoff,
        subscribe: Sequence[str] | None,
        parse_ack: AckParser | None,
        on_session: OnSession,
        max_frame_bytes: int,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ack_timeout: float = 10.0,
        backoff_initial: float = 0.5,
        backoff_cap: float = 30.0,
        on_reconnect: Callable[[], None] | None = None,
        stale_after_s: float = 0.0,
    ) -> None:
        self.name = name
        self._url = url
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._handoff = handoff
        self._subscribe = list(subscribe) if subscribe is not None else None
        self._parse_ack = parse_ack
        self._on_session = on_session
        # websockets closes with 1009 above max_size; frames between our own
        # limit and 4x it still arrive and go to the dead-letter topic instead.
        self._ws_max_size = max(max_frame_bytes * 4, 4 * 1024 * 1024)
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._ack_timeout = ack_timeout
        self._backoff = (backoff_initial, backoff_cap)
        self._on_reconnect = on_reconnect
        self._stale_after = stale_after_s
        self._last_frame = 0.0
        self._handoff_blocked = False
        self.epoch = 0
        self.connected = asyncio.Event()
        self.frames = 0
        self.stale_reconnects = 0

    async def run(self) -> None:
        while True:
            async for attempt in retrying(self.name, *self._backoff):
                with attempt:
                    await self._session()
            # a healthy session ended: start again with a fresh backoff

    async def _session(self) -> None:
        try:
            ws = await connect(
                self._url,
                additional_headers=self._headers,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_interval,
                close_timeout=2,
                max_size=self._ws_max_size,
                max_queue=64,
                compression=None,
                proxy=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise AuthError(
                    f"{self.name}: Sequence refused the API key (HTTP {status}); "
                    "check SEQUENCE_API_KEY"
                ) from None
            retry_after = parse_retry_after(exc.response.headers.get("Retry-After"))
            raise RetryLater(f"{self.name}: handshake HTTP {status}", retry_after) from None
        except InvalidURI as exc:
            raise FatalError(f"{self.name}: bad URL {self._url}: {exc}") from None
        except (OSError, TimeoutError) as exc:
            raise RetryLater(f"{self.name}: connect failed: {exc}") from None
        self.epoch += 1
        if self.epoch > 1 and self._on_reconnect is not None:
            self._on_reconnect()
        started = time.monotonic()
        try:
            await self._open(ws)
            await self._pump_watched(ws)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            log.warning("socket closed", extra={"stream": self.name, "code": code,
                                                "epoch": self.epoch})
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                return
            raise RetryLater(f"{self.name}: closed with code {code}") from None
        finally:
            self.connected.clear()
            await ws.close()

    async def _open(self, ws: ClientConnection) -> None:
        if self._subscribe is None:
            self.connected.set()
            await self._on_session(self.epoch, (), ())
            return
        await ws.send(orjson.dumps({"subscribe": self._subscribe}).decode())
        # The vendor promises the ack is the first message after subscribe;
        # anything before it is kept (handed on), not lost.
        deadline = asyncio.get_running_loop().time() + self._ack_timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                raw = await asyncio.wait_for(ws.recv(), max(remaining, 0.001))
            except TimeoutError:
                raise RetryLater(f"{self.name}: no subscribe ack within "
                                 f"{self._ack_timeout}s") from None
            ack = self._parse_ack(raw) if self._parse_ack else None
            if ack is not None:
                subscribed, rejected = ack
                self.connected.set()
                await self._on_session(self.epoch, subscribed, rejected)
                return
            await self._hand_on(raw)

    async def _pump(self, ws: ClientConnection) -> None:
        async for raw in ws:
            await self._hand_on(raw)

    async def _pump_watched(self, ws: ClientConnection) -> None:
        """Read until the socket closes, or until it has been silent too long.

        Pings keep idle links alive and catch dead TCP peers; the watchdog
        catches a server that answers pings but stopped sending data.
        """
        if self._stale_after <= 0:
            await self._pump(ws)
            return
        loop = asyncio.get_running_loop()
        self._last_frame = loop.time()
        pump = asyncio.create_task(self._pump(ws))
        try:
            while not pump.done():
                await asyncio.wait([pump], timeout=min(1.0, self._stale_after / 4))
                silent = loop.time() - self._last_frame
                # a full hand-off is our own backpressure, not a stale server
                if not pump.done() and silent > self._stale_after and not self._handoff_blocked:
                    self.stale_reconnects += 1
                    raise RetryLater(f"{self.name}: no data for {silent:.0f}s; reconnecting")
            pump.result()
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def _hand_on(self, raw: str | bytes) -> None:
        self.frames += 1
        self._handoff_blocked = True
        self._last_frame = asyncio.get_running_loop().time()
        await self._handoff.put(
            Inbound(source="ws", stream=self.name, raw=raw, recv_ns=time.time_ns(),
                    epoch=self.epoch)
        )
        self._handoff_blocked = False
