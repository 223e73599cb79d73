"""Deterministic generator of every ``/v1/stream`` topic plus SSE alerts.

One ``random.Random`` seeded from the config drives market data, a second
one trading, so the same seed yields the same sequence of payloads (only
timestamps follow the injected clock). ``emit(n)`` produces ``n``
market-data events, picking the family by ``MARKET_MIX``; every
``TRADING_STEP_EVERY`` market events one trading step runs (1-3
orders/fills/tca events) and every ``ALERT_EVERY`` one alert fires.

Payloads the vendor does not document, decided here:

``traces:<deployment_id>``::

    {"deployment_id": "dep_sim_alpha", "seq": 17, "function": "on_book",
     "payload": {"symbol": "BTC-USD", "signal": -0.1234, "action": "hold"},
     "duration_ns": 48211, "ts_ns": 1760000000000000000}

``seq`` counts up per deployment from 1.

SSE ``alert`` (``/v1/alerts/stream`` only, not a WS topic)::

    {"alert_id": "alrt_00000001", "rule_id": "rule_btc_spread",
     "rule_name": "BTC-USD spread wide", "symbol": "BTC-USD",
     "condition": "spread_bps_above", "threshold": 1.0, "value": 2.0,
     "triggered_at_ns": 1760000000000000000}

Funding ``rate_bps_per_hour`` moves in 1/8 bp steps and is sent as an int
when whole (``1``) and a float otherwise (``0.125``), as the vendor mixes
both.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from connector.sandbox.simulator.books import Book, nbbo
from connector.sandbox.simulator.bus import Event, Key
from connector.sandbox.simulator.config import ALERT_EVERY, MARKET_MIX, TRADING_STEP_EVERY
from connector.sandbox.simulator.trading import Trading
from connector.sandbox.simulator.universe import (
    DEPLOYMENTS,
    INSTRUMENTS,
    PERP_SYMBOLS,
    PERP_VENUES,
    UNDERLYINGS,
    Instrument,
)

HOUR_NS = 3_600_000_000_000
_FAMILIES = tuple(f for f, _ in MARKET_MIX)
_CUM = tuple(accumulate(w for _, w in MARKET_MIX))
_TRACE_FUNCS = ("on_book", "on_price", "on_fill", "on_timer")
_ALERT_RULES = (
    ("rule_btc_spread", "BTC-USD spread wide", "BTC-USD", "spread_bps_above"),
    ("rule_eth_mid_up", "ETH-USDT above level", "ETH-USDT", "mid_above"),
    ("rule_sol_mid_down", "SOL-USD below level", "SOL-USD", "mid_below"),
)


def _num(x: float) -> int | float:
    return int(x) if x == int(x) else x


class _Funding:
    __slots__ = ("offset_ticks", "oi_1e8", "predicted", "rate")

    def __init__(self, rng: random.Random) -> None:
        self.rate = rng.randint(-2, 8) / 8
        self.predicted = self.rate
        self.offset_ticks = rng.randint(-60, 20)
        self.oi_1e8 = rng.randint(50, 500) * 1_000_000_000


class Feed:
    def __init__(self, seed: int, publish: Callable[[Event], None],
                 clock: Callable[[], int] = time.time_ns,
                 wants: Callable[[Key], bool] | None = None) -> None:
        self.rng = rng = random.Random(f"feed:{seed}")
        self.publish = publish
        self.clock = clock
        # Building a payload nobody subscribed to is wasted work at 10k+/s;
        # state still evolves identically, so determinism does not depend on it.
        self.wants: Callable[[Key], bool] = wants or (lambda key: True)
        self.fair: dict[str, int] = {i.symbol: i.start_mid_ticks for i in INSTRUMENTS}
        self.books: dict[str, list[Book]] = {
            i.symbol: [Book(i, v, i.start_mid_ticks - 1, rng) for v in i.venues]
            for i in INSTRUMENTS
        }
        self.inst = {i.symbol: i for i in INSTRUMENTS}
        self.funding = {(v, s): _Funding(rng) for v in PERP_VENUES for s in PERP_SYMBOLS}
        self.funding_ts: dict[tuple[str, str], int] = {}
        self.trace_seq = dict.fromkeys(DEPLOYMENTS, 0)
        self.trading = Trading(seed, self.top, publish, clock)
        self.n = 0
        self.n_alerts = 0

    # -- state queries used by trading and REST -------------------------------

    def top(self, symbol: str) -> tuple[int, int]:
        books = self.books[symbol]
        tick = self.inst[symbol].tick_1e9
        return (max(b.bids[0][0] for b in books) * tick, min(b.asks[0][0] for b in books) * tick)

    def nbbo(self, symbol: str) -> dict[str, Any]:
        books = self.books[symbol]
        return nbbo(self.inst[symbol], books, max(b.ts_ns for b in books) or self.clock())

    def funding_rows(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            {**self._funding_payload(v, s, f, self.funding_ts.get((v, s), now)),
             "rate_bps_per_hour": float(f.rate), "predicted_rate_bps_per_hour": float(f.predicted),
             "snapshot_age_ms": max(0, (now - self.funding_ts.get((v, s), now)) // 1_000_000)}
            for (v, s), f in self.funding.items()
        ]

    # -- generation -------------------------------------------------------------
    # emit() mixes the kinds; the step_* methods make one event of one kind
    # (the bench pulls them one kind at a time)

    def emit(self, count: int) -> None:
        rng = self.rng
        for _ in range(count):
            self.n += 1
            r = rng.random()
            if r < _CUM[0]:
                self.step_book()
            elif r < _CUM[1]:
                self.step_prices()
            elif r < _CUM[2]:
                self.step_funding()
            elif r < _CUM[3]:
                self.step_fair_price()
            else:
                self._trace()
            if self.n % TRADING_STEP_EVERY == 0:
                self.trading.step()
            if self.n % ALERT_EVERY == 0:
                self._alert()

    def step_book(self) -> None:
        rng = self.rng
        inst = INSTRUMENTS[rng.randrange(len(INSTRUMENTS))]
        fair = self._walk(inst)
        books = self.books[inst.symbol]
        book = books[rng.randrange(len(books))]
        bids, asks = book.step(rng, fair, self.clock())
        key = ("book", inst.symbol)
        if self.wants(key):
            self.publish(Event("book", (key,), book.payload(bids, asks, False), book.snapshot))

    def _walk(self, inst: Instrument) -> int:
        rng = self.rng
        fair = self.fair[inst.symbol]
        if rng.random() < 0.3:
            fair += 1 if rng.random() < 0.5 else -1
            if inst.is_prediction:
                fair = min(max(fair, 12), 88)  # keep 10 levels inside (0, 1)
            self.fair[inst.symbol] = fair
        return fair

    def step_prices(self) -> None:
        inst = INSTRUMENTS[self.rng.randrange(len(INSTRUMENTS))]
        key = ("prices", inst.symbol)
        if self.wants(key):
            books = self.books[inst.symbol]
            self.publish(Event("prices", (key,), nbbo(inst, books, self.clock())))

    def _mark(self, venue: str, symbol: str, f: _Funding) -> int:
        spot = self.inst[symbol]
        return (self.fair[symbol] + f.offset_ticks) * spot.tick_1e9

    def _funding_payload(self, venue: str, symbol: str, f: _Funding, ts: int) -> dict[str, Any]:
        return {
            "venue": venue,
            "symbol": symbol,
            "rate_bps_per_hour": _num(f.rate),
            "predicted_rate_bps_per_hour": _num(f.predicted),
            "mark_price_1e9": self._mark(venue, symbol, f),
            "open_interest_1e8": f.oi_1e8,
            "next_settlement_ns": (ts // HOUR_NS + 1) * HOUR_NS,
            "ts_ns": ts,
        }

    def step_funding(self) -> None:
        rng = self.rng
        venue = PERP_VENUES[rng.randrange(len(PERP_VENUES))]
        symbol = PERP_SYMBOLS[rng.randrange(len(PERP_SYMBOLS))]
        f = self.funding[(venue, symbol)]
        f.rate = min(max(f.rate + rng.randint(-1, 1) / 8, -2.0), 3.0)
        f.predicted = f.rate + rng.randint(-1, 1) / 8
        f.offset_ticks = min(max(f.offset_ticks + rng.randint(-2, 2), -80), 40)
        f.oi_1e8 = max(f.oi_1e8 + rng.randint(-100, 100) * 10_000_000, 1_000_000_000)
        ts = self.clock()
        self.funding_ts[(venue, symbol)] = ts
        keys = (("funding",), ("funding", venue), ("funding", venue, symbol))
        if any(self.wants(k) for k in keys):
            self.publish(Event("funding", keys, self._funding_payload(venue, symbol, f, ts)))

    def step_fair_price(self) -> None:
        rng = self.rng
        u = UNDERLYINGS[rng.randrange(len(UNDERLYINGS))]
        symbol = f"{u}-USDT"
        legs: list[tuple[str, str, int]] = [
            (b.venue, "spot", b.mid_1e9()) for b in self.books[symbol]
        ] + [(v, "perp", self._mark(v, symbol, self.funding[(v, symbol)]))
             for v in ("binance", "hyperliquid")]
        contributors = [
            {"venue": v, "instrument_type": t, "mid_1e9": mid,
             "weight": rng.randint(50, 95) / 100, "staleness_ms": rng.randint(5, 300)}
            for v, t, mid in legs
        ]
        keys = (("fair_price",), ("fair_price", u))
        if not any(self.wants(k) for k in keys):
            return
        spot = _weighted([c for c in contributors if c["instrument_type"] == "spot"])
        perp = _weighted([c for c in contributors if c["instrument_type"] == "perp"])
        self.publish(Event("fair_price", keys, {
            "underlying": u,
            "fair_mid_1e9": _weighted(contributors),
            "spot_mid_1e9": spot,
            "perp_mid_1e9": perp,
            "basis_bps": round((perp - spot) * 10_000 / spot),
            "confidence": rng.randint(500, 990) / 1000,
            "contributors": contributors,
            "cc_ts_ns": self.clock(),
        }))

    def _trace(self) -> None:
        rng = self.rng
        dep = DEPLOYMENTS[rng.randrange(len(DEPLOYMENTS))]
        self.trace_seq[dep] += 1
        payload = {
            "deployment_id": dep,
            "seq": self.trace_seq[dep],
            "function": _TRACE_FUNCS[rng.randrange(len(_TRACE_FUNCS))],
            "payload": {
                "symbol": INSTRUMENTS[rng.randrange(5)].symbol,
                "signal": rng.randint(-10_000, 10_000) / 10_000,
                "action": ("hold", "buy", "sell")[rng.randrange(3)],
            },
            "duration_ns": rng.randint(2_000, 400_000),
            "ts_ns": self.clock(),
        }
        key = ("traces", dep)
        if self.wants(key):
            self.publish(Event("traces", (key,), payload))

    def _alert(self) -> None:
        rule_id, name, symbol, condition = _ALERT_RULES[self.rng.randrange(len(_ALERT_RULES))]
        self.n_alerts += 1
        bid, ask = self.top(symbol)
        if condition == "spread_bps_above":
            value = round((ask - bid) * 20_000 / (bid + ask), 4)
            threshold = round(value / 2, 4)
        else:
            value = (bid + ask) / 2e9
            threshold = round(value * (0.999 if condition == "mid_above" else 1.001), 2)
        self.publish(Event("alert", (("alerts",),), {
            "alert_id": f"alrt_{self.n_alerts:08d}",
            "rule_id": rule_id,
            "rule_name": name,
            "symbol": symbol,
            "condition": condition,
            "threshold": threshold,
            "value": value,
            "triggered_at_ns": self.clock(),
        }))


def _weighted(contributors: list[dict[str, Any]]) -> int:
    total = sum(c["weight"] for c in contributors)
    mid: int = round(sum(c["mid_1e9"] * c["weight"] for c in contributors) / total)
    return mid
