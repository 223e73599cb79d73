"""Re-snapshot without sockets: quote -> stream payloads, channel filters, coalescing."""

from __future__ import annotations

from typing import Any

from connector.control.resnapshot import (
    Resnapshotter,
    books_from_quote,
    funding_filters,
    funding_row,
    prices_from_quote,
)
from connector.handoff import BoundedHandoff
from connector.observe.metrics import Metrics
from connector.source.rest import SequenceRest

QUOTE: dict[str, Any] = {
    "symbol": "BTC-USD", "instrument_type": "spot", "source": "edge_nbbo",
    "best_bid_px_1e9": 76410000000000, "best_bid_sz_1e8": 12000000, "best_bid_venue": "coinbase",
    "best_ask_px_1e9": 76411000000000, "best_ask_sz_1e8": 8000000, "best_ask_venue": "kraken",
    "spread_bps": 1, "ts_ns": 1745979000123456789, "mid_px_1e9": 76410500000000, "depth": 10,
    "venues": [
        {"venue": "coinbase", "instrument_type": "spot", "bids": [[76410.0, 0.12]],
         "asks": [[76411.5, 0.3]], "ts_ns": 1745979000000000001, "checksum": None},
        {"venue": "kraken", "instrument_type": "spot", "bids": [[76409.0, 1.0]],
         "asks": [[76411.0, 0.08]], "ts_ns": 0, "checksum": 42},
    ],
    "merged_book": {"bids": [], "asks": []},
}


def test_prices_payload_is_the_stream_shape() -> None:
    data = prices_from_quote(QUOTE, now_ns=5)
    assert data == {k: QUOTE[k] for k in (
        "symbol", "instrument_type", "best_bid_px_1e9", "best_bid_sz_1e8", "best_bid_venue",
        "best_ask_px_1e9", "best_ask_sz_1e8", "best_ask_venue", "spread_bps", "ts_ns")}


def test_prices_one_sided_and_timeless_quote() -> None:
    quote = {"symbol": "X", "best_bid_px_1e9": 1}
    assert prices_from_quote(quote, now_ns=7) == {"symbol": "X", "best_bid_px_1e9": 1, "ts_ns": 7}


def test_books_one_snapshot_per_venue() -> None:
    books = books_from_quote(QUOTE, now_ns=5)
    assert [b["venue"] for b in books] == ["coinbase", "kraken"]
    assert all(b["is_snapshot"] is True and b["symbol"] == "BTC-USD" for b in books)
    assert books[0]["bids"] == [[76410.0, 0.12]] and books[0]["checksum"] is None
    assert books[0]["ts_ns"] == 1745979000000000001
    # a venue that never ticked carries the quote's time, not 0
    assert books[1]["ts_ns"] == QUOTE["ts_ns"] and books[1]["checksum"] == 42
    assert set(books[0]) == {"symbol", "venue", "instrument_type", "bids", "asks", "ts_ns",
                             "is_snapshot", "checksum"}


def test_funding_filters_and_row_time() -> None:
    assert funding_filters("funding") == (None, None)
    assert funding_filters("funding:binance") == ("binance", None)
    assert funding_filters("funding:binance:BTC-USDT") == ("binance", "BTC-USDT")
    row = {"venue": "okx", "symbol": "ETH-USDT", "rate_bps_per_hour": 0.125,
           "snapshot_age_ms": 3}
    assert funding_row(row, now_ns=10_000_000)["ts_ns"] == 7_000_000
    assert funding_row({**row, "ts_ns": 1}, now_ns=9)["ts_ns"] == 1


def make() -> tuple[Resnapshotter, list[tuple[str, int, str]]]:
    forwarded: list[tuple[str, int, str]] = []
    rs = Resnapshotter(SequenceRest("http://127.0.0.1:9", "k"), BoundedHandoff(10, 10_000),
                       Metrics(), backfill=lambda f, e, r: forwarded.append((f, e, r)))
    return rs, forwarded


def test_requests_coalesce_per_channel() -> None:
    rs, _ = make()
    for epoch in range(10):
        rs.request("book:BTC-USD", epoch, "gap" if epoch % 2 else "reconnect")
    rs.request("prices:BTC-USD", 3, "gap")
    assert rs.pending == {"book:BTC-USD", "prices:BTC-USD"}
    pending = rs._pending["book:BTC-USD"]  # noqa: SLF001 - a request's content is kept inside
    assert pending.epoch == 9 and pending.reason == "reconnect; gap"


def test_trading_channels_go_to_backfill() -> None:
    rs, forwarded = make()
    rs.request("fills", 2, "gap")
    assert forwarded == [("fills", 2, "gap")] and not rs.pending
