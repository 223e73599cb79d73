"""Prediction-market lifecycle: new_market / market_resolved rings.

Market number ``k`` is a pure function of ``(seed, k)``: three in four are
Polymarket 5-minute up/down markets, the rest Kalshi tickers. At start the
rings are pre-seeded with ``PRESEED`` historical events (markets
``0..PRESEED-1`` minted, markets ``-PRESEED..-1`` resolved) so the
128-event replay on connect is visible at once. Each live tick mints the
next market and resolves the one minted ``PRESEED`` ticks earlier.
Identity is ``(venue, event_id)``; replays across reconnects repeat events,
as the vendor documents.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from connector.sandbox.simulator.bus import Event
from connector.sandbox.simulator.universe import PredictionMarket, Universe, kalshi, polymarket
from connector.sandbox.simulator.universe import token_id as make_token

RING = 128
PRESEED = 150
NEW_KEY = ("lifecycle", "new_markets")
RESOLVED_KEY = ("lifecycle", "market_resolved")
_EPOCH_S = 1_778_700_000  # start of the simulated 5-minute market schedule


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def market(seed: int, k: int) -> PredictionMarket:
    rng = random.Random(f"lifecycle:{seed}:{k}")
    start = _EPOCH_S + k * 300
    if rng.random() < 0.75:
        coin = ("btc", "eth", "sol")[rng.randrange(3)]
        slug = f"{coin}-updown-5m-{start}"
        m = polymarket(slug, f"{coin.upper()} Up or Down - {_iso(start)}", ("Up", "Down"),
                       make_token(f"lc:{seed}:{k}:yes"), make_token(f"lc:{seed}:{k}:no"),
                       _iso(start + 300))
        return PredictionMarket(m.venue, m.slug, m.question, m.outcomes, m.yes_token_id,
                                m.no_token_id, m.event_id, rng.random() < 0.2, _iso(start),
                                m.end_date, m.url)
    day = datetime.fromtimestamp(start, UTC)
    strike = 90_000 + 500 * rng.randrange(40)
    ticker = f"KXBTCD-{day:%y%b%d%H}".upper() + f"-T{strike}-{k}"
    m = kalshi(ticker, f"Bitcoin above ${strike:,} at {day:%b %d %H:00} UTC?", _iso(start + 3600))
    return PredictionMarket(m.venue, m.slug, m.question, m.outcomes, m.yes_token_id,
                            m.no_token_id, m.event_id, False, _iso(start), m.end_date, m.url)


def new_market_event(m: PredictionMarket, observed_at_ns: int) -> dict[str, Any]:
    return {"kind": "new_market", **m.row(), "observed_at_ns": observed_at_ns}


def resolved_event(seed: int, m: PredictionMarket, observed_at_ns: int) -> dict[str, Any]:
    h = hashlib.sha256(f"{seed}:{m.event_id}".encode()).digest()[0]
    yes_wins = h % 2 == 0
    return {
        "kind": "market_resolved",
        "venue": m.venue,
        "event_id": m.event_id,
        "winning_outcome": m.outcomes[0] if yes_wins else m.outcomes[1],
        "winning_token_id": m.yes_token_id if yes_wins else m.no_token_id,
        "losing_token_id": m.no_token_id if yes_wins else m.yes_token_id,
        "observed_at_ns": observed_at_ns,
    }


class LifecycleFeed:
    def __init__(self, seed: int, universe: Universe, publish: Callable[[Event], None],
                 clock: Callable[[], int], interval_s: float) -> None:
        self.seed = seed
        self.universe = universe
        self.publish = publish
        self.clock = clock
        self.new_ring: deque[dict[str, Any]] = deque(maxlen=RING)
        self.resolved_ring: deque[dict[str, Any]] = deque(maxlen=RING)
        # Minted markets stay addressable (subscribe, /v1/markets) for a while.
        self.minted: deque[PredictionMarket] = deque()
        self.k = 0
        step = int(interval_s * 1e9)
        now = clock()
        for i in range(PRESEED):
            ts = now - (PRESEED - i) * step
            self._record(market(seed, i), ts, publish_live=False)
            self.resolved_ring.append(resolved_event(seed, market(seed, i - PRESEED), ts))
        self.k = PRESEED

    def _record(self, m: PredictionMarket, ts: int, publish_live: bool) -> None:
        evt = new_market_event(m, ts)
        self.new_ring.append(evt)
        self.universe.add_market(m)
        self.minted.append(m)
        if len(self.minted) > 4 * RING:
            self.universe.forget_market(self.minted.popleft())
        if publish_live:
            self.publish(Event("new_market", (NEW_KEY,), evt))

    def tick(self) -> None:
        now = self.clock()
        self._record(market(self.seed, self.k), now, publish_live=True)
        resolved = resolved_event(self.seed, market(self.seed, self.k - PRESEED), now)
        self.resolved_ring.append(resolved)
        self.publish(Event("market_resolved", (RESOLVED_KEY,), resolved))
        self.k += 1

    def ring(self, key: tuple[str, str]) -> list[dict[str, Any]]:
        return list(self.new_ring if key == NEW_KEY else self.resolved_ring)
