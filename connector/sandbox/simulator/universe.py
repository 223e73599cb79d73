"""The simulator's static universe: symbols, venues and address forms.

The universe does not depend on the seed, so tests and docs can name
symbols directly. Polymarket token ids are 77-digit strings (the first pair
is the one the vendor's streams page uses); Kalshi symbols are tickers with
an ``:YES`` / ``:NO`` outcome suffix.

Address forms accepted on ``prices:`` / ``book:`` and REST ``{symbol}``:
``BTC-USD`` (CEX, case-insensitive), ``polymarket:<77-digit id>``, the bare
id, ``polymarket:<slug>:yes|no``, a Kalshi ticker (optionally
``kalshi:``-prefixed). All resolve to one canonical symbol, which is what
``data.symbol`` carries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

PREDICTION_TICK_1E9 = 10_000_000  # one cent of probability


@dataclass(frozen=True)
class Instrument:
    symbol: str
    instrument_type: str  # "spot" or "prediction"
    kind: str  # "cex", "polymarket" or "kalshi"
    venues: tuple[str, ...]
    tick_1e9: int
    start_mid_ticks: int
    lot_1e8: int  # typical resting size at one level

    @property
    def is_prediction(self) -> bool:
        return self.kind != "cex"


@dataclass(frozen=True)
class PredictionMarket:
    venue: str
    slug: str
    question: str
    outcomes: tuple[str, str]
    yes_token_id: str
    no_token_id: str
    event_id: str
    neg_risk: bool
    start_date: str
    end_date: str
    url: str

    def row(self) -> dict[str, Any]:
        """The vendor's Market schema (as /v1/markets and new_market frames use)."""
        return {
            "venue": self.venue,
            "slug": self.slug,
            "symbol": self.yes_token_id,
            "question": self.question,
            "outcomes": list(self.outcomes),
            "outcome_token_ids": [self.yes_token_id, self.no_token_id],
            "yes_token_id": self.yes_token_id,
            "no_token_id": self.no_token_id,
            "event_id": self.event_id,
            "neg_risk": self.neg_risk,
            "volume_24h": 0.0,
            "volume_total": 0.0,
            "best_yes_bid": None,
            "best_yes_ask": None,
            "best_no_bid": None,
            "best_no_ask": None,
            "start_date": self.start_date,
            "end_date": self.end_date,
            "url": self.url,
        }


def token_id(name: str) -> str:
    """A stable 77-digit CTF-style token id derived from a name."""
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return str(10**76 + digest % (9 * 10**76))


def polymarket(slug: str, question: str, outcomes: tuple[str, str], yes: str, no: str,
               end: str) -> PredictionMarket:
    event = "0x" + hashlib.sha256(slug.encode()).hexdigest()[:40]
    return PredictionMarket("polymarket", slug, question, outcomes, yes, no, event, False,
                            "2026-01-01T00:00:00Z", end, f"https://polymarket.com/event/{slug}")


def kalshi(ticker: str, question: str, end: str) -> PredictionMarket:
    series = ticker.split("-")[0].lower()
    return PredictionMarket("kalshi", ticker, question, ("Yes", "No"), f"{ticker}:YES",
                            f"{ticker}:NO", ticker, False, "2026-01-01T00:00:00Z", end,
                            f"https://kalshi.com/markets/{series}/{ticker.lower()}")


SPOT_VENUES = ("coinbase", "kraken", "binance", "okx")
PERP_VENUES = ("binance", "bybit", "okx", "hyperliquid")
PERP_SYMBOLS = ("BTC-USDT", "ETH-USDT")
UNDERLYINGS = ("BTC", "ETH")
DEPLOYMENTS = ("dep_sim_alpha", "dep_sim_beta")

SPOT: tuple[Instrument, ...] = (
    Instrument("BTC-USD", "spot", "cex", ("coinbase", "kraken"), 100_000_000, 764_100, 40_000_000),
    Instrument("ETH-USD", "spot", "cex", ("coinbase", "kraken"), 10_000_000, 295_000, 500_000_000),
    Instrument("BTC-USDT", "spot", "cex", ("binance", "okx"), 100_000_000, 764_050, 40_000_000),
    Instrument("ETH-USDT", "spot", "cex", ("binance", "okx"), 10_000_000, 294_990, 500_000_000),
    Instrument("SOL-USD", "spot", "cex", ("coinbase", "kraken"), 10_000_000, 18_000, 5_000_000_000),
)

MARKETS: tuple[PredictionMarket, ...] = (
    polymarket(
        "btc-updown-5m-1778715600", "Bitcoin Up or Down - 5 minutes", ("Up", "Down"),
        "71166707665253014908308475311609108419118036985903834861277070930664191157865",
        "12689298635162541371837661686258341808898518310308696393181273329357280031984",
        "2026-05-13T23:45:00Z"),
    polymarket(
        "will-btc-close-above-100k-on-2026-12-31",
        "Will BTC close above $100k on December 31, 2026?", ("Yes", "No"),
        token_id("sim:btc-100k:yes"), token_id("sim:btc-100k:no"), "2027-01-01T00:00:00Z"),
    polymarket(
        "fed-cuts-rates-in-june-2026", "Will the Fed cut rates in June 2026?", ("Yes", "No"),
        token_id("sim:fed-june:yes"), token_id("sim:fed-june:no"), "2026-06-18T00:00:00Z"),
    kalshi("KXBTCZ-26DEC31-T99000", "Bitcoin above $99,000 on Dec 31, 2026?",
           "2026-12-31T23:59:59Z"),
    kalshi("KXETHZ-26DEC31-T5000", "Ethereum above $5,000 on Dec 31, 2026?",
           "2026-12-31T23:59:59Z"),
)


def _prediction_instruments() -> tuple[Instrument, ...]:
    out: list[Instrument] = []
    for i, m in enumerate(MARKETS):
        yes_mid = 30 + 9 * i  # spread the markets over the probability range
        for token, mid in ((m.yes_token_id, yes_mid), (m.no_token_id, 100 - yes_mid)):
            out.append(Instrument(token, "prediction", m.venue, (m.venue,), PREDICTION_TICK_1E9,
                                  mid, 150_000_000_000))
    return tuple(out)


PREDICTION: tuple[Instrument, ...] = _prediction_instruments()
INSTRUMENTS: tuple[Instrument, ...] = SPOT + PREDICTION


class Universe:
    """Symbol lookup, including prediction markets minted later by the lifecycle feed."""

    def __init__(self) -> None:
        self.instruments = {i.symbol: i for i in INSTRUMENTS}
        self.markets: dict[str, PredictionMarket] = {}  # token id / ticker -> market
        self.slugs: dict[tuple[str, str], PredictionMarket] = {}  # (venue, slug) -> market
        for m in MARKETS:
            self.add_market(m)

    def add_market(self, market: PredictionMarket) -> None:
        self.markets[market.yes_token_id] = market
        self.markets[market.no_token_id] = market
        self.slugs[(market.venue, market.slug)] = market

    def forget_market(self, market: PredictionMarket) -> None:
        # Lifecycle markets are bounded: the oldest are forgotten as new ones arrive.
        for token in (market.yes_token_id, market.no_token_id):
            if token not in self.instruments:
                self.markets.pop(token, None)
        if market.yes_token_id not in self.instruments:
            self.slugs.pop((market.venue, market.slug), None)

    def resolve(self, address: str) -> str | None:
        """Canonical symbol for any accepted address form, or None if unknown."""
        if not address:
            return None
        if address in self.instruments or address in self.markets:
            return address
        upper = address.upper()
        if upper in self.instruments:
            return upper
        venue, sep, rest = address.partition(":")
        if not sep:
            return None
        if venue == "kalshi":
            return rest if rest in self.markets else None
        if venue != "polymarket":
            return None
        if rest.isdigit():
            return rest if rest in self.markets else None
        slug, sep, outcome = rest.rpartition(":")
        market = self.slugs.get(("polymarket", slug)) if sep else None
        if market is None:
            return None
        outcome = outcome.lower()
        if outcome in ("yes", market.outcomes[0].lower()):
            return market.yes_token_id
        if outcome in ("no", market.outcomes[1].lower()):
            return market.no_token_id
        return None

    def symbols(self) -> list[dict[str, Any]]:
        return [
            {"symbol": i.symbol, "instrument_type": i.instrument_type, "venues": list(i.venues),
             "tick_1e9": i.tick_1e9}
            for i in INSTRUMENTS
        ]
