"""The bounded hand-off between socket readers and the producer.

Bounded by record count and by bytes. A full hand-off makes ``put`` wait,
so the socket reader stops reading and TCP pushes back on the server: memory
stays flat however slow Kafka is, and nothing already accepted is dropped.
(The same high/low-water idea as websockets' ``asyncio/messages.py``.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from connector.normalize.records import ControlKind

# One class per kind of input, so the bridge tells them apart by type, not by
# string tags. ``source`` is the ``sequence.source`` header of what they become;
# ``stream`` names where they came from (dead-letter and log context);
# ``channel`` is the Sequence topic when it is known before decoding.
# ``size()`` is what the hand-off's byte bound counts.

_DECODED_SIZE = 256  # an estimate for items that arrive already decoded


@dataclass(slots=True)
class StreamFrame:
    """One frame of the unified ``/v1/stream`` WebSocket, undecoded."""

    source: ClassVar[str] = "ws"
    stream: ClassVar[str] = "stream"
    channel: ClassVar[None] = None
    raw: bytes | str
    recv_ns: int
    epoch: int = 0

    def size(self) -> int:
        return len(self.raw)


@dataclass(slots=True)
class LifecycleFrame:
    """One frame of a lifecycle socket (``stream``: new_markets | market_resolved)."""

    source: ClassVar[str] = "ws"
    channel: ClassVar[None] = None
    stream: str
    raw: bytes | str
    recv_ns: int
    epoch: int = 0

    def size(self) -> int:
        return len(self.raw)


@dataclass(slots=True)
class SseFrame:
    """One Server-Sent Event, undecoded (``stream``: alerts | tca; ``event``: its event name)."""

    source: ClassVar[str] = "sse"
    channel: ClassVar[None] = None
    stream: str
    event: str | None
    raw: bytes | str
    recv_ns: int
    epoch: int = 0

    def size(self) -> int:
        return len(self.raw)


class RestKind(StrEnum):
    resnapshot = "resnapshot"  # market data after a gap or a reconnect
    backfill = "backfill"  # orders, fills, tca missed while away


@dataclass(slots=True)
class RestRecord:
    """One record fetched from Sequence's REST API, already decoded."""

    source: ClassVar[str] = "rest"
    kind: RestKind
    family: str
    data: dict[str, Any]
    channel: str
    recv_ns: int
    epoch: int = 0

    @property
    def stream(self) -> str:
        return self.kind.value

    def size(self) -> int:
        return _DECODED_SIZE


@dataclass(slots=True)
class ControlRequest:
    """A control record the connector itself asks for (gap, reconnect, backfill...)."""

    source: ClassVar[str] = "connector"
    stream: ClassVar[str] = "control"
    kind: ControlKind
    topic: str  # the Sequence topic (or family, socket) it is about
    fields: dict[str, Any]  # keyword arguments of Bridge.control: reason, dropped, detail
    recv_ns: int
    epoch: int = 0

    @property
    def channel(self) -> str:
        return self.topic

    def size(self) -> int:
        return _DECODED_SIZE


Inbound = StreamFrame | LifecycleFrame | SseFrame | RestRecord | ControlRequest


class BoundedHandoff:
    def __init__(self, max_records: int, max_bytes: int) -> None:
        self._items: deque[tuple[Inbound, int]] = deque()
        self._bytes = 0
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._not_full = asyncio.Condition()
        self._not_empty = asyncio.Event()
        self.blocked_puts = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def _full(self, size: int) -> bool:
        if not self._items:
            return False  # an oversize item alone is let through: it cannot wait forever
        return len(self._items) >= self._max_records or self._bytes + size > self._max_bytes

    def offer(self, item: Inbound) -> bool:
        """Append ``item`` if there is room now (no coroutine); False when full."""
        size = item.size()
        if self._full(size):
            return False
        self._append(item, size)
        return True

    async def put(self, item: Inbound) -> None:
        """Append ``item``, waiting for room when the hand-off is full."""
        if self.offer(item):
            return
        self.blocked_puts += 1
        size = item.size()
        async with self._not_full:
            await self._not_full.wait_for(lambda: not self._full(size))
        self._append(item, size)

    def _append(self, item: Inbound, size: int) -> None:
        self._items.append((item, size))
        self._bytes += size
        if not self._not_empty.is_set():
            self._not_empty.set()

    async def get_batch(self, max_items: int) -> list[Inbound]:
        """Wait for at least one item; return up to ``max_items`` in arrival order."""
        while not self._items:
            self._not_empty.clear()
            await self._not_empty.wait()
        batch: list[Inbound] = []
        while self._items and len(batch) < max_items:
            item, size = self._items.popleft()
            self._bytes -= size
            batch.append(item)
        async with self._not_full:
            self._not_full.notify_all()
        return batch
