"""family_of_channel, record_key and dedupe_key."""

from __future__ import annotations

import pytest

from connector.errors import NormalizeError, UnknownChannelError
from connector.normalize.examples import example_payload
from connector.protocol import Family, channel_suffix, dedupe_key, family_of_channel, record_key

YES = "71166707665253014908308475311609108419118036985903834861277070930664191157865"


@pytest.mark.parametrize(
    ("channel", "family"),
    [
        ("prices:BTC-USD", Family.prices),
        (f"prices:polymarket:{YES}", Family.prices),
        ("prices:polymarket:btc-updown-5m-1778715600:yes", Family.prices),
        ("prices:KXBTCZ-26DEC31-T99000:YES", Family.prices),
        ("book:BTC-USDT", Family.book),
        (f"book:{YES}", Family.book),
        ("orders", Family.orders),
        ("fills", Family.fills),
        ("tca", Family.tca),
        ("traces:dep_7f3a", Family.traces),
        ("funding", Family.funding),
        ("funding:binance", Family.funding),
        ("funding:binance:BTC-USDT", Family.funding),
        ("fair_price", Family.fair_price),
        ("fair_price:BTC", Family.fair_price),
    ],
)
def test_every_channel_form(channel: str, family: Family) -> None:
    assert family_of_channel(channel) is family


@pytest.mark.parametrize(
    "channel",
    [
        "",
        "prices",
        "prices:",
        "book",
        "book:",
        "traces",
        "traces:",
        "orders:x",
        "fills:x",
        "tca:x",
        "funding:",
        "funding::BTC",
        "funding:binance:",
        "fair_price:",
        "routing",
        "deployment:dep_1",
        "PRICES:BTC-USD",
        "sequence.prices",
        "gap",
    ],
)
def test_unknown_channels(channel: str) -> None:
    with pytest.raises(UnknownChannelError) as info:
        family_of_channel(channel)
    assert info.value.stage == "route"
    assert info.value.field == "channel"


def test_channel_suffix() -> None:
    assert channel_suffix("orders") is None
    assert channel_suffix("prices:polymarket:123") == "polymarket:123"
    assert channel_suffix("prices:") is None


@pytest.mark.parametrize(
    ("family", "key"),
    [
        (Family.prices, "BTC-USD"),
        (Family.book, "BTC-USDT|binance"),
        (Family.orders, "graph:graph_a1b2c3d4:btc_leg:1"),
        (Family.fills, "kraken-8f3a2b1c"),
        (Family.tca, "graph:graph_\u2026:kalshi_yes:1"),
        (Family.traces, "dep_7f3a"),
        (Family.funding, "binance|BTC-USDT"),
        (Family.fair_price, "BTC"),
        (Family.markets_new, "polymarket|0xabc123"),
        (Family.markets_resolved, "polymarket|0xabc123"),
        (Family.alerts, "rule_btc_spread"),
        (Family.control, "book:BTC-USDT"),
    ],
)
def test_key_of_every_family(family: Family, key: str) -> None:
    assert record_key(family, example_payload(family)) == key


def test_trace_key_falls_back_to_channel_suffix() -> None:
    assert record_key(Family.traces, {"seq": 1}, "traces:dep_9") == "dep_9"
    assert record_key(Family.traces, {"deployment_id": "dep_1"}, "traces:dep_9") == "dep_1"
    with pytest.raises(NormalizeError) as info:
        record_key(Family.traces, {"seq": 1}, None)
    assert info.value.field == "deployment_id"


def test_alert_key_prefers_rule_then_alert_id() -> None:
    assert record_key(Family.alerts, {"alert_id": "a1", "rule_id": "r1"}) == "r1"
    assert record_key(Family.alerts, {"alert_id": "a1", "rule_id": None}) == "a1"
    with pytest.raises(NormalizeError):
        record_key(Family.alerts, {})


def test_key_fields_missing_or_wrong() -> None:
    with pytest.raises(NormalizeError) as info:
        record_key(Family.book, {"symbol": "BTC-USDT"})
    assert info.value.field == "venue"
    with pytest.raises(NormalizeError):
        record_key(Family.prices, {"symbol": True})
    assert record_key(Family.markets_new, {"venue": "kalshi", "event_id": 42}) == "kalshi|42"


def test_dedupe_keys() -> None:
    assert dedupe_key(Family.fills, example_payload(Family.fills)) == "kraken-8f3a2b1c"
    assert dedupe_key(Family.markets_new, example_payload(Family.markets_new)) == (
        "polymarket|0xabc123"
    )
    assert dedupe_key(Family.markets_resolved, example_payload(Family.markets_resolved)) == (
        "polymarket|0xabc123"
    )
    assert dedupe_key(Family.tca, example_payload(Family.tca)) == "graph:graph_\u2026:kalshi_yes:1"
    for family in (
        Family.prices,
        Family.book,
        Family.orders,
        Family.funding,
        Family.alerts,
        Family.traces,
        Family.fair_price,
        Family.control,
    ):
        assert dedupe_key(family, example_payload(family)) is None
