"""Dedupe store bounds and the bounded hand-off's backpressure."""

from __future__ import annotations

import asyncio

from connector.dedupe.store import DedupeStore
from connector.handoff import BoundedHandoff, StreamFrame


def test_dedupe_first_time_and_bound() -> None:
    store = DedupeStore(capacity=3)
    assert store.first_time("a") and store.first_time("b")
    assert not store.first_time("a")
    assert store.hits == 1
    store.first_time("c")
    store.first_time("d")  # evicts "a", the oldest
    assert len(store) == 3 and "a" not in store and "d" in store
    store.forget("d")
    assert "d" not in store


def _item(n: int, size: int = 10) -> StreamFrame:
    return StreamFrame(raw=b"x" * size, recv_ns=n)


def test_handoff_blocks_when_full_and_keeps_order() -> None:
    async def scenario() -> list[int]:
        q = BoundedHandoff(max_records=2, max_bytes=1_000_000)
        await q.put(_item(1))
        await q.put(_item(2))
        third = asyncio.create_task(q.put(_item(3)))
        await asyncio.sleep(0.05)
        assert not third.done(), "a full hand-off must make the reader wait"
        got = await q.get_batch(10)
        await asyncio.wait_for(third, 1)
        got += await q.get_batch(10)
        return [i.recv_ns for i in got]

    assert asyncio.run(scenario()) == [1, 2, 3]


def test_handoff_bounded_by_bytes_but_never_starves_big_items() -> None:
    async def scenario() -> None:
        q = BoundedHandoff(max_records=100, max_bytes=100)
        await q.put(_item(1, size=500))  # alone: let through
        blocked = asyncio.create_task(q.put(_item(2, size=10)))
        await asyncio.sleep(0.05)
        assert not blocked.done()
        assert q.bytes == 500
        await q.get_batch(1)
        await asyncio.wait_for(blocked, 1)
        assert q.bytes == 10

    asyncio.run(scenario())
