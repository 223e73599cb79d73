"""What each client was sent (the ledger) and traffic counters (stats).

Tests compare what a consumer wrote against the ledger, so frames are kept
exactly as sent: the raw bytes are stored and parsed only when read, which
keeps recording cheap. Garbage frames (fault injection) are recorded as
``{"_garbage": "<kind>"}`` because some are not JSON. Per connection at
most ``MAX_FRAMES`` frames are kept (``truncated`` counts the rest), and at
most ``MAX_CONNECTIONS`` closed connections are remembered.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from typing import Any

import orjson

MAX_FRAMES = 200_000
MAX_CONNECTIONS = 1_000


class LedgerConnection:
    def __init__(self, conn_id: int, path: str, enabled: bool) -> None:
        self.id = conn_id
        self.path = path
        self.connected_at_ns = time.time_ns()
        self.closed_at_ns: int | None = None
        self.topics: list[str] = []  # every topic ever accepted, in order
        self.enabled = enabled
        self.truncated = 0
        self._frames: list[bytes | dict[str, Any]] = []

    def record(self, frame: bytes | dict[str, Any]) -> None:
        if not self.enabled:
            return
        if len(self._frames) >= MAX_FRAMES:
            self.truncated += 1
            return
        self._frames.append(frame)

    def add_topics(self, topics: list[str]) -> None:
        self.topics.extend(t for t in topics if t not in self.topics)

    @property
    def frames(self) -> list[Any]:
        return [f if isinstance(f, dict) else _parse(f) for f in self._frames]

    @property
    def raw_frames(self) -> list[bytes | dict[str, Any]]:
        """The frames as stored, bytes as sent: for readers that parse them their own way."""
        return self._frames

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "connected_at_ns": self.connected_at_ns,
            "closed_at_ns": self.closed_at_ns,
            "topics": list(self.topics),
            "truncated": self.truncated,
            "frames": self.frames,
        }


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"_unparsable": raw[:200].decode(errors="replace")}


class Ledger:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._next = 0
        self._conns: OrderedDict[int, LedgerConnection] = OrderedDict()

    def open(self, path: str) -> LedgerConnection:
        self._next += 1
        conn = LedgerConnection(self._next, path, self.enabled)
        self._conns[conn.id] = conn
        while len(self._conns) > MAX_CONNECTIONS:
            oldest = next(iter(self._conns.values()))
            if oldest.closed_at_ns is None:
                break  # never forget a live connection
            self._conns.popitem(last=False)
        return conn

    def close(self, conn: LedgerConnection) -> None:
        conn.closed_at_ns = time.time_ns()

    def connections(self, path: str | None = None) -> list[LedgerConnection]:
        return [c for c in self._conns.values() if path is None or c.path == path]

    def get(self, conn_id: int) -> LedgerConnection | None:
        return self._conns.get(conn_id)

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "connections": [c.to_json() for c in self._conns.values()]}


class Stats:
    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()  # channel (or path for lifecycle/SSE) -> frames
        self.gaps = 0
        self.dropped = 0
        self.garbage = 0
        self.connections_total = 0
        self.connections_open = 0

    def to_json(self, generated: int) -> dict[str, Any]:
        return {
            "sent": dict(self.sent),
            "sent_total": sum(self.sent.values()),
            "gaps": self.gaps,
            "dropped": self.dropped,
            "garbage": self.garbage,
            "connections": {"open": self.connections_open, "total": self.connections_total},
            "generated": generated,
        }
