"""The bounded hand-off between socket readers and the producer.

Bounded by record count and by bytes. A full hand-off makes ``put`` wait,
so the socket reader stops reading and TCP pushes back on the server: memory
stays flat however slow Kafka is, and nothing already accepted is dropped.
(The same high/low-water idea as websockets' ``asyncio/messages.py``.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Inbound:
    """One unit of input, as received, before any decoding."""

    source: str  # ws | sse | rest | connector (header "source")
    stream: str  # stream | new_markets | market_resolved | alerts | tca | control
    raw: bytes | str | None
    recv_ns: int
    epoch: int = 0
    event: str | None = None  # SSE event name
    family: str | None = None  # already known (REST, connector-made records)
    data: dict[str, Any] | None = field(default=None)  # already decoded (REST, control)
    channel: str | None = None  # Sequence topic for REST/control items
    control: Any = None  # (kind, topic, kwargs) for connector-made control records

    def size(self) -> int:
        return len(self.raw) if self.raw is not None else 256


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
