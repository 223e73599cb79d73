"""The vendor's documented example payloads, one per family, verbatim from
docs/upstream/streams.md (traces and alerts: the simulator's shape, since the
vendor documents none). Tests, docs and the simulator share them so that
"the documented payload normalises" is checked in one place.

Each is a fresh dict per call, so callers may mutate their copy.
"""

from __future__ import annotations

from typing import Any

import orjson

from connector.protocol.families import Family

YES_TOKEN = "71166707665253014908308475311609108419118036985903834861277070930664191157865"  # noqa: S105 - an id, not a secret
NO_TOKEN = "12689298635162541371837661686258341808898518310308696393181273329357280031984"  # noqa: S105 - an id, not a secret

# JSON text, not dicts: these are the bytes the vendor puts on the wire, and
# parsing them is how book floats like 76410.50 reach the normaliser.
_EXAMPLES: dict[Family, bytes] = {
    Family.prices: b"""{
    "symbol": "BTC-USD", "instrument_type": "spot",
    "best_bid_px_1e9": 76410000000000, "best_bid_sz_1e8": 12000000, "best_bid_venue": "coinbase",
    "best_ask_px_1e9": 76411000000000, "best_ask_sz_1e8": 8000000, "best_ask_venue": "kraken",
    "spread_bps": 1, "ts_ns": 1745979000123456789}""",
    Family.book: b"""{
    "symbol": "BTC-USDT", "venue": "binance", "instrument_type": "spot",
    "bids": [[76410.50, 0.421], [76410.40, 1.2]],
    "asks": [[76411.00, 0.155], [76411.10, 0.8]],
    "ts_ns": 1745979000123456789, "is_snapshot": false, "checksum": 1448524378}""",
    Family.fair_price: b"""{
    "underlying": "BTC", "fair_mid_1e9": 76405095000000, "spot_mid_1e9": 76407250000000,
    "perp_mid_1e9": 76357950000000, "basis_bps": -6, "confidence": 0.665,
    "contributors": [
      {"venue": "binance", "instrument_type": "spot", "mid_1e9": 76407250000000, "weight": 0.84, "staleness_ms": 96},
      {"venue": "binance", "instrument_type": "perp", "mid_1e9": 76357950000000, "weight": 0.81, "staleness_ms": 79},
      {"venue": "okx", "instrument_type": "spot", "mid_1e9": 76406500000000, "weight": 0.78, "staleness_ms": 156},
      {"venue": "hyperliquid", "instrument_type": "perp", "mid_1e9": 76354500000000, "weight": 0.65, "staleness_ms": 226}
    ],
    "cc_ts_ns": 1745979000123456789}""",  # noqa: E501 - the vendor's bytes, as sent
    Family.orders: b"""{
    "node_order_id": "graph:graph_a1b2c3d4:btc_leg:1", "client_id": "muhammad",
    "client_order_id": "order-001", "symbol": "BTC-USD", "side": "buy",
    "qty_1e8": 1000000, "filled_qty_1e8": 1000000, "status": "COMPLETED",
    "created_unix_ns": 1745979000000000000, "updated_unix_ns": 1745979001200000000}""",
    Family.fills: b"""{
    "node_order_id": "graph:graph_a1b2c3d4:btc_leg:1", "venue_execution_id": "kraken-8f3a2b1c",
    "symbol": "BTC-USD", "side": "buy", "qty_1e8": 700000, "price_1e9": 76410000000000,
    "fee_1e9": 100000000, "edge_id": "venue-edge-kraken", "ts_unix_ns": 1745979000498000000}""",
    Family.tca: """{
    "node_order_id": "graph:graph_\u2026:kalshi_yes:1", "client_id": "muhammad",
    "symbol": "BTC-USD", "side": "BUY", "achieved_vwap_1e9": 76411000000000,
    "expected_fill_1e9": 76410500000000, "total_fees_1e9": 7641000, "fee_cost_bps": 1,
    "expected_fee_bps": 2, "fee_prediction_error_bps": -1, "spread_cost_bps": 0,
    "market_impact_bps": -1, "implementation_shortfall_bps": 0, "savings_vs_benchmark_bps": 1,
    "is_prediction": false, "execution_time_ms": 124, "num_fills": 1}""".encode(),
    Family.funding: b"""{
    "venue": "binance", "symbol": "BTC-USDT", "rate_bps_per_hour": 1,
    "predicted_rate_bps_per_hour": 1, "mark_price_1e9": 76410000000000,
    "open_interest_1e8": 12000000000, "next_settlement_ns": 1745982600000000000,
    "ts_ns": 1745979000000000000}""",
    Family.traces: b"""{
    "deployment_id": "dep_7f3a", "seq": 42, "function": "on_book",
    "payload": {"symbol": "BTC-USD", "signal": 0.42, "legs": [1, 2]},
    "duration_ns": 182000, "ts_ns": 1745979000123456789}""",
    Family.markets_new: b"""{
    "kind": "new_market", "venue": "polymarket",
    "slug": "will-btc-close-above-100k-on-2026-04-30",
    "symbol": "71166707665253014908308475311609108419118036985903834861277070930664191157865",
    "question": "Will BTC close above $100k on April 30, 2026?",
    "outcomes": ["Yes", "No"],
    "outcome_token_ids": [
      "71166707665253014908308475311609108419118036985903834861277070930664191157865",
      "12689298635162541371837661686258341808898518310308696393181273329357280031984"],
    "yes_token_id": "71166707665253014908308475311609108419118036985903834861277070930664191157865",
    "no_token_id": "12689298635162541371837661686258341808898518310308696393181273329357280031984",
    "event_id": "0xabc123", "neg_risk": false, "volume_24h": 0.0, "volume_total": 0.0,
    "start_date": "2026-04-30T00:00:00Z", "end_date": "2026-05-01T00:00:00Z",
    "url": "https://polymarket.com/event/will-btc-close-above-100k-on-2026-04-30",
    "observed_at_ns": 1745971205123456789}""",
    Family.markets_resolved: b"""{
    "kind": "market_resolved", "venue": "polymarket", "event_id": "0xabc123",
    "winning_outcome": "Yes",
    "winning_token_id": "71166707665253014908308475311609108419118036985903834861277070930664191157865",
    "losing_token_id": "12689298635162541371837661686258341808898518310308696393181273329357280031984",
    "observed_at_ns": 1745971205123456789}""",  # noqa: E501 - the vendor's bytes, as sent
    Family.alerts: b"""{
    "alert_id": "alt_0001", "rule_id": "rule_btc_spread", "rule_name": "BTC spread wide",
    "symbol": "BTC-USD", "condition": "spread_bps > threshold", "threshold": 5,
    "value": 7.5, "triggered_at_ns": 1745979000123456789}""",
    Family.control: b"""{
    "kind": "gap", "sequence_topic": "book:BTC-USDT", "dropped": 17, "reason": null,
    "epoch": 3, "at_ns": 1745979000123456789, "instance": "connector-0",
    "detail_json": null}""",
}

# The channel each /v1/stream example arrives on (None: another transport).
EXAMPLE_CHANNELS: dict[Family, str | None] = {
    Family.prices: "prices:BTC-USD",
    Family.book: "book:BTC-USDT",
    Family.fair_price: "fair_price:BTC",
    Family.orders: "orders",
    Family.fills: "fills",
    Family.tca: "tca",
    Family.funding: "funding:binance",
    Family.traces: "traces:dep_7f3a",
    Family.markets_new: None,
    Family.markets_resolved: None,
    Family.alerts: None,
    Family.control: None,
}


def example_json(family: Family) -> bytes:
    """The example payload of ``family`` as raw JSON bytes."""
    return _EXAMPLES[family]


def example_payload(family: Family) -> dict[str, Any]:
    """A fresh parsed copy of the example payload of ``family``."""
    payload: dict[str, Any] = orjson.loads(_EXAMPLES[family])
    return payload
