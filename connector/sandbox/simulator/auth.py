"""API keys and single-use WebSocket tickets.

Only ``Authorization: Bearer <key>`` and (on sockets) ``?ticket=`` are
accepted; ``?api_key=`` is ignored, as the vendor removed it.
"""

from __future__ import annotations

import secrets
import time

from aiohttp import web

TICKET_TTL_S = 30.0


class Auth:
    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = frozenset(keys)
        self.tickets: dict[str, float] = {}  # ticket -> monotonic expiry

    def bearer_ok(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() in self.keys

    def issue_ticket(self) -> str:
        now = time.monotonic()
        # Drop expired tickets here so an unused ticket never lives forever.
        for t in [t for t, exp in self.tickets.items() if exp <= now]:
            del self.tickets[t]
        ticket = "wst_" + secrets.token_hex(16)
        self.tickets[ticket] = now + TICKET_TTL_S
        return ticket

    def consume_ticket(self, ticket: str) -> bool:
        expiry = self.tickets.pop(ticket, None)
        return expiry is not None and expiry > time.monotonic()

    def socket_ok(self, request: web.Request) -> bool:
        if self.bearer_ok(request):
            return True
        ticket = request.query.get("ticket")
        return bool(ticket) and self.consume_ticket(ticket or "")
