"""Fault knobs for chaos tests: Python methods, or ``POST /_sim/faults`` (no auth).

Body keys (any combination; the response lists what was applied)::

    {"drop": {"code": 1011}}            close every stream socket with that code;
    {"drop": {}}                        ... or, without a code (or 1006), abort the
                                        TCP connection. SSE streams are aborted.
    {"stall": {"seconds": 2.0}}         stop writing to every client (sockets stay
                                        open, buffers keep filling -> Gap events)
    {"garbage": {"count": 4, "kinds": ["malformed_json", "unknown_channel",
                 "missing_data", "wrong_types", "oversized"]}}
                                        each open /v1/stream socket gets ``count``
                                        bad frames, one after each good frame; kinds
                                        cycle (default: all but oversized; oversized
                                        is a 2 MiB frame, over websockets' 1 MiB cap)
    {"duplicate_fills": {"count": 3}}   the next 3 fills are each sent twice (same
                                        venue_execution_id); REST keeps one
    {"handshake": {"statuses": [503, 429], "retry_after": 1}}
                                        the next WS handshakes (any socket path)
                                        answer these HTTP statuses, in order, with
                                        Retry-After on 429/503 and an error envelope
    {"rest_429": {"count": 2, "retry_after": 1}}
                                        the next 2 authenticated REST calls get 429
    {"reset": true}                     clear every pending fault
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

GARBAGE_KINDS = ("malformed_json", "unknown_channel", "missing_data", "wrong_types", "oversized")
DEFAULT_GARBAGE = GARBAGE_KINDS[:4]
OVERSIZED_BYTES = 2 * 1024 * 1024


def garbage_frame(kind: str, topic: str) -> bytes:
    """One bad frame of ``kind``; ``topic`` is a topic the client did subscribe."""
    if kind == "malformed_json":
        return b'{"channel": "' + topic.encode() + b'", "data": {"symbol": '
    if kind == "unknown_channel":
        return orjson.dumps({"channel": "no_such_topic:XYZ", "data": {"x": 1}})
    if kind == "missing_data":
        return orjson.dumps({"channel": topic})
    if kind == "wrong_types":
        return orjson.dumps({"channel": topic, "data": {
            "symbol": 12345, "ts_ns": "yesterday", "best_bid_px_1e9": [1], "qty_1e8": None,
            "bids": "none", "venue_execution_id": 7}})
    if kind == "oversized":
        return orjson.dumps({"channel": topic, "data": {"padding": "x" * OVERSIZED_BYTES}})
    raise ValueError(f"unknown garbage kind {kind!r}")


class Faults:
    def __init__(self) -> None:
        self.stall_until = 0.0  # time.monotonic() deadline
        self.handshakes: deque[int] = deque()
        self.handshake_retry_after = 1.0
        self.rest_429 = 0
        self.rest_retry_after = 1.0
        # Wired by the server: they need the live connections and the trading engine.
        self._drop: Callable[[int | None], Awaitable[int]] | None = None
        self._garbage: Callable[[list[str]], int] | None = None
        self._dup: Callable[[int], None] | None = None

    def wire(self, drop: Callable[[int | None], Awaitable[int]],
             garbage: Callable[[list[str]], int], dup: Callable[[int], None]) -> None:
        self._drop = drop
        self._garbage = garbage
        self._dup = dup

    async def drop_streams(self, code: int | None = None) -> int:
        """Drop every stream connection; returns how many were dropped."""
        return await self._drop(code) if self._drop else 0

    def stall(self, seconds: float) -> None:
        self.stall_until = time.monotonic() + seconds

    async def wait_if_stalled(self) -> None:
        delay = self.stall_until - time.monotonic()
        while delay > 0:
            await asyncio.sleep(delay)
            delay = self.stall_until - time.monotonic()

    def inject_garbage(self, count: int, kinds: list[str] | None = None) -> int:
        """Queue ``count`` bad frames on each open /v1/stream socket; returns sockets hit."""
        kinds = kinds or list(DEFAULT_GARBAGE)
        for k in kinds:
            if k not in GARBAGE_KINDS:
                raise ValueError(f"unknown garbage kind {k!r}")
        plan = [kinds[i % len(kinds)] for i in range(count)]
        return self._garbage(plan) if self._garbage else 0

    def duplicate_fills(self, count: int) -> None:
        if self._dup:
            self._dup(count)

    def fail_handshakes(self, statuses: list[int], retry_after: float = 1.0) -> None:
        self.handshakes.extend(statuses)
        self.handshake_retry_after = retry_after

    def rate_limit_rest(self, count: int, retry_after: float = 1.0) -> None:
        self.rest_429 += count
        self.rest_retry_after = retry_after

    def reset(self) -> None:
        self.stall_until = 0.0
        self.handshakes.clear()
        self.rest_429 = 0
        if self._dup:
            self._dup(0)

    def take_handshake(self) -> int | None:
        return self.handshakes.popleft() if self.handshakes else None

    def take_rest_429(self) -> bool:
        if self.rest_429 > 0:
            self.rest_429 -= 1
            return True
        return False

    async def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a ``POST /_sim/faults`` body; raises ValueError/TypeError on bad input."""
        done: dict[str, Any] = {}
        if body.get("reset"):
            self.reset()
            done["reset"] = True
        if "stall" in body:
            self.stall(float(body["stall"].get("seconds", 1.0)))
            done["stall"] = True
        if "garbage" in body:
            g = body["garbage"]
            done["garbage"] = self.inject_garbage(int(g.get("count", 1)), g.get("kinds"))
        if "duplicate_fills" in body:
            self.duplicate_fills(int(body["duplicate_fills"].get("count", 1)))
            done["duplicate_fills"] = True
        if "handshake" in body:
            h = body["handshake"]
            statuses = [int(s) for s in h.get("statuses", [])]
            self.fail_handshakes(statuses, float(h.get("retry_after", 1.0)))
            done["handshake"] = statuses
        if "rest_429" in body:
            r = body["rest_429"]
            self.rate_limit_rest(int(r.get("count", 1)), float(r.get("retry_after", 1.0)))
            done["rest_429"] = True
        if "drop" in body:
            code = body["drop"].get("code")
            done["drop"] = await self.drop_streams(None if code is None else int(code))
        if not done:
            raise ValueError("no known fault in body")
        return done
