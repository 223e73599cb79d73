"""The simulator's generator, books, universe and topics, without any I/O."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
import pytest

from connector.sandbox.simulator.books import LEVELS, apply_delta
from connector.sandbox.simulator.bus import Event
from connector.sandbox.simulator.feed import Feed
from connector.sandbox.simulator.lifecycle import market, new_market_event, resolved_event
from connector.sandbox.simulator.topics import parse_topic
from connector.sandbox.simulator.universe import MARKETS, Universe

NOW = 1_760_000_000_000_000_000


def generate(seed: int, n: int = 5_000) -> list[Event]:
    out: list[Event] = []
    feed = Feed(seed, out.append, clock=lambda: NOW)
    feed.emit(n)
    return out


def by_family(events: list[Event]) -> dict[str, list[dict[str, Any]]]:
    fam: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in events:
        fam[ev.family].append(ev.data)
    return fam


def test_same_seed_same_events_and_other_seed_differs() -> None:
    a = [e.raw() for e in generate(7)]
    b = [e.raw() for e in generate(7)]
    c = [e.raw() for e in generate(8)]
    assert a == b
    assert a != c


def test_rate_mix_and_trading_ratio() -> None:
    fam = by_family(generate(1, 20_000))
    market = sum(len(fam[f]) for f in ("book", "prices", "funding", "fair_price", "traces"))
    assert market == 20_000
    assert 0.40 < len(fam["book"]) / market < 0.50
    trading = len(fam["orders"]) + len(fam["fills"]) + len(fam["tca"])
    assert 1_000 <= trading <= 3_000  # 1000 steps of 1-3 events
    assert len(fam["alert"]) == 20_000 // 500


def test_payload_shapes() -> None:
    fam = by_family(generate(3, 20_000))
    price = fam["prices"][0]
    assert set(price) == {"symbol", "instrument_type", "best_bid_px_1e9", "best_bid_sz_1e8",
                          "best_bid_venue", "best_ask_px_1e9", "best_ask_sz_1e8",
                          "best_ask_venue", "spread_bps", "ts_ns"}
    assert all(isinstance(price[k], int) for k in price if k.endswith(("_1e9", "_1e8")))
    book = fam["book"][0]
    assert set(book) == {"symbol", "venue", "instrument_type", "bids", "asks", "ts_ns",
                         "is_snapshot", "checksum"}
    assert book["is_snapshot"] is False
    for b in fam["book"]:
        assert (b["checksum"] is None) == (b["venue"] != "polymarket")
        assert all(isinstance(px, float) and isinstance(sz, float) for px, sz in b["bids"])
    f = fam["funding"][0]
    assert set(f) == {"venue", "symbol", "rate_bps_per_hour", "predicted_rate_bps_per_hour",
                      "mark_price_1e9", "open_interest_1e8", "next_settlement_ns", "ts_ns"}
    rate_types = {type(x["rate_bps_per_hour"]) for x in fam["funding"]}
    assert rate_types <= {int, float}
    fp = fam["fair_price"][0]
    assert set(fp) == {"underlying", "fair_mid_1e9", "spot_mid_1e9", "perp_mid_1e9",
                       "basis_bps", "confidence", "contributors", "cc_ts_ns"}
    assert all(isinstance(c["weight"], float) for c in fp["contributors"])
    tr = fam["traces"][0]
    assert set(tr) == {"deployment_id", "seq", "function", "payload", "duration_ns", "ts_ns"}
    order = fam["orders"][0]
    assert order["status"] == "PENDING" and order["filled_qty_1e8"] == 0
    node_order_id = order["node_order_id"]
    assert node_order_id.startswith("graph:graph_") and node_order_id.endswith(":1")
    fill = fam["fills"][0]
    assert set(fill) == {"node_order_id", "venue_execution_id", "symbol", "side", "qty_1e8",
                         "price_1e9", "fee_1e9", "edge_id", "ts_unix_ns"}
    predictions = [t for t in fam["tca"] if t["is_prediction"]]
    cex = [t for t in fam["tca"] if not t["is_prediction"]]
    assert predictions and cex
    extra = {"achieved_implied_prob_bps", "arrival_implied_prob_bps", "probability_slippage_bps"}
    assert extra <= set(predictions[0]) and not extra & set(cex[0])
    assert cex[0]["side"] in ("BUY", "SELL")


def test_floats_print_in_shortest_form() -> None:
    for ev in generate(2, 3_000):
        if ev.family == "book":
            text = ev.raw().decode()
            assert "00000000" not in text.split('"ts_ns"')[0], text


def test_deltas_applied_to_snapshot_rebuild_the_book() -> None:
    out: list[Event] = []
    feed = Feed(5, out.append, clock=lambda: NOW)
    book = feed.books["BTC-USD"][0]
    snap = book.snapshot()
    assert snap["is_snapshot"] and len(snap["bids"]) == len(snap["asks"]) == LEVELS
    bids = {px: sz for px, sz in snap["bids"]}
    asks = {px: sz for px, sz in snap["asks"]}
    feed.emit(5_000)
    for ev in out:
        data = ev.data
        if ev.family == "book" and data["symbol"] == "BTC-USD" and data["venue"] == book.venue:
            apply_delta(bids, data["bids"])
            apply_delta(asks, data["asks"])
    final = book.snapshot()
    assert sorted(bids.items(), reverse=True) == [tuple(x) for x in final["bids"]]
    assert sorted(asks.items()) == [tuple(x) for x in final["asks"]]


def test_order_fills_sum_to_filled_qty() -> None:
    fam = by_family(generate(4, 40_000))
    fills: dict[str, int] = defaultdict(int)
    ids = [f["venue_execution_id"] for f in fam["fills"]]
    assert len(ids) == len(set(ids))
    for f in fam["fills"]:
        fills[f["node_order_id"]] += f["qty_1e8"]
    final: dict[str, dict[str, Any]] = {}
    for o in fam["orders"]:
        final[o["node_order_id"]] = o
    terminal = [o for o in final.values() if o["status"] in ("COMPLETED", "CANCELLED")]
    assert any(o["status"] == "CANCELLED" for o in terminal)
    for o in terminal:
        assert fills[o["node_order_id"]] == o["filled_qty_1e8"]
        if o["status"] == "COMPLETED":
            assert o["filled_qty_1e8"] == o["qty_1e8"]
    completed = {o["node_order_id"] for o in terminal if o["status"] == "COMPLETED"}
    assert {t["node_order_id"] for t in fam["tca"]} == completed


@pytest.mark.parametrize("address", [
    f"polymarket:{MARKETS[0].yes_token_id}",
    MARKETS[0].yes_token_id,
    f"polymarket:{MARKETS[0].slug}:yes",
    f"polymarket:{MARKETS[0].slug}:Up",
])
def test_polymarket_address_forms(address: str) -> None:
    assert Universe().resolve(address) == MARKETS[0].yes_token_id


def test_other_address_forms() -> None:
    u = Universe()
    assert u.resolve(f"polymarket:{MARKETS[1].slug}:no") == MARKETS[1].no_token_id
    assert u.resolve("KXBTCZ-26DEC31-T99000:YES") == "KXBTCZ-26DEC31-T99000:YES"
    assert u.resolve("kalshi:KXBTCZ-26DEC31-T99000:NO") == "KXBTCZ-26DEC31-T99000:NO"
    assert u.resolve("btc-usd") == "BTC-USD"
    for bad in ("", "DOGE-USD", "polymarket:123", "polymarket:nope:yes", "KXNOPE:YES"):
        assert u.resolve(bad) is None
    assert len(MARKETS[0].yes_token_id) == 77 and len(MARKETS[2].no_token_id) == 77


def test_topics() -> None:
    u = Universe()
    assert parse_topic("orders", u) == ("orders",)
    assert parse_topic("funding", u) == ("funding",)
    assert parse_topic("funding:okx", u) == ("funding", "okx")
    assert parse_topic("funding:okx:BTC-USDT", u) == ("funding", "okx", "BTC-USDT")
    assert parse_topic("fair_price:BTC", u) == ("fair_price", "BTC")
    assert parse_topic("traces:dep_x", u) == ("traces", "dep_x")
    assert parse_topic("routing", u) == ("routing",)
    for bad in ("prices:", "prices", "candles:BTC-USD", "funding:ftx", "fair_price:DOGE",
                "funding:okx:DOGE-USDT", "book:DOGE-USD", "traces:"):
        assert parse_topic(bad, u) is None, bad


def test_lifecycle_events_are_deterministic_and_shaped() -> None:
    assert market(1, 42) == market(1, 42)
    assert market(1, 42) != market(2, 42)
    venues = {market(1, k).venue for k in range(40)}
    assert venues == {"polymarket", "kalshi"}
    evt = new_market_event(market(1, 3), NOW)
    assert list(evt)[:4] == ["kind", "venue", "slug", "symbol"]
    assert {"question", "outcomes", "outcome_token_ids", "yes_token_id", "no_token_id",
            "event_id", "neg_risk", "volume_24h", "volume_total", "best_yes_bid",
            "best_yes_ask", "best_no_bid", "best_no_ask", "start_date", "end_date", "url",
            "observed_at_ns"} <= set(evt)
    res = resolved_event(1, market(1, 3), NOW)
    assert set(res) == {"kind", "venue", "event_id", "winning_outcome", "winning_token_id",
                        "losing_token_id", "observed_at_ns"}
    assert {res["winning_token_id"], res["losing_token_id"]} == set(evt["outcome_token_ids"])
    orjson.dumps(evt)
