"""Edge values, type errors, missing fields and unknown fields."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connector.errors import NormalizeError
from connector.normalize import RECORD_SPECS, normalize_record, timestamp_companion
from connector.normalize.examples import example_payload
from connector.normalize.values import level_decimal
from connector.protocol import Family

INT64_MAX = 9223372036854775807
INT64_MIN = -9223372036854775808


def fill(**changes: Any) -> dict[str, Any]:
    payload = example_payload(Family.fills)
    payload.update(changes)
    return payload


def fill_value(**changes: Any) -> dict[str, Any]:
    return normalize_record(Family.fills, fill(**changes), carry_unknown=False).value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, Decimal("0E-9")),
        (1, Decimal("0.000000001")),
        (INT64_MAX, Decimal("9223372036.854775807")),
        (INT64_MIN, Decimal("-9223372036.854775808")),
        (-76405095000000, Decimal("-76405.095000000")),
    ],
)
def test_fixed_1e9_edges(raw: int, expected: Decimal) -> None:
    value = fill_value(price_1e9=raw)
    assert value["price"] == expected
    assert value["price"].as_tuple().exponent == -9
    assert value["price_1e9"] == raw


def test_int64_max_is_exact_text() -> None:
    assert str(fill_value(fee_1e9=INT64_MAX)["fee"]) == "9223372036.854775807"


def test_fixed_1e8_tiny_and_zero() -> None:
    assert str(fill_value(qty_1e8=1)["qty"]) == "1E-8"
    assert fill_value(qty_1e8=1)["qty"] == Decimal("0.00000001")
    assert fill_value(qty_1e8=0)["qty"] == Decimal(0)


def test_negative_fair_values_and_basis() -> None:
    payload = example_payload(Family.fair_price)
    payload.update(basis_bps=-12.5, perp_mid_1e9=-1, fair_mid_1e9=0)
    value = normalize_record(Family.fair_price, payload, carry_unknown=False).value
    assert value["basis_bps"] == -12.5
    assert value["perp_mid"] == Decimal("-0.000000001")
    assert value["fair_mid"] == 0


@pytest.mark.parametrize(
    ("field", "bad", "reason_part"),
    [
        ("qty_1e8", "700000", "expected an integer, got str"),
        ("price_1e9", 76410000000000.0, "expected an integer, got float"),
        ("price_1e9", True, "expected an integer, got bool"),
        ("qty_1e8", False, "expected an integer, got bool"),
        ("price_1e9", INT64_MAX + 1, "does not fit in 64 bits"),
        ("price_1e9", INT64_MIN - 1, "does not fit in 64 bits"),
        ("ts_unix_ns", 1.7e18, "got float"),
        ("symbol", 5, "expected a string"),
        ("venue_execution_id", 1.5e76, "expected an id string, got float"),
        ("venue_execution_id", True, "expected an id string, got bool"),
    ],
)
def test_wrong_types(field: str, bad: Any, reason_part: str) -> None:
    with pytest.raises(NormalizeError) as info:
        fill_value(**{field: bad})
    assert info.value.field == field
    assert reason_part in info.value.reason
    assert info.value.stage == "normalize"


def test_bool_and_double_types() -> None:
    book = example_payload(Family.book)
    book["is_snapshot"] = 1
    with pytest.raises(NormalizeError) as info:
        normalize_record(Family.book, book, carry_unknown=False)
    assert info.value.field == "is_snapshot"
    prices = example_payload(Family.prices)
    prices["spread_bps"] = True
    with pytest.raises(NormalizeError, match="got bool"):
        normalize_record(Family.prices, prices, carry_unknown=False)
    prices["spread_bps"] = "1"
    with pytest.raises(NormalizeError, match="got str"):
        normalize_record(Family.prices, prices, carry_unknown=False)


@pytest.mark.parametrize(
    ("family", "field"),
    [
        (Family.prices, "symbol"),
        (Family.prices, "ts_ns"),
        (Family.book, "venue"),
        (Family.book, "bids"),
        (Family.book, "is_snapshot"),
        (Family.orders, "node_order_id"),
        (Family.fills, "venue_execution_id"),
        (Family.fills, "qty_1e8"),
        (Family.tca, "achieved_vwap_1e9"),
        (Family.funding, "rate_bps_per_hour"),
        (Family.fair_price, "cc_ts_ns"),
        (Family.markets_new, "event_id"),
        (Family.markets_resolved, "observed_at_ns"),
        (Family.alerts, "alert_id"),
        (Family.control, "epoch"),
    ],
)
def test_missing_required_names_the_field(family: Family, field: str) -> None:
    payload = example_payload(family)
    del payload[field]
    with pytest.raises(NormalizeError) as info:
        normalize_record(family, payload, carry_unknown=False)
    assert info.value.field == field
    assert "missing" in info.value.reason
    payload[field] = None
    with pytest.raises(NormalizeError, match="null") as info:
        normalize_record(family, payload, carry_unknown=False)
    assert info.value.field == field


def test_nested_required_field_is_named_with_its_path() -> None:
    payload = example_payload(Family.fair_price)
    del payload["contributors"][2]["mid_1e9"]
    with pytest.raises(NormalizeError) as info:
        normalize_record(Family.fair_price, payload, carry_unknown=False)
    assert info.value.field == "contributors[2].mid_1e9"


def test_optional_fields_missing_or_null() -> None:
    book = example_payload(Family.book)
    book["checksum"] = None
    del book["instrument_type"]
    value = normalize_record(Family.book, book, carry_unknown=False).value
    assert value["checksum"] is None and value["instrument_type"] is None
    prices = {"symbol": "X", "ts_ns": 0}  # a one-sided or empty NBBO is still a record
    value = normalize_record(Family.prices, prices, carry_unknown=False).value
    assert value["best_bid_px"] is None and value["best_bid_px_1e9"] is None
    assert value["ts"] == 0
    market = {
        "kind": "new_market",
        "venue": "kalshi",
        "event_id": "E1",
        "observed_at_ns": 1,
        "outcomes": None,
    }
    value = normalize_record(Family.markets_new, market, carry_unknown=False).value
    assert value["outcomes"] == [] and value["outcome_token_ids"] == []
    assert value["neg_risk"] is None and value["url"] is None
    fair = example_payload(Family.fair_price)
    del fair["contributors"]
    assert (
        normalize_record(Family.fair_price, fair, carry_unknown=False).value["contributors"] == []
    )


def test_token_ids_stay_strings() -> None:
    market = example_payload(Family.markets_resolved)
    value = normalize_record(Family.markets_resolved, market, carry_unknown=False).value
    assert isinstance(value["winning_token_id"], str) and len(value["winning_token_id"]) == 77
    market["event_id"] = 12345  # an exact JSON integer id is kept as its text
    assert normalize_record(Family.markets_resolved, market, carry_unknown=False).key == (
        "polymarket|12345"
    )


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        (0.1, "0.1"),
        (76410.1, "76410.1"),
        (1e-08, "1E-8"),
        (0.421, "0.421"),
        (76410.50, "76410.5"),
        (0.0, "0.0"),
        (0, "0"),
        (42, "42"),
        (1e16, "1E+16"),
        (1e-18, "1E-18"),
        (1.5e19, "1.5E+19"),
        (-0.5, "-0.5"),
    ],
)
def test_level_decimals_are_the_printed_value(printed: float, expected: str) -> None:
    assert str(level_decimal(printed, "bids[0]")) == expected


@pytest.mark.parametrize("bad", [1e-19, 5e-324, 1e20, 1e25, True, "76410.1", None])
def test_level_values_out_of_range_or_wrong_type(bad: Any) -> None:
    with pytest.raises(NormalizeError):
        level_decimal(bad, "bids[0]")


@pytest.mark.parametrize(
    "levels",
    [[[1.0]], [[1.0, 2.0, 3.0]], [1.0], "x", [{"px": 1, "sz": 2}]],
)
def test_malformed_levels(levels: Any) -> None:
    book = example_payload(Family.book)
    book["asks"] = levels
    with pytest.raises(NormalizeError) as info:
        normalize_record(Family.book, book, carry_unknown=False)
    assert info.value.field is not None and info.value.field.startswith("asks")


def test_unknown_fields_carried_as_json_text() -> None:
    payload = fill(liquidity="maker", rebate={"bps": -0.5}, maybe=None)
    record = normalize_record(Family.fills, payload, carry_unknown=True)
    assert record.unknown_fields == ("liquidity", "rebate", "maybe")
    assert record.value["extras"] == {
        "liquidity": '"maker"',
        "rebate": '{"bps":-0.5}',
        "maybe": "null",
    }


def test_unknown_fields_dropped_but_reported() -> None:
    record = normalize_record(Family.fills, fill(liquidity="maker"), carry_unknown=False)
    assert record.unknown_fields == ("liquidity",)
    assert record.value["extras"] == {}
    assert "liquidity" not in record.value


def test_nested_unknown_fields() -> None:
    payload = example_payload(Family.fair_price)
    payload["contributors"][1]["latency_ms"] = 3
    payload["contributors"][3]["latency_ms"] = 4
    record = normalize_record(Family.fair_price, payload, carry_unknown=True)
    assert record.unknown_fields == ("contributors.latency_ms",)
    assert record.value["extras"] == {
        "contributors[1].latency_ms": "3",
        "contributors[3].latency_ms": "4",
    }


def test_timestamps_floor_to_micros_and_stay_exact() -> None:
    value = fill_value(ts_unix_ns=1745979000498999999)
    assert value["ts_unix_ns"] == 1745979000498999999
    assert value["ts"] == 1745979000498999
    assert fill_value(ts_unix_ns=-1)["ts"] == -1  # floor, not truncation toward zero


def test_timestamp_companion_naming() -> None:
    assert timestamp_companion("ts_ns") == "ts"
    assert timestamp_companion("ts_unix_ns") == "ts"
    assert timestamp_companion("created_unix_ns") == "created_at"
    assert timestamp_companion("updated_unix_ns") == "updated_at"
    assert timestamp_companion("next_settlement_ns") == "next_settlement_at"
    assert timestamp_companion("cc_ts_ns") == "cc_ts"
    assert timestamp_companion("observed_at_ns") == "observed_at"
    assert timestamp_companion("triggered_at_ns") == "triggered_at"
    assert timestamp_companion("at_ns") == "at"


def test_not_an_object() -> None:
    with pytest.raises(NormalizeError):
        normalize_record(Family.orders, [1, 2], carry_unknown=False)  # type: ignore[arg-type]


def test_every_family_has_a_layout() -> None:
    assert set(RECORD_SPECS) == set(Family)
