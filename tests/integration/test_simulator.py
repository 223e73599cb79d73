"""The simulator over real loopback sockets, driven by plain clients (no mocks)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from connector.sandbox.simulator import Simulator, SimulatorConfig
from connector.sandbox.simulator.universe import INSTRUMENTS, MARKETS

KEY = "seq_test_key"
AUTH = {"Authorization": f"Bearer {KEY}"}
POLY = MARKETS[0]


def run(test: Callable[[Simulator], Awaitable[None]], **config: Any) -> None:
    async def main() -> None:
        async with Simulator(SimulatorConfig(**config)) as sim:
            await asyncio.wait_for(test(sim), 30)

    asyncio.run(main())


def ws_url(sim: Simulator, path: str = "/v1/stream") -> str:
    return sim.base_url.replace("http://", "ws://") + path


async def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]


async def subscribe(sim: Simulator, topics: list[str],
                    **kw: Any) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(ws_url(sim), additional_headers=AUTH, **kw)
    await ws.send(orjson.dumps({"subscribe": topics}).decode())
    return ws, await recv(ws)


async def rest(sim: Simulator, path: str, method: str = "GET", **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.request(method, sim.base_url + path, **kw) as r:
        return r.status, await r.json()


def test_bad_key_is_401_before_upgrade() -> None:
    async def test(sim: Simulator) -> None:
        for headers, query in (({"Authorization": "Bearer wrong"}, ""), ({}, ""),
                               ({}, f"?api_key={KEY}")):
            with pytest.raises(InvalidStatus) as err:
                await connect(ws_url(sim) + query, additional_headers=headers)
            assert err.value.response.status_code == 401
            body = orjson.loads(err.value.response.body or b"{}")
            assert body["error"]["code"] == "UNAUTHORIZED"
            assert set(body["error"]) == {"code", "message", "request_id", "details"}
        status, body = await rest(sim, "/v1/fills")
        assert status == 401 and body["error"]["code"] == "UNAUTHORIZED"
    run(test)


def test_ticket_works_once() -> None:
    async def test(sim: Simulator) -> None:
        status, body = await rest(sim, "/v1/ws/ticket", headers=AUTH)
        assert status == 200 and body["ticket"].startswith("wst_")
        url = ws_url(sim) + f"?ticket={body['ticket']}"
        async with connect(url) as ws:
            await ws.send('{"subscribe": ["orders"]}')
            assert await recv(ws) == {"subscribed": ["orders"], "rejected": []}
        with pytest.raises(InvalidStatus) as err:
            await connect(url)
        assert err.value.response.status_code == 401
    run(test)


def test_ack_first_with_rejections_and_errors_keep_the_socket() -> None:
    async def test(sim: Simulator) -> None:
        ws = await connect(ws_url(sim) + "?symbols=BTC-USD&prices=1", additional_headers=AUTH)
        with pytest.raises(TimeoutError):  # query parameters subscribe to nothing
            await recv(ws, 0.5)
        await ws.send("{not json")
        assert (await recv(ws))["error"]["code"] == "BAD_REQUEST"
        topics = ["prices:BTC-USD", "nope:X", "prices:", "prices:DOGE-USD", "funding:ftx",
                  f"book:polymarket:{POLY.slug}:maybe", "orders", "fair_price"]
        await ws.send(orjson.dumps({"subscribe": topics}).decode())
        ack = await recv(ws)
        assert ack == {"subscribed": ["prices:BTC-USD", "orders", "fair_price"],
                       "rejected": ["nope:X", "prices:", "prices:DOGE-USD", "funding:ftx",
                                    f"book:polymarket:{POLY.slug}:maybe"]}
        for _ in range(20):
            assert (await recv(ws))["channel"] in ack["subscribed"]
        await ws.send('{"unsubscribe": ["prices:BTC-USD", "orders", "fair_price"]}')
        await ws.close()
    run(test, rate=2000)


def test_book_snapshot_first_per_venue_then_deltas() -> None:
    async def test(sim: Simulator) -> None:
        ws, ack = await subscribe(sim, ["book:BTC-USD", f"book:polymarket:{POLY.yes_token_id}",
                                        "book:KXBTCZ-26DEC31-T99000:YES"])
        assert not ack["rejected"]
        seen: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        while len(seen) < 4 or min(len(v) for v in seen.values()) < 3:
            msg = await recv(ws)
            seen[(msg["channel"], msg["data"]["venue"])].append(msg["data"])
        assert {v for _, v in seen} == {"coinbase", "kraken", "polymarket", "kalshi"}
        for (_channel, venue), frames in seen.items():
            assert frames[0]["is_snapshot"] is True
            assert len(frames[0]["bids"]) == len(frames[0]["asks"]) == 10
            assert all(f["is_snapshot"] is False for f in frames[1:])
            for f in frames:
                if venue == "polymarket":
                    assert isinstance(f["checksum"], int) and 0 <= f["checksum"] < 2**32
                else:
                    assert f["checksum"] is None
        await ws.close()
    run(test, rate=5000)


def test_prediction_address_forms_resolve_to_canonical_symbol() -> None:
    async def test(sim: Simulator) -> None:
        forms = {
            f"prices:polymarket:{POLY.yes_token_id}": POLY.yes_token_id,
            f"prices:{POLY.yes_token_id}": POLY.yes_token_id,
            f"prices:polymarket:{POLY.slug}:yes": POLY.yes_token_id,
            f"prices:polymarket:{POLY.slug}:no": POLY.no_token_id,
            "prices:KXBTCZ-26DEC31-T99000:YES": "KXBTCZ-26DEC31-T99000:YES",
            "prices:BTC-USD": "BTC-USD",
        }
        ws, ack = await subscribe(sim, list(forms))
        assert ack["subscribed"] == list(forms)
        got: dict[str, str] = {}
        while len(got) < len(forms):
            msg = await recv(ws)
            got[msg["channel"]] = msg["data"]["symbol"]
        assert got == forms
        status, quote = await rest(sim, f"/v1/quotes/polymarket%3A{POLY.slug}%3Ayes", headers=AUTH)
        assert status == 200 and quote["symbol"] == POLY.yes_token_id
        await ws.close()
    run(test, rate=5000)


def test_slow_client_gets_gap_then_more_events() -> None:
    async def test(sim: Simulator) -> None:
        # Enough traffic to fill the kernel and transport buffers (a few MB) quickly.
        topics = [f"{fam}:{i.symbol}" for i in INSTRUMENTS for fam in ("book", "prices")]
        topics += ["funding", "fair_price"]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", sim.port))
        ws, _ = await subscribe(sim, topics, sock=sock, max_queue=1, close_timeout=0.5)
        await asyncio.sleep(1.5)  # do not read: the server's per-topic buffers overflow
        gap = None
        for _ in range(20_000):
            msg = await recv(ws)
            if "gap" in msg:
                gap = msg
                break
        assert gap is not None
        assert set(gap) == {"channel", "gap"} and gap["channel"] in topics
        assert isinstance(gap["gap"]["dropped"], int) and gap["gap"]["dropped"] > 0
        after = [await recv(ws) for _ in range(20)]
        assert any("data" in m for m in after)
        stats = (await rest(sim, "/_sim/stats"))[1]
        assert stats["gaps"] >= 1 and stats["dropped"] >= gap["gap"]["dropped"]
        await ws.close()
    run(test, rate=20_000, buffer_size=32, ledger=False)


def test_fills_sum_to_filled_qty_and_rest_agrees() -> None:
    async def test(sim: Simulator) -> None:
        ws, _ = await subscribe(sim, ["orders", "fills", "tca"])
        orders: dict[str, list[dict[str, Any]]] = defaultdict(list)
        fills: list[dict[str, Any]] = []
        tca: list[dict[str, Any]] = []
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            msg = await recv(ws)
            {"orders": lambda d: orders[d["node_order_id"]].append(d),
             "fills": fills.append, "tca": tca.append}[msg["channel"]](msg["data"])
        await ws.close()
        per_order: dict[str, int] = defaultdict(int)
        for f in fills:
            per_order[f["node_order_id"]] += f["qty_1e8"]
        whole = [states for states in orders.values()
                 if states[0]["status"] == "PENDING" and states[-1]["status"] in
                 ("COMPLETED", "CANCELLED")]
        assert len(whole) >= 5
        for states in whole:
            last = states[-1]
            assert per_order[last["node_order_id"]] == last["filled_qty_1e8"]
            if last["status"] == "COMPLETED":
                assert last["filled_qty_1e8"] == last["qty_1e8"]
        completed = {s[-1]["node_order_id"] for s in orders.values()
                     if s[-1]["status"] == "COMPLETED"}
        assert {t["node_order_id"] for t in tca} <= completed | set()  # tca only after completion
        status, page = await rest(sim, "/v1/fills?limit=1000", headers=AUTH)
        assert status == 200 and set(page) == {"fills", "total", "limit", "offset", "has_more"}
        by_id = {f["venue_execution_id"]: f for f in page["fills"]}
        assert len(by_id) == len(page["fills"])
        for f in fills:
            assert by_id[f["venue_execution_id"]] == f
        one = whole[0][-1]
        status, page = await rest(sim, f"/v1/orders?node_order_id={one['node_order_id']}",
                                  headers=AUTH)
        assert page["orders"] == [one]
        status, page = await rest(sim, "/v1/tca?limit=1000", headers=AUTH)
        reports = {r["node_order_id"]: r for r in page["reports"]}
        assert all(reports[t["node_order_id"]] == t for t in tca)
        status, err = await rest(sim, "/v1/fills?limit=0", headers=AUTH)
        assert status == 400 and err["error"]["code"] == "INVALID_PARAMS"
        status, err = await rest(sim, "/v1/quotes/DOGE-USD", headers=AUTH)
        assert status == 404 and err["error"]["code"] == "NOT_FOUND"
    run(test, rate=4000)


def test_lifecycle_replays_128_then_streams_live() -> None:
    async def test(sim: Simulator) -> None:
        for path, kind in (("/v1/ws/new_markets", "new_market"),
                           ("/v1/ws/market_resolved", "market_resolved")):
            async with connect(ws_url(sim, path), additional_headers=AUTH) as ws:
                connected = time.time_ns()
                replay = [await recv(ws) for _ in range(128)]
                assert all(e["kind"] == kind for e in replay)
                assert all(e["observed_at_ns"] <= connected for e in replay)
                assert {e["venue"] for e in replay} == {"polymarket", "kalshi"}
                live = await recv(ws, 3.0)
                assert live["kind"] == kind and live["observed_at_ns"] > connected
                assert (live["venue"], live["event_id"]) not in {
                    (e["venue"], e["event_id"]) for e in replay}
    run(test, lifecycle_interval=0.3)


def test_ledger_records_exactly_what_was_sent() -> None:
    async def test(sim: Simulator) -> None:
        ws, ack = await subscribe(sim, ["prices:BTC-USD", "funding"])
        received = [ack] + [await recv(ws) for _ in range(30)]
        await ws.close()
        _, ledger = await rest(sim, "/_sim/ledger")
        conns = [c for c in ledger["connections"] if c["path"] == "/v1/stream"]
        assert len(conns) == 1
        conn = conns[0]
        assert conn["topics"] == ["prices:BTC-USD", "funding"]
        assert conn["closed_at_ns"] >= conn["connected_at_ns"]
        assert conn["frames"][: len(received)] == received
        assert sim.ledger.connections("/v1/stream")[0].frames[:31] == received
        stats = (await rest(sim, "/_sim/stats"))[1]
        assert stats["sent"]["prices:BTC-USD"] + stats["sent"]["funding"] >= 30
    run(test, rate=3000)


def test_faults_drop_sockets() -> None:
    async def test(sim: Simulator) -> None:
        ws, _ = await subscribe(sim, ["prices:BTC-USD"])
        status, body = await rest(sim, "/_sim/faults", "POST", json={"drop": {}})
        assert status == 200 and body["applied"]["drop"] == 1
        with pytest.raises(ConnectionClosed) as err:
            while True:
                await recv(ws)
        assert err.value.rcvd is None  # no close frame: an abrupt TCP close
        ws, _ = await subscribe(sim, ["prices:BTC-USD"])
        await sim.faults.drop_streams(1011)
        with pytest.raises(ConnectionClosed) as err:
            while True:
                await recv(ws)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1011
    run(test, rate=2000)


def test_faults_handshake_statuses_and_rest_429() -> None:
    async def test(sim: Simulator) -> None:
        await rest(sim, "/_sim/faults", "POST",
                   json={"handshake": {"statuses": [503, 429], "retry_after": 1},
                         "rest_429": {"count": 1, "retry_after": 2}})
        for expected in (503, 429):
            with pytest.raises(InvalidStatus) as err:
                await connect(ws_url(sim), additional_headers=AUTH)
            assert err.value.response.status_code == expected
            assert err.value.response.headers["Retry-After"] == "1"
        async with connect(ws_url(sim), additional_headers=AUTH):
            pass
        async with aiohttp.ClientSession() as s:
            async with s.get(sim.base_url + "/v1/fills", headers=AUTH) as r:
                assert r.status == 429 and r.headers["Retry-After"] == "2"
                assert (await r.json())["error"]["code"] == "RATE_LIMITED"
            async with s.get(sim.base_url + "/v1/fills", headers=AUTH) as r:
                assert r.status == 200
    run(test)


def test_faults_garbage_and_duplicate_fills() -> None:
    async def test(sim: Simulator) -> None:
        ws, _ = await subscribe(sim, ["prices:BTC-USD", "fills"])
        await recv(ws)
        sim.faults.inject_garbage(4)
        sim.faults.duplicate_fills(2)
        bad, fill_ids = 0, []
        deadline = time.monotonic() + 3.0
        while (bad < 4 or len(fill_ids) < 6) and time.monotonic() < deadline:
            raw = await asyncio.wait_for(ws.recv(), 5)
            try:
                msg = orjson.loads(raw)
            except orjson.JSONDecodeError:
                bad += 1
                continue
            if msg.get("channel") not in ("prices:BTC-USD", "fills") or "data" not in msg \
                    or not isinstance(msg["data"].get("symbol"), str):
                bad += 1
            elif msg["channel"] == "fills":
                fill_ids.append(msg["data"]["venue_execution_id"])
        assert bad == 4
        assert len(fill_ids) - len(set(fill_ids)) == 2
        await ws.close()
    run(test, rate=3000)


def test_sse_streams_tca_and_alerts() -> None:
    async def test(sim: Simulator) -> None:
        async with aiohttp.ClientSession() as s:
            for path, event in (("/v1/tca/stream", "tca_report"), ("/v1/alerts/stream", "alert")):
                async with s.get(sim.base_url + path) as r:
                    assert r.status == 401
                async with s.get(sim.base_url + path, headers=AUTH) as r:
                    assert r.headers["Content-Type"].startswith("text/event-stream")
                    lines: list[str] = []
                    while len([x for x in lines if x.startswith("data:")]) < 2:
                        lines.append((await r.content.readline()).decode().rstrip("\n"))
                    assert lines[0] == ": connected"
                    assert f"event: {event}" in lines and "id: 1" in lines
                    data = orjson.loads(next(x for x in lines if x.startswith("data:"))[5:])
                    key = "achieved_vwap_1e9" if event == "tca_report" else "rule_id"
                    assert key in data
    run(test, rate=20_000, ledger=False)


def test_lifecycle_socket_pings() -> None:
    async def test(sim: Simulator) -> None:
        async with aiohttp.ClientSession() as s, s.ws_connect(
                sim.base_url + "/v1/ws/new_markets", headers=AUTH, autoping=False) as ws:
            kinds = set()
            while aiohttp.WSMsgType.PING not in kinds:
                msg = await asyncio.wait_for(ws.receive(), 3)
                kinds.add(msg.type)
                if msg.type is aiohttp.WSMsgType.PING:
                    await ws.pong(msg.data)
    run(test, lifecycle_ping_interval=0.2)
