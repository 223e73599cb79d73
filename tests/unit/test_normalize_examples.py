"""Every documented example payload normalises to exact expected values."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from connector.normalize import build_control_record, normalize_record
from connector.normalize.examples import NO_TOKEN, YES_TOKEN, example_payload
from connector.protocol import Family


def norm(family: Family, channel: str | None = None) -> dict[str, Any]:
    record = normalize_record(family, example_payload(family), carry_unknown=True, channel=channel)
    assert record.unknown_fields == ()
    assert record.value["extras"] == {}
    return record.value


def test_prices() -> None:
    record = normalize_record(Family.prices, example_payload(Family.prices), carry_unknown=False)
    assert record.key == "BTC-USD"
    assert record.event_ts_ns == 1745979000123456789
    assert record.value == {
        "symbol": "BTC-USD",
        "instrument_type": "spot",
        "best_bid_px": Decimal("76410.000000000"),
        "best_bid_px_1e9": 76410000000000,
        "best_bid_sz": Decimal("0.12000000"),
        "best_bid_sz_1e8": 12000000,
        "best_bid_venue": "coinbase",
        "best_ask_px": Decimal("76411.000000000"),
        "best_ask_px_1e9": 76411000000000,
        "best_ask_sz": Decimal("0.08000000"),
        "best_ask_sz_1e8": 8000000,
        "best_ask_venue": "kraken",
        "spread_bps": 1.0,
        "ts_ns": 1745979000123456789,
        "ts": 1745979000123456,
        "extras": {},
    }
    # exact representation, not just numeric equality
    assert str(record.value["best_bid_px"]) == "76410.000000000"
    assert str(record.value["best_ask_sz"]) == "0.08000000"
    assert isinstance(record.value["spread_bps"], float)


def test_book() -> None:
    value = norm(Family.book)
    assert value["bids"] == [
        {"px": Decimal("76410.5"), "sz": Decimal("0.421")},
        {"px": Decimal("76410.4"), "sz": Decimal("1.2")},
    ]
    assert value["asks"] == [
        {"px": Decimal("76411.0"), "sz": Decimal("0.155")},
        {"px": Decimal("76411.1"), "sz": Decimal("0.8")},
    ]
    # the printed value, digit for digit: no binary float artefacts
    assert [str(level["px"]) for level in value["asks"]] == ["76411.0", "76411.1"]
    assert value["is_snapshot"] is False
    assert value["checksum"] == 1448524378
    assert value["ts"] == 1745979000123456
    assert set(value) == {
        "symbol",
        "venue",
        "instrument_type",
        "bids",
        "asks",
        "ts_ns",
        "ts",
        "is_snapshot",
        "checksum",
        "extras",
    }


def test_fair_price() -> None:
    value = norm(Family.fair_price, "fair_price:BTC")
    assert value["fair_mid"] == Decimal("76405.095000000")
    assert value["spot_mid"] == Decimal("76407.250000000")
    assert value["perp_mid"] == Decimal("76357.950000000")
    assert value["basis_bps"] == -6.0
    assert value["confidence"] == 0.665
    assert value["cc_ts_ns"] == 1745979000123456789
    assert value["cc_ts"] == 1745979000123456
    contributors = value["contributors"]
    assert isinstance(contributors, list) and len(contributors) == 4
    assert contributors[0] == {
        "venue": "binance",
        "instrument_type": "spot",
        "mid": Decimal("76407.250000000"),
        "mid_1e9": 76407250000000,
        "weight": 0.84,
        "staleness_ms": 96,
    }
    assert contributors[3]["mid"] == Decimal("76354.500000000")


def test_orders() -> None:
    value = norm(Family.orders)
    assert value["qty"] == Decimal("0.01000000")
    assert value["filled_qty"] == Decimal("0.01000000")
    assert value["qty_1e8"] == 1000000
    assert value["status"] == "COMPLETED"
    assert value["created_unix_ns"] == 1745979000000000000
    assert value["created_at"] == 1745979000000000
    assert value["updated_at"] == 1745979001200000


def test_fills() -> None:
    record = normalize_record(Family.fills, example_payload(Family.fills), carry_unknown=True)
    assert record.key == "kraken-8f3a2b1c"
    assert record.event_ts_ns == 1745979000498000000
    value = record.value
    assert value["qty"] == Decimal("0.00700000")
    assert str(value["qty"]) == "0.00700000"
    assert value["price"] == Decimal("76410.000000000")
    assert value["fee"] == Decimal("0.100000000")
    assert value["ts"] == 1745979000498000
    assert value["venue"] is None  # in the catalog, absent from the example


def test_tca() -> None:
    record = normalize_record(Family.tca, example_payload(Family.tca), carry_unknown=True)
    assert record.event_ts_ns is None
    value = record.value
    assert value["achieved_vwap"] == Decimal("76411.000000000")
    assert value["expected_fill"] == Decimal("76410.500000000")
    assert value["total_fees"] == Decimal("0.007641000")
    assert value["fee_prediction_error_bps"] == -1.0
    assert value["is_prediction"] is False
    assert value["achieved_implied_prob_bps"] is None
    assert value["num_fills"] == 1
    assert value["execution_time_ms"] == 124


def test_tca_prediction_fields() -> None:
    payload = example_payload(Family.tca)
    payload.update(
        is_prediction=True,
        achieved_implied_prob_bps=300,
        arrival_implied_prob_bps=310.5,
        probability_slippage_bps=10.5,
    )
    value = normalize_record(Family.tca, payload, carry_unknown=False).value
    assert value["is_prediction"] is True
    assert value["achieved_implied_prob_bps"] == 300.0
    assert value["probability_slippage_bps"] == 10.5
    del payload["is_prediction"]
    assert (
        normalize_record(Family.tca, payload, carry_unknown=False).value["is_prediction"] is False
    )


def test_funding() -> None:
    value = norm(Family.funding)
    assert value["rate_bps_per_hour"] == 1.0
    assert isinstance(value["rate_bps_per_hour"], float)
    assert value["mark_price"] == Decimal("76410.000000000")
    assert value["open_interest"] == Decimal("120.00000000")
    assert value["next_settlement_at"] == 1745982600000000
    assert value["snapshot_age_ms"] is None
    payload = example_payload(Family.funding)
    payload["rate_bps_per_hour"] = 0.125  # REST sends floats
    assert (
        normalize_record(Family.funding, payload, carry_unknown=False).value["rate_bps_per_hour"]
        == 0.125
    )


def test_traces() -> None:
    value = norm(Family.traces, "traces:dep_7f3a")
    assert value["deployment_id"] == "dep_7f3a"
    assert orjson.loads(value["payload_json"]) == {
        "symbol": "BTC-USD",
        "signal": 0.42,
        "legs": [1, 2],
    }
    assert value["duration_ns"] == 182000
    assert "duration" not in value  # a duration has no timestamp companion
    assert value["ts"] == 1745979000123456


def test_traces_tolerant_and_keyed_by_channel() -> None:
    record = normalize_record(
        Family.traces, {"function": "on_tick"}, carry_unknown=False, channel="traces:dep_9"
    )
    assert record.key == "dep_9"
    assert record.value["deployment_id"] == "dep_9"
    assert record.value["payload_json"] is None
    assert record.value["ts_ns"] is None and record.value["ts"] is None
    assert record.event_ts_ns is None


def test_markets_new() -> None:
    record = normalize_record(
        Family.markets_new, example_payload(Family.markets_new), carry_unknown=True
    )
    assert record.key == "polymarket|0xabc123"
    value = record.value
    assert value["symbol"] == YES_TOKEN
    assert value["outcome_token_ids"] == [YES_TOKEN, NO_TOKEN]
    assert value["yes_token_id"] == YES_TOKEN and value["no_token_id"] == NO_TOKEN
    assert value["outcomes"] == ["Yes", "No"]
    assert value["neg_risk"] is False
    assert value["volume_24h"] == 0.0
    assert value["best_yes_bid"] is None and value["best_no_ask"] is None
    assert value["start_date"] == "2026-04-30T00:00:00Z"
    assert value["observed_at"] == 1745971205123456


def test_markets_resolved() -> None:
    value = norm(Family.markets_resolved)
    assert value["winning_token_id"] == YES_TOKEN
    assert value["losing_token_id"] == NO_TOKEN
    assert value["winning_outcome"] == "Yes"
    assert value["observed_at_ns"] == 1745971205123456789


def test_alerts() -> None:
    record = normalize_record(Family.alerts, example_payload(Family.alerts), carry_unknown=True)
    assert record.key == "rule_btc_spread"
    assert record.value["threshold"] == 5.0
    assert record.value["value"] == 7.5
    assert record.value["triggered_at"] == 1745979000123456
    minimal = normalize_record(
        Family.alerts, {"alert_id": "a9", "threshold": "76410.5"}, carry_unknown=True
    )
    assert minimal.key == "a9"
    assert minimal.value["threshold"] == 76410.5
    assert minimal.value["rule_id"] is None


def test_control_record() -> None:
    record = build_control_record(
        "gap",
        "book:BTC-USDT",
        epoch=3,
        at_ns=1745979000123456789,
        instance="connector-0",
        dropped=17,
        detail={"family": "book"},
    )
    assert record.key == "book:BTC-USDT"
    assert record.event_ts_ns == 1745979000123456789
    assert record.value == {
        "kind": "gap",
        "sequence_topic": "book:BTC-USDT",
        "dropped": 17,
        "reason": None,
        "epoch": 3,
        "at_ns": 1745979000123456789,
        "at": 1745979000123456,
        "instance": "connector-0",
        "detail_json": '{"family":"book"}',
        "extras": {},
    }
    assert norm(Family.control)["dropped"] == 17
