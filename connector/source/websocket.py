"""Sequence's WebSockets: the unified ``/v1/stream`` and the lifecycle sockets.

A reader here does three things: connect (with the reconnect policy),
subscribe and check the ack, and hand every raw frame to the bounded hand-off
unchanged. Decoding happens downstream, so this loop stays thin and a full
hand-off stops it reading (TCP backpressure).

The client is aiohttp's, not ``websockets``: on the bench feed it receives
a frame in ~1 µs of CPU against ~4.7 µs (about 1M vs 210k frames/s on one
core, ``bench/README.md``), and with ``decode_text=False`` it hands text
frames on as bytes, which orjson parses without a UTF-8 decode first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, Literal

import aiohttp
import orjson
from aiohttp import ClientWebSocketResponse, WSMsgType

from connector.errors import FatalError
from connector.handoff import BoundedHandoff, Inbound, LifecycleFrame, StreamFrame
from connector.source.reconnect import AuthError, RetryLater, parse_retry_after, retrying

# decode_text=False: text frames arrive as bytes (for orjson)
_WebSocket = ClientWebSocketResponse[Literal[False]]

log = logging.getLogger(__name__)

# Called once per connection with (epoch, subscribed, rejected); for lifecycle
# sockets subscribed/rejected are empty.
OnSession = Callable[[int, Sequence[str], Sequence[tuple[str, str]]], Awaitable[None]]
AckParser = Callable[[str | bytes], tuple[Sequence[str], Sequence[tuple[str, str]]] | None]

HEALTHY_AFTER_S = 30.0  # a connection this old resets the backoff
_DATA = (WSMsgType.TEXT, WSMsgType.BINARY)


class SocketClosed(Exception):
    """The server closed the socket (or the link died); ``code`` as RFC 6455."""

    def __init__(self, code: int) -> None:
        super().__init__(f"closed with code {code}")
        self.code = code


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
        # the unified stream subscribes; a lifecycle socket only listens
        self._frame: Callable[[str | bytes, int, int], Inbound] = (
            StreamFrame if subscribe is not None else partial(LifecycleFrame, name))
        # The client closes with 1009 above max_msg_size; frames between our
        # own limit and 4x it still arrive and go to the dead-letter topic.
        self._ws_max_size = max(max_frame_bytes * 4, 4 * 1024 * 1024)
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._ack_timeout = ack_timeout
        self._backoff = (backoff_initial, backoff_cap)
        self._on_reconnect = on_reconnect
        self._stale_after = stale_after_s
        self._handoff_blocked = False
        self.epoch = 0
        self.connected = asyncio.Event()
        self.frames = 0
        self.stale_reconnects = 0

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._open_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                async for attempt in retrying(self.name, *self._backoff):
                    with attempt:
                        await self._session(session)
                # a healthy session ended: start again with a fresh backoff

    async def _connect(self, session: aiohttp.ClientSession) -> _WebSocket:
        try:
            async with asyncio.timeout(self._open_timeout):
                return await session.ws_connect(
                    self._url,
                    headers=self._headers,
                    heartbeat=self._ping_interval,  # ping; no pong in time closes the link
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                    max_msg_size=self._ws_max_size,
                    compress=0,
                    autoping=True,
                    decode_text=False,
                )
        except aiohttp.WSServerHandshakeError as exc:
            status = exc.status
            if status in (401, 403):
                raise AuthError(
                    f"{self.name}: Sequence refused the API key (HTTP {status}); "
                    "check SEQUENCE_API_KEY"
                ) from None
            headers: Mapping[str, str] = exc.headers or {}
            retry_after = parse_retry_after(headers.get("Retry-After"))
            raise RetryLater(f"{self.name}: handshake HTTP {status}", retry_after) from None
        except aiohttp.InvalidURL as exc:
            raise FatalError(f"{self.name}: bad URL {self._url}: {exc}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise RetryLater(f"{self.name}: connect failed: {type(exc).__name__}: {exc}"
                             ) from None

    async def _session(self, session: aiohttp.ClientSession) -> None:
        ws = await self._connect(session)
        self.epoch += 1
        if self.epoch > 1 and self._on_reconnect is not None:
            self._on_reconnect()
        started = time.monotonic()
        try:
            await self._open(ws)
            await self._pump_watched(ws)
        except SocketClosed as exc:
            log.warning("socket closed", extra={"stream": self.name, "code": exc.code,
                                                "epoch": self.epoch})
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                return
            raise RetryLater(f"{self.name}: closed with code {exc.code}") from None
        finally:
            self.connected.clear()
            await ws.close()

    @staticmethod
    def _closed(ws: _WebSocket, msg: Any) -> SocketClosed:  # a WSMessage (either flavour)
        if msg.type is WSMsgType.CLOSE:
            code = int(msg.data or 1005)
        elif msg.type is WSMsgType.ERROR and isinstance(msg.data, aiohttp.WebSocketError):
            code = msg.data.code
        else:
            code = ws.close_code or 1006  # abrupt end of the TCP stream
        return SocketClosed(code)

    async def _open(self, ws: _WebSocket) -> None:
        if self._subscribe is None:
            self.connected.set()
            await self._on_session(self.epoch, (), ())
            return
        await ws.send_str(orjson.dumps({"subscribe": self._subscribe}).decode())
        # The vendor promises the ack is the first message after subscribe;
        # anything before it is kept (handed on), not lost.
        deadline = asyncio.get_running_loop().time() + self._ack_timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                msg = await ws.receive(timeout=max(remaining, 0.001))
            except TimeoutError:
                raise RetryLater(f"{self.name}: no subscribe ack within "
                                 f"{self._ack_timeout}s") from None
            if msg.type not in _DATA:
                raise self._closed(ws, msg)
            raw = msg.data
            ack = self._parse_ack(raw) if self._parse_ack else None
            if ack is not None:
                subscribed, rejected = ack
                self.connected.set()
                await self._on_session(self.epoch, subscribed, rejected)
                return
            item = self._take(raw)
            if item is not None:
                await self._wait_for_room(item)

    async def _pump(self, ws: _WebSocket) -> None:
        receive = ws.receive
        take = self._take
        while True:
            msg = await receive()
            if msg.type not in _DATA:
                raise self._closed(ws, msg)
            item = take(msg.data)
            if item is not None:  # the hand-off is full: wait (stop reading)
                await self._wait_for_room(item)

    async def _pump_watched(self, ws: _WebSocket) -> None:
        """Read until the socket closes, or until it has been silent too long.

        Pings keep idle links alive and catch dead TCP peers; the watchdog
        catches a server that answers pings but stopped sending data.
        """
        if self._stale_after <= 0:
            await self._pump(ws)
            return
        loop = asyncio.get_running_loop()
        # the frame count, not a clock read per frame, tells when data last came
        seen, last_data = self.frames, loop.time()
        pump = asyncio.create_task(self._pump(ws))
        try:
            while not pump.done():
                await asyncio.wait([pump], timeout=min(1.0, self._stale_after / 4))
                now = loop.time()
                if self.frames != seen:
                    seen, last_data = self.frames, now
                silent = now - last_data
                # a full hand-off is our own backpressure, not a stale server
                if not pump.done() and silent > self._stale_after and not self._handoff_blocked:
                    self.stale_reconnects += 1
                    raise RetryLater(f"{self.name}: no data for {silent:.0f}s; reconnecting")
            pump.result()
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    def _take(self, raw: str | bytes) -> Inbound | None:
        """Hand one frame on if there is room now (the common case, no
        coroutine); otherwise return it for ``_wait_for_room``."""
        self.frames += 1
        item = self._frame(raw, time.time_ns(), self.epoch)
        return None if self._handoff.offer(item) else item

    async def _wait_for_room(self, item: Inbound) -> None:
        self._handoff_blocked = True  # our own backpressure, not a stale server
        try:
            await self._handoff.put(item)
        finally:
            self._handoff_blocked = False
