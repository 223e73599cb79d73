"""Sequence's Server-Sent-Event streams (``/v1/alerts/stream``, ``/v1/tca/stream``).

Reads the event stream with aiohttp, reconnecting with the shared policy and
``Last-Event-ID`` so the server may resume. Every event goes to the hand-off
with its SSE event name; decoding happens downstream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp

from connector.handoff import BoundedHandoff, SseFrame
from connector.source.reconnect import AuthError, RetryLater, parse_retry_after, retrying

log = logging.getLogger(__name__)

SSE_PATHS = {"alerts": "/v1/alerts/stream", "tca": "/v1/tca/stream"}


class SseEvent:
    __slots__ = ("data", "event", "id")

    def __init__(self, event: str, data: str, id: str | None) -> None:
        self.event = event
        self.data = data
        self.id = id


async def parse_sse(lines: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[SseEvent]:
    """The SSE framing rules of the HTML spec, the subset servers use."""
    event, last_id, size = "message", None, 0
    data: list[str] = []
    async for raw_line in lines:
        line = raw_line.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(event, "\n".join(data), last_id)
            event, data, size = "message", [], 0
            continue
        if line.startswith(":"):
            continue  # keep-alive comment
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            size += len(value)
            # keep oversize events bounded: the decoder rejects them by size
            data.append(value if size <= max_bytes * 2 else "")
        elif name == "id":
            last_id = value


class SseReader:
    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: str,
        handoff: BoundedHandoff,
        max_frame_bytes: int,
        on_session: Callable[[int], Awaitable[None]],
        backoff_initial: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self.name = name
        self._url = base_url.rstrip("/") + SSE_PATHS[name]
        self._api_key = api_key
        self._handoff = handoff
        self._max = max_frame_bytes
        self._on_session = on_session
        self._backoff = (backoff_initial, backoff_cap)
        self._last_id: str | None = None
        self.epoch = 0
        self.frames = 0

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=None)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                async for attempt in retrying(f"sse:{self.name}", *self._backoff):
                    with attempt:
                        await self._session(session)

    async def _session(self, session: aiohttp.ClientSession) -> None:
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "text/event-stream"}
        if self._last_id:
            headers["Last-Event-ID"] = self._last_id
        try:
            async with session.get(self._url, headers=headers) as resp:
                if resp.status in (401, 403):
                    raise AuthError(f"sse:{self.name}: Sequence refused the API key "
                                    f"(HTTP {resp.status}); check SEQUENCE_API_KEY")
                if resp.status != 200:
                    raise RetryLater(f"sse:{self.name}: HTTP {resp.status}",
                                     parse_retry_after(resp.headers.get("Retry-After")))
                self.epoch += 1
                await self._on_session(self.epoch)
                async for ev in parse_sse(resp.content.__aiter__(), self._max):
                    if ev.id:
                        self._last_id = ev.id
                    self.frames += 1
                    await self._handoff.put(SseFrame(
                        stream=self.name, event=ev.event, raw=ev.data,
                        recv_ns=time.time_ns(), epoch=self.epoch))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise RetryLater(f"sse:{self.name}: {exc}") from None
        raise RetryLater(f"sse:{self.name}: stream ended")
