"""Re-snapshot and backfill workers against the real simulator, through the real bridge.

The simulator runs at a negligible rate and its history is generated up
front (``feed.emit``), so REST answers are stable and can be compared exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from connector.bridge import Bridge
from connector.control.backfill import Backfiller
from connector.control.resnapshot import Resnapshotter
from connector.handoff import (
    BoundedHandoff,
    ControlRequest,
    Inbound,
    RestKind,
    RestRecord,
)
from connector.normalize.records import ControlKind
from connector.observe.metrics import Metrics
from connector.protocol.families import Family
from connector.sandbox.simulator import Simulator, SimulatorConfig
from connector.serde.schemas import SchemaSet
from connector.serde.topics import TopicNames
from connector.serde.wire import WireEncoder
from connector.source.reconnect import AuthError
from connector.source.rest import SequenceRest
from tests.support.metrics import counted

KEY = "seq_test_key"
SCHEMAS = SchemaSet.load()
IDS = {f: i + 1 for i, f in enumerate(Family)}

Ctx = tuple[Simulator, SequenceRest, BoundedHandoff, Metrics]


def with_sim(test: Callable[[Ctx], Awaitable[None]], events: int = 4000) -> None:
    async def main() -> None:
        sim = Simulator(SimulatorConfig(seed=11, rate=0.001))
        await sim.start()
        sim.state.feed.emit(events)
        try:
            async with SequenceRest(sim.base_url, KEY) as rest:
                ctx = (sim, rest, BoundedHandoff(100_000, 1 << 30), Metrics())
                await asyncio.wait_for(test(ctx), 40)
        finally:
            await sim.stop()

    asyncio.run(main())


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def drain(handoff: BoundedHandoff) -> list[Inbound]:
    items: list[Inbound] = []
    while len(handoff):
        items += await handoff.get_batch(10_000)
    return items


@contextlib.asynccontextmanager
async def running(worker: Resnapshotter | Backfiller) -> Any:
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()


def bridge_ok(items: list[Inbound]) -> None:
    """The items go through normalise/dedupe/encode like stream items, no DLQ."""
    bridge = Bridge(topics=TopicNames(), encoder=WireEncoder(SCHEMAS, IDS), metrics=Metrics(),
                    instance="t", max_frame_bytes=1 << 20, carry_unknown=True,
                    dedupe_capacity=100_000)
    for item in items:
        assert bridge.process(item), item
    assert bridge.dlq_count == 0


def test_quote_becomes_prices_and_per_venue_book_snapshots() -> None:
    async def test(ctx: Ctx) -> None:
        _, rest, handoff, metrics = ctx
        rs = Resnapshotter(rest, handoff, metrics)
        expected = await rest.quote("BTC-USD", 10)
        async with running(rs):
            rs.request("prices:BTC-USD", 3, "gap")
            rs.request("book:BTC-USD", 3, "gap")
            await until(lambda: rs.completed == 2)
        items = await drain(handoff)
        bridge_ok(items)
        by_channel = {ch: [i for i in items if i.channel == ch]
                      for ch in ("prices:BTC-USD", "book:BTC-USD")}
        for channel, got in by_channel.items():
            control = got[0]
            assert control == ControlRequest(ControlKind.resnapshot, channel, {"reason": "gap"},
                                             control.recv_ns, 3)
            assert all(isinstance(i, RestRecord) and i.kind is RestKind.resnapshot
                       and i.epoch == 3 for i in got[1:])
        [prices] = by_channel["prices:BTC-USD"][1:]
        assert prices.family == "prices"
        assert prices.data == {k: expected[k] for k in (
            "symbol", "instrument_type", "best_bid_px_1e9", "best_bid_sz_1e8", "best_bid_venue",
            "best_ask_px_1e9", "best_ask_sz_1e8", "best_ask_venue", "spread_bps", "ts_ns")}
        books = by_channel["book:BTC-USD"][1:]
        assert [b.family for b in books] == ["book"] * len(expected["venues"])
        for book, venue in zip(books, expected["venues"], strict=True):
            assert book.data is not None and book.data["is_snapshot"] is True
            assert {k: book.data[k] for k in ("venue", "instrument_type", "bids", "asks",
                                              "ts_ns", "checksum")} == venue
            assert book.data["symbol"] == "BTC-USD"
        assert counted(metrics, "resnapshots", family="prices") == 1
        assert counted(metrics, "resnapshots", family="book") == 1

    with_sim(test)


def test_funding_filters_and_channels_without_snapshot() -> None:
    async def test(ctx: Ctx) -> None:
        _, rest, handoff, metrics = ctx
        rs = Resnapshotter(rest, handoff, metrics)
        async with running(rs):
            for ch in ("funding", "funding:binance", "funding:okx:ETH-USDT", "fair_price:BTC"):
                rs.request(ch, 1, "reconnect")
            await until(lambda: rs.completed == 4)
        items = await drain(handoff)
        bridge_ok(items)
        rows = {ch: [i.data for i in items
                    if isinstance(i, RestRecord) and i.channel == ch and i.family == "funding"]
                for ch in ("funding", "funding:binance", "funding:okx:ETH-USDT")}
        assert len(rows["funding"]) == 8
        assert {r["venue"] for r in rows["funding:binance"] if r} == {"binance"}
        assert [(r["venue"], r["symbol"]) for r in rows["funding:okx:ETH-USDT"] if r] == [
            ("okx", "ETH-USDT")]
        assert all(isinstance(r["ts_ns"], int) for rs_ in rows.values() for r in rs_ if r)
        [fair] = [i for i in items if i.channel == "fair_price:BTC"]
        assert isinstance(fair, ControlRequest) and fair.kind is ControlKind.resnapshot
        assert "no REST snapshot" in fair.fields["reason"]
        assert rs.fetches == 3

    with_sim(test)


def test_coalescing_and_rate_limit() -> None:
    async def test(ctx: Ctx) -> None:
        _, rest, handoff, metrics = ctx
        rs = Resnapshotter(rest, handoff, metrics, min_interval_s=1.5)
        before = rest.requests
        for epoch in range(10):
            rs.request("book:ETH-USD", epoch, "gap")
        async with running(rs):
            await until(lambda: rs.completed == 1)
            assert rs.fetches == 1 and rest.requests - before == 1  # 10 requests, 1 fetch
            rs.request("book:ETH-USD", 11, "gap again")
            await asyncio.sleep(0.2)
            assert rs.fetches == 1 and rs.pending == {"book:ETH-USD"}  # deferred, not dropped
            await until(lambda: rs.completed == 2)
        assert rs.fetches == 2 and rest.requests - before == 2
        controls = [i for i in await drain(handoff) if isinstance(i, ControlRequest)]
        assert [c.epoch for c in controls] == [9, 11]

    with_sim(test)


def rest_fills(sim: Simulator) -> list[dict[str, Any]]:
    return list(sim.state.feed.trading.fills)  # oldest first


def test_backfill_of_fills_puts_every_fill_once_oldest_first() -> None:
    async def test(ctx: Ctx) -> None:
        sim, rest, handoff, metrics = ctx
        history = rest_fills(sim)
        assert len(history) > 40
        bf = Backfiller(rest, handoff, metrics, known=lambda f, d: False, page_size=7,
                        max_pages=50)
        async with running(bf):
            bf.request("fills", 2, "reconnect")
            bf.request("fills", 2, "gap")
            await until(lambda: bf.completed == 1)
        items = await drain(handoff)
        bridge_ok(items)
        control, *fills = items
        assert control == ControlRequest(ControlKind.backfill, "fills",
                                         {"reason": "reconnect; gap"}, control.recv_ns, 2)
        assert all(isinstance(i, RestRecord) and i.kind is RestKind.backfill
                   and i.family == "fills" and i.channel == "fills" and i.epoch == 2
                   for i in fills)
        assert [i.data for i in fills] == history  # every fill exactly once, oldest first
        assert bf.pages_fetched == -(-len(history) // 7)
        assert counted(metrics, "backfilled_records", family="fills") == len(history)

    with_sim(test)


def test_backfill_stops_after_one_page_when_all_known_and_at_max_pages() -> None:
    async def test(ctx: Ctx) -> None:
        sim, rest, handoff, metrics = ctx
        bf = Backfiller(rest, handoff, metrics, known=lambda f, d: True, page_size=5)
        async with running(bf):
            bf.request("fills", 1, "gap")
            await until(lambda: bf.completed == 1)
        assert bf.pages_fetched == 1
        assert [type(i) for i in await drain(handoff)] == [ControlRequest]
        capped = Backfiller(rest, handoff, metrics, known=lambda f, d: False, page_size=5,
                            max_pages=3)
        assert await capped.backfill("tca", 1, "gap") == 15
        assert capped.pages_fetched == 3
        got = [i.data for i in await drain(handoff) if isinstance(i, RestRecord)]
        assert got == list(sim.state.feed.trading.tca)[-15:]

    with_sim(test)


def test_backfill_of_orders_respects_the_watermark() -> None:
    async def test(ctx: Ctx) -> None:
        sim, rest, handoff, metrics = ctx
        orders = list(sim.state.feed.trading.orders.values())  # creation order
        assert len(orders) > 30
        mark = orders[len(orders) // 2]["created_unix_ns"]
        bf = Backfiller(rest, handoff, metrics, known=lambda f, d: False, page_size=5,
                        slack_ns=0)
        bf.observe("orders", {"node_order_id": "graph:elsewhere:x:1", "updated_unix_ns": mark})
        async with running(bf):
            bf.request("orders", 4, "reconnect")
            await until(lambda: bf.completed == 1)
        items = await drain(handoff)
        bridge_ok(items)
        got = [i.data for i in items if isinstance(i, RestRecord)]
        assert got and all(o["updated_unix_ns"] >= mark for o in got)
        assert [o["updated_unix_ns"] for o in got] == sorted(o["updated_unix_ns"] for o in got)
        ids = {o["node_order_id"] for o in got}
        assert len(ids) == len(got)
        assert {o["node_order_id"] for o in orders if o["created_unix_ns"] >= mark} <= ids
        assert bf.pages_fetched < -(-len(orders) // 5)  # it stopped before the end
        # a state older than one already written is never re-emitted
        newest = got[-1]
        bf.observe("orders", newest)
        assert bf.is_stale("orders", {**newest, "updated_unix_ns": newest["updated_unix_ns"] - 1})

    with_sim(test)


def test_rest_failures_keep_the_channel_pending_and_bad_keys_are_fatal() -> None:
    async def test(ctx: Ctx) -> None:
        sim, rest, handoff, metrics = ctx
        rs = Resnapshotter(rest, handoff, metrics, min_interval_s=30)
        async with running(rs):
            rs.request("book:NOPE-XYZ", 1, "gap")  # 404 from REST
            await until(lambda: rs.failures == 1)
            assert rs.pending == {"book:NOPE-XYZ"} and rs.completed == 0
        assert len(handoff) == 0  # a failed fetch writes nothing, not even the control
        async with SequenceRest(sim.base_url, "seq_wrong_key") as bad:
            for worker in (Resnapshotter(bad, handoff, metrics),
                           Backfiller(bad, handoff, metrics, known=lambda f, d: False)):
                if isinstance(worker, Resnapshotter):
                    worker.request("prices:BTC-USD", 1, "gap")
                else:
                    worker.request("fills", 1, "gap")
                try:
                    await asyncio.wait_for(worker.run(), 10)
                except AuthError:
                    pass
                else:
                    raise AssertionError("run() must end with AuthError")

    with_sim(test)
