"""Per-venue L2 books kept in integer ticks, and the NBBO across them.

Prices are integer ticks and sizes integer 1e-8 units so state never drifts;
the wire floats are made by one correctly rounded division, which JSON
encoders then print in shortest form (``76410.5``, not ``76410.50000001``).

Delta semantics (``is_snapshot: false``): ``bids``/``asks`` list only the
levels that changed, as ``[price, size]``; size ``0`` removes the level.
Applying the deltas in order to the last snapshot gives exactly the next
full 10-level book (what ``GET /v1/quotes`` returns for that venue).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from connector.sandbox.simulator.universe import Instrument

LEVELS = 10
Level = tuple[int, int]  # (price ticks, size 1e-8)


class Book:
    """One venue's top-10 book for one instrument."""

    __slots__ = ("_polymarket", "_px", "asks", "bids", "inst", "ts_ns", "venue")

    def __init__(self, inst: Instrument, venue: str, best_bid: int, rng: random.Random) -> None:
        self.inst = inst
        self.venue = venue
        self._px = inst.tick_1e9
        self._polymarket = venue == "polymarket"
        self.bids: list[Level] = [(best_bid - i, self._size(rng)) for i in range(LEVELS)]
        self.asks: list[Level] = [(best_bid + 1 + i, self._size(rng)) for i in range(LEVELS)]
        self.ts_ns = 0

    def _size(self, rng: random.Random) -> int:
        return self.inst.lot_1e8 * rng.randint(1, 40) // 10

    def step(self, rng: random.Random, fair: int, ts_ns: int) -> tuple[list[Level], list[Level]]:
        """Move the book one tick; return the changed (bid, ask) levels."""
        old_b, old_a = dict(self.bids), dict(self.asks)
        best_bid = fair - 1 - rng.randint(0, 1)
        best_ask = fair + rng.randint(0, 1)
        if best_bid != self.bids[0][0] or best_ask != self.asks[0][0]:
            self.bids = [(p, old_b.get(p) or self._size(rng))
                         for p in range(best_bid, best_bid - LEVELS, -1)]
            self.asks = [(p, old_a.get(p) or self._size(rng))
                         for p in range(best_ask, best_ask + LEVELS)]
        # Resize one or two levels so that most ticks change something visible.
        for _ in range(rng.randint(1, 2)):
            side = self.bids if rng.random() < 0.5 else self.asks
            i = rng.randrange(LEVELS)
            side[i] = (side[i][0], self._size(rng))
        self.ts_ns = ts_ns
        return _diff(old_b, self.bids), _diff(old_a, self.asks)

    def px(self, ticks: int) -> float:
        return ticks * self._px / 1e9

    def px_1e9(self, ticks: int) -> int:
        return ticks * self._px

    def levels(self, levels: list[Level], depth: int = LEVELS) -> list[list[float]]:
        px = self._px
        return [[p * px / 1e9, s / 1e8] for p, s in levels[:depth]]

    def checksum(self) -> int | None:
        """Truncated SHA-1 of the full book (unsigned 32-bit); Polymarket only."""
        if not self._polymarket:
            return None
        digest = hashlib.sha1(repr((self.bids, self.asks)).encode(), usedforsecurity=False).digest()
        return int.from_bytes(digest[:4], "big")

    def payload(self, bids: list[Level], asks: list[Level], snapshot: bool) -> dict[str, Any]:
        return {
            "symbol": self.inst.symbol,
            "venue": self.venue,
            "instrument_type": self.inst.instrument_type,
            "bids": self.levels(bids),
            "asks": self.levels(asks),
            "ts_ns": self.ts_ns,
            "is_snapshot": snapshot,
            "checksum": self.checksum(),
        }

    def snapshot(self) -> dict[str, Any]:
        return self.payload(self.bids, self.asks, True)

    def mid_1e9(self) -> int:
        return (self.bids[0][0] + self.asks[0][0]) * self._px // 2


def _diff(old: dict[int, int], new: list[Level]) -> list[Level]:
    out = [(p, s) for p, s in new if old.get(p) != s]
    keep = {p for p, _ in new}
    out.extend((p, 0) for p in old if p not in keep)
    return out


def apply_delta(book: dict[float, float], levels: list[list[float]]) -> None:
    """Apply one side of a delta frame to a {price: size} map (used by tests)."""
    for px, sz in levels:
        if sz == 0:
            book.pop(px, None)
        else:
            book[px] = sz


def nbbo(inst: Instrument, books: list[Book], ts_ns: int) -> dict[str, Any]:
    """The ``prices:<symbol>`` payload: best bid/ask across the symbol's venues."""
    bid = max(books, key=lambda b: (b.bids[0][0], b.bids[0][1]))
    ask = min(books, key=lambda b: (b.asks[0][0], -b.asks[0][1]))
    bid_px, bid_sz = bid.bids[0]
    ask_px, ask_sz = ask.asks[0]
    mid2 = bid_px + ask_px
    return {
        "symbol": inst.symbol,
        "instrument_type": inst.instrument_type,
        "best_bid_px_1e9": bid_px * inst.tick_1e9,
        "best_bid_sz_1e8": bid_sz,
        "best_bid_venue": bid.venue,
        "best_ask_px_1e9": ask_px * inst.tick_1e9,
        "best_ask_sz_1e8": ask_sz,
        "best_ask_venue": ask.venue,
        "spread_bps": round((ask_px - bid_px) * 20_000 / mid2) if mid2 else 0,
        "ts_ns": ts_ns,
    }


def merged(books: list[Book], depth: int) -> dict[str, list[list[float]]]:
    """Sizes summed per price across venues, best first, ``depth`` levels per side."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for b in books:
        for p, s in b.bids:
            bids[p] = bids.get(p, 0) + s
        for p, s in b.asks:
            asks[p] = asks.get(p, 0) + s
    ref = books[0]
    return {
        "bids": [[ref.px(p), bids[p] / 1e8] for p in sorted(bids, reverse=True)[:depth]],
        "asks": [[ref.px(p), asks[p] / 1e8] for p in sorted(asks)[:depth]],
    }
