"""Everything the handlers share, in one object built by the Simulator."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from connector.sandbox.simulator.auth import Auth
from connector.sandbox.simulator.bus import Hub, Outbox, Subscription
from connector.sandbox.simulator.config import SimulatorConfig
from connector.sandbox.simulator.faults import Faults
from connector.sandbox.simulator.feed import Feed
from connector.sandbox.simulator.ledger import Ledger, LedgerConnection, Stats
from connector.sandbox.simulator.lifecycle import LifecycleFeed
from connector.sandbox.simulator.universe import Universe


@dataclass(eq=False)
class Conn:
    """One open streaming connection (WS or SSE)."""

    path: str
    outbox: Outbox
    record: LedgerConnection
    abort: Callable[[int | None], Awaitable[None]]
    garbage: deque[str] = field(default_factory=deque)


class SimState:
    def __init__(self, config: SimulatorConfig, clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.universe = Universe()
        self.hub = Hub()
        self.feed = Feed(config.seed, self.hub.publish, clock, self.hub.wants)
        self.lifecycle = LifecycleFeed(config.seed, self.universe, self.hub.publish, clock,
                                       config.lifecycle_interval)
        self.auth = Auth(config.api_keys)
        self.faults = Faults()
        self.ledger = Ledger(config.ledger)
        self.stats = Stats()
        self.conns: set[Conn] = set()
        self.faults.wire(drop=self._drop, garbage=self._garbage, dup=self._dup)

    def open_conn(self, path: str, abort: Callable[[int | None], Awaitable[None]]) -> Conn:
        conn = Conn(path, Outbox(self.config.buffer_size), self.ledger.open(path), abort)
        self.conns.add(conn)
        self.stats.connections_total += 1
        self.stats.connections_open += 1
        return conn

    def close_conn(self, conn: Conn) -> None:
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        for sub in conn.outbox.subs.values():
            self.hub.remove(sub)
        conn.outbox.subs.clear()
        self.stats.connections_open -= 1
        self.ledger.close(conn.record)

    def subscribe(self, conn: Conn, topic: str, key: tuple[str, ...],
                  bare: bool = False) -> Subscription:
        old = conn.outbox.subs.get(topic)
        if old is not None:
            # Re-subscribing restarts book snapshots but keeps what is buffered.
            old.seen.clear()
            return old
        sub = Subscription(topic, key, conn.outbox, self.config.buffer_size, bare)
        conn.outbox.subs[topic] = sub
        self.hub.add(sub)
        return sub

    def unsubscribe(self, conn: Conn, topic: str) -> bool:
        sub = conn.outbox.subs.pop(topic, None)
        if sub is None:
            return False
        self.hub.remove(sub)
        return True

    async def _drop(self, code: int | None) -> int:
        conns = list(self.conns)
        for conn in conns:
            await conn.abort(code)
        return len(conns)

    def _garbage(self, plan: list[str]) -> int:
        hit = 0
        for conn in self.conns:
            if conn.path == "/v1/stream":
                conn.garbage.extend(plan)
                conn.outbox.wake.set()
                hit += 1
        return hit

    def _dup(self, count: int) -> None:
        self.feed.trading.duplicate_fills = count
