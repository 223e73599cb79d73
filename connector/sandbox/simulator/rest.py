"""REST endpoints of ``docs/upstream/rest.md``, answered from the live simulator state.

Shapes chosen where the vendor gives none:

``GET /v1/quotes/{symbol}?depth=N`` (any address form)::

    {"symbol", "instrument_type", "source": "edge_nbbo",
     "best_bid_px_1e9", "best_bid_sz_1e8", "best_bid_venue",
     "best_ask_px_1e9", "best_ask_sz_1e8", "best_ask_venue",
     "mid_px_1e9", "spread_bps", "ts_ns", "depth",
     "venues": [{"venue", "instrument_type", "bids", "asks", "ts_ns", "checksum"}],
     "merged_book": {"bids": [[px, sz], ...], "asks": [...]}}

Books are what the last streamed frame left (a book has 10 levels, so depth
above 10 returns 10). ``GET /v1/quotes?symbols=a,b`` returns a list of these.

Pages: ``{"orders"|"fills"|"reports": [...], "total", "limit", "offset",
"has_more"}``, newest first; ``limit`` 1..1000 (default 50), ``offset`` >= 0.
``/v1/orders`` holds each order's latest state. Errors use the vendor
envelope: 400 INVALID_PARAMS (with ``details``), 404 NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Iterable, Reversible
from typing import Any

import orjson
from aiohttp import web

from connector.sandbox.simulator.books import merged
from connector.sandbox.simulator.errors import error_response, invalid
from connector.sandbox.simulator.state import SimState
from connector.sandbox.simulator.universe import MARKETS, PERP_VENUES, PredictionMarket

MAX_LIMIT = 1000


def json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


class BadParam(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParam(invalid(name, "must be an integer")) from None
    if not lo <= value <= hi:
        raise BadParam(invalid(name, f"must be between {lo} and {hi}"))
    return value


def _symbol(state: SimState, address: str) -> str:
    symbol = state.universe.resolve(address)
    if symbol is None:
        raise BadParam(error_response(404, f"unknown symbol {address!r}"))
    return symbol


def _page(request: web.Request, name: str, rows: Iterable[dict[str, Any]]) -> web.Response:
    limit = _int(request, "limit", 50, 1, MAX_LIMIT)
    offset = _int(request, "offset", 0, 0, 10**9)
    items = list(rows)
    page = items[offset:offset + limit]
    return json({name: page, "total": len(items), "limit": limit, "offset": offset,
                 "has_more": offset + len(page) < len(items)})


def quote(state: SimState, address: str, depth: int) -> dict[str, Any]:
    symbol = _symbol(state, address)
    books = state.feed.books.get(symbol)
    if books is None:
        raise BadParam(error_response(404, f"no book yet for {symbol!r} (lifecycle market)"))
    top = state.feed.nbbo(symbol)
    return {
        "symbol": symbol,
        "instrument_type": top["instrument_type"],
        "source": "edge_nbbo",
        **{k: v for k, v in top.items() if k not in ("symbol", "instrument_type")},
        "mid_px_1e9": (top["best_bid_px_1e9"] + top["best_ask_px_1e9"]) // 2,
        "depth": depth,
        "venues": [
            {"venue": b.venue, "instrument_type": b.inst.instrument_type,
             "bids": b.levels(b.bids, depth), "asks": b.levels(b.asks, depth),
             "ts_ns": b.ts_ns, "checksum": b.checksum()}
            for b in books
        ],
        "merged_book": merged(books, depth),
    }


async def get_quote(state: SimState, request: web.Request) -> web.Response:
    depth = _int(request, "depth", 10, 1, 100)
    return json(quote(state, request.match_info["symbol"], depth))


async def get_quotes(state: SimState, request: web.Request) -> web.Response:
    raw = request.query.get("symbols", "")
    symbols = [s for s in raw.split(",") if s]
    if not symbols:
        return invalid("symbols", "comma-separated list required")
    depth = _int(request, "depth", 10, 1, 100)
    return json([quote(state, s, depth) for s in symbols])


async def get_orders(state: SimState, request: web.Request) -> web.Response:
    history = state.feed.trading.orders
    node_id = request.query.get("node_order_id")
    if node_id:
        return _page(request, "orders", [history[node_id]] if node_id in history else [])
    return _history_page(state, request, "orders", history.values())


async def get_fills(state: SimState, request: web.Request) -> web.Response:
    return _history_page(state, request, "fills", state.feed.trading.fills)


async def get_tca(state: SimState, request: web.Request) -> web.Response:
    return _history_page(state, request, "reports", state.feed.trading.tca)


def _history_page(state: SimState, request: web.Request, rows_key: str,
                  history: Reversible[dict[str, Any]]) -> web.Response:
    """Newest first, optionally filtered by ``?symbol=`` (any address form)."""
    rows: Iterable[dict[str, Any]] = reversed(history)
    if "symbol" in request.query:
        symbol = _symbol(state, request.query["symbol"])
        rows = (r for r in rows if r["symbol"] == symbol)
    return _page(request, rows_key, rows)


async def get_funding(state: SimState, request: web.Request) -> web.Response:
    venue = request.query.get("venue")
    symbol = request.query.get("symbol")
    if venue and venue not in PERP_VENUES:
        return invalid("venue", f"one of {', '.join(PERP_VENUES)}")
    rates = [r for r in state.feed.funding_rows()
             if (not venue or r["venue"] == venue) and (not symbol or r["symbol"] == symbol)]
    return json({"unit": "bps_per_hour", "rates": rates})


def _market_row(state: SimState, m: PredictionMarket) -> dict[str, Any]:
    row = m.row()
    books = state.feed.books
    if m.yes_token_id in books:
        # Core markets trade, so their BBO comes from the streamed books.
        for side, token in (("yes", m.yes_token_id), ("no", m.no_token_id)):
            bid, ask = state.feed.top(token)
            row[f"best_{side}_bid"] = bid / 1e9
            row[f"best_{side}_ask"] = ask / 1e9
    return row


async def get_markets(state: SimState, request: web.Request) -> web.Response:
    venue = request.query.get("venue", "polymarket")
    if venue not in ("polymarket", "kalshi"):
        return invalid("venue", "polymarket or kalshi")
    limit = _int(request, "limit", 20, 1, 500)
    slug = request.query.get("slug")
    token = request.query.get("clob_token_id")
    q = request.query.get("q", "").lower()
    rows = []
    for m in [*MARKETS, *reversed(state.lifecycle.minted)]:
        if m.venue != venue:
            continue
        tokens = (m.yes_token_id, m.no_token_id)
        if slug and slug != m.slug and slug not in tokens:
            continue
        if token and token not in tokens:
            continue
        if q and q not in m.question.lower() and q not in m.slug:
            continue
        rows.append(_market_row(state, m))
        if len(rows) >= limit:
            break
    return json({"markets": rows, "count": len(rows), "venue": venue, "next_cursor": None,
                 "has_more": False})


async def get_symbols(state: SimState, request: web.Request) -> web.Response:
    return json(state.universe.symbols())


async def get_health(state: SimState, request: web.Request) -> web.Response:
    return json({"status": "ok"})


async def get_ticket(state: SimState, request: web.Request) -> web.Response:
    return json({"ticket": state.auth.issue_ticket()})


async def get_ledger(state: SimState, request: web.Request) -> web.Response:
    return json(state.ledger.to_json())


async def get_stats(state: SimState, request: web.Request) -> web.Response:
    return json(state.stats.to_json(state.feed.n))


async def post_faults(state: SimState, request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read())
        if not isinstance(body, dict):
            raise TypeError("body must be a JSON object")
        return json({"applied": await state.faults.apply(body)})
    except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
        return error_response(400, str(exc))
