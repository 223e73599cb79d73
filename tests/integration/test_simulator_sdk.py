"""The vendor's own SDK (``sequence-markets``), unchanged, against the simulator.

The SDK's REST calls are blocking urllib, so the simulator runs on its own
event loop in a background thread and the tests call the SDK directly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sequence_markets import Sequence, SequenceError

from connector.sandbox.simulator import Simulator, SimulatorConfig
from connector.sandbox.simulator.universe import MARKETS

KEY = "seq_test_key"


class SimulatorThread:
    def __init__(self, config: SimulatorConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.sim = Simulator(config)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Simulator:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)
        return self.sim

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with SimulatorThread(SimulatorConfig(rate=5000, lifecycle_interval=0.3)) as running:
        yield running


@pytest.fixture(scope="module")
def seq(sim: Simulator) -> Sequence:
    return Sequence(KEY, base_url=sim.base_url)


FIELDS = {
    "prices": {"symbol", "instrument_type", "best_bid_px_1e9", "best_bid_sz_1e8",
               "best_bid_venue", "best_ask_px_1e9", "best_ask_sz_1e8", "best_ask_venue",
               "spread_bps", "ts_ns"},
    "book": {"symbol", "venue", "instrument_type", "bids", "asks", "ts_ns", "is_snapshot",
             "checksum"},
    "orders": {"node_order_id", "client_id", "client_order_id", "symbol", "side", "qty_1e8",
               "filled_qty_1e8", "status", "created_unix_ns", "updated_unix_ns"},
    "fills": {"node_order_id", "venue_execution_id", "symbol", "side", "qty_1e8", "price_1e9",
              "fee_1e9", "edge_id", "ts_unix_ns"},
    "tca": {"node_order_id", "client_id", "symbol", "side", "achieved_vwap_1e9",
            "expected_fill_1e9", "total_fees_1e9", "fee_cost_bps", "expected_fee_bps",
            "fee_prediction_error_bps", "spread_cost_bps", "market_impact_bps",
            "implementation_shortfall_bps", "savings_vs_benchmark_bps", "is_prediction",
            "execution_time_ms", "num_fills"},
    "traces": {"deployment_id", "seq", "function", "payload", "duration_ns", "ts_ns"},
    "funding": {"venue", "symbol", "rate_bps_per_hour", "predicted_rate_bps_per_hour",
                "mark_price_1e9", "open_interest_1e8", "next_settlement_ns", "ts_ns"},
    "fair_price": {"underlying", "fair_mid_1e9", "spot_mid_1e9", "perp_mid_1e9", "basis_bps",
                   "confidence", "contributors", "cc_ts_ns"},
}


def test_stream_every_topic_family(seq: Sequence) -> None:
    topics = ["prices:BTC-USD", f"book:polymarket:{MARKETS[0].yes_token_id}", "orders", "fills",
              "tca", "traces:dep_sim_alpha", "funding", "funding:binance",
              "funding:okx:ETH-USDT", "fair_price", "fair_price:BTC"]

    async def collect() -> dict[str, dict[str, Any]]:
        got: dict[str, dict[str, Any]] = {}
        agen = seq.stream(topics)
        try:
            async for channel, data in agen:
                got.setdefault(channel, data)
                if len(got) == len(topics):
                    break
        finally:
            await agen.aclose()
        return got

    got = asyncio.run(asyncio.wait_for(collect(), 20))
    assert set(got) == set(topics)
    for channel, data in got.items():
        family = channel.split(":")[0]
        assert FIELDS[family] <= set(data), channel
    assert got[f"book:polymarket:{MARKETS[0].yes_token_id}"]["symbol"] == MARKETS[0].yes_token_id
    assert got["funding:okx:ETH-USDT"]["venue"] == "okx"


def test_stream_new_markets_replays_then_goes_live(seq: Sequence) -> None:
    async def collect() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        agen = seq.stream_new_markets()
        try:
            async for evt in agen:
                events.append(evt)
                if len(events) == 130:
                    break
        finally:
            await agen.aclose()
        return events

    events = asyncio.run(asyncio.wait_for(collect(), 20))
    assert all(e["kind"] == "new_market" for e in events)
    replay_ts = [e["observed_at_ns"] for e in events[:128]]
    assert replay_ts == sorted(replay_ts)
    assert events[128]["observed_at_ns"] > replay_ts[0]
    assert events[128]["event_id"] not in {e["event_id"] for e in events[:128]}


def test_rest_calls(seq: Sequence, sim: Simulator) -> None:
    assert seq.health() is True
    q = seq.quote("BTC-USD")
    assert q["symbol"] == "BTC-USD" and q["best_bid_px_1e9"] < q["best_ask_px_1e9"]
    assert {v["venue"] for v in q["venues"]} == {"coinbase", "kraken"}
    assert len(q["merged_book"]["bids"]) == 10
    poly = seq.quote(f"polymarket:{MARKETS[0].slug}:yes", depth=3)
    assert poly["symbol"] == MARKETS[0].yes_token_id
    assert isinstance(poly["venues"][0]["checksum"], int)
    assert len(seq.quotes(["BTC-USD", "ETH-USD"])) == 2
    fills = seq.fills(limit=5)
    assert set(fills) == {"fills", "total", "limit", "offset", "has_more"}
    assert len(fills["fills"]) == 5
    orders = seq.orders(limit=3, symbol="BTC-USD")
    assert all(o["symbol"] == "BTC-USD" for o in orders["orders"])
    newest = seq.orders(limit=1)["orders"][0]
    assert seq.order(newest["node_order_id"])["node_order_id"] == newest["node_order_id"]
    tca = seq.tca()
    assert set(tca) == {"reports", "total", "limit", "offset", "has_more"}
    assert tca["reports"] and FIELDS["tca"] <= set(tca["reports"][0])
    rates = seq.funding_rates()
    assert rates["unit"] == "bps_per_hour" and len(rates["rates"]) == 8
    one = seq.funding_rate("binance", "BTC-USDT")
    assert one is not None and isinstance(one["rate_bps_per_hour"], float)
    markets = seq.markets(venue="polymarket", slug=MARKETS[0].slug)
    assert markets["markets"][0]["yes_token_id"] == MARKETS[0].yes_token_id
    assert any(s["symbol"] == "SOL-USD" for s in seq.symbols())
    with pytest.raises(SequenceError) as err:
        seq.quote("DOGE-USD")
    assert err.value.status == 404
    with pytest.raises(SequenceError) as err:
        Sequence("wrong", base_url=sim.base_url).fills()
    assert err.value.status == 401


def test_sdk_retries_through_rest_429(seq: Sequence, sim: Simulator) -> None:
    sim.faults.rate_limit_rest(1, retry_after=0.1)
    assert "fills" in seq.fills(limit=1)
