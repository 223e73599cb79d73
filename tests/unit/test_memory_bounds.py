"""Bounded state: the dedupe window derived from what can repeat, oldest forgotten first;
the backfill's order memory and the re-snapshot times per channel bounded too."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any

import orjson
import pytest

from connector.bridge import Bridge
from connector.config import ConfigError, load_settings
from connector.control.backfill import Backfiller
from connector.control.resnapshot import MAX_REMEMBERED_CHANNELS, Resnapshotter
from connector.dedupe.store import DedupeStore
from connector.dedupe.window import (
    HEADROOM,
    LIFECYCLE_REPLAY,
    LIVE_PATHS,
    STREAM_BUFFER,
    dedupe_capacity,
    dedupe_window,
)
from connector.gc_tuning import GC_THRESHOLDS, collect_young_every
from connector.handoff import BoundedHandoff, StreamFrame
from connector.normalize.examples import example_payload
from connector.observe.metrics import Metrics
from connector.protocol.families import Family
from connector.serde.schemas import SchemaSet
from connector.serde.topics import TopicNames
from connector.serde.wire import WireEncoder
from connector.source.rest import SequenceRest
from tests.support.metrics import counted

SCHEMAS = SchemaSet.load()
IDS = {f: i + 1 for i, f in enumerate(Family)}


def test_each_family_gets_the_window_of_what_can_repeat_for_it() -> None:
    # defaults: 100 rows x 50 pages of backfill, 4096-entry stream buffers, 128 replayed
    assert dedupe_window(Family.fills, 100, 50) == 2 * (100 * 50 + 4096) == 18_192
    assert dedupe_window(Family.orders, 100, 50) == 18_192  # the backfill's order memory
    assert dedupe_window(Family.tca, 100, 50) == 2 * (100 * 50 + 2 * 4096) == 26_384
    assert dedupe_window(Family.markets_new, 100, 50) == 2 * 128
    assert dedupe_window(Family.markets_resolved, 1000, 500) == 2 * 128  # no backfill
    assert (dedupe_window(Family.fills, 1000, 50) - dedupe_window(Family.fills, 100, 50)
            == HEADROOM * 900 * 50)
    assert STREAM_BUFFER == 4096 and LIFECYCLE_REPLAY == 128 and LIVE_PATHS[Family.tca] == 2


def test_capacity_derived_from_settings_unless_overridden() -> None:
    derived = load_settings(env={})
    assert derived.connector.dedupe_capacity is None
    assert dedupe_capacity(derived)[Family.tca] == dedupe_window(Family.tca, 100, 50)
    deeper = load_settings(env={"SEQCONN__SEQUENCE__BACKFILL_MAX_PAGES": "200"})
    assert dedupe_capacity(deeper)[Family.fills] == dedupe_window(Family.fills, 100, 200)
    fixed = load_settings(env={"SEQCONN__CONNECTOR__DEDUPE_CAPACITY": "5000"})
    assert set(dedupe_capacity(fixed).values()) == {5000}
    with pytest.raises(ConfigError, match="connector.dedupe_capacity"):
        load_settings(env={"SEQCONN__CONNECTOR__DEDUPE_CAPACITY": "0"})


def test_store_bounded_by_the_window_and_evicts_oldest_first() -> None:
    window = dedupe_window(Family.fills, 100, 50)
    store = DedupeStore(window)
    for i in range(window + 500):
        assert store.first_time(f"ex-{i}")
    assert len(store) == window and store.evictions == 500
    assert all(f"ex-{i}" not in store for i in range(500))  # the oldest went first
    assert "ex-500" in store and f"ex-{window + 499}" in store
    # a duplicate still inside the window is dropped ...
    assert not store.first_time("ex-500") and store.hits == 1
    # ... and one from before it is not remembered (the compacted topic keeps one copy)
    assert store.first_time("ex-0")


def test_seed_keeps_the_newest_and_counts_no_hits() -> None:
    store = DedupeStore(3)
    for identity in ("a", "b", "c", "a", "d"):  # oldest first, as rebuild reads them
        store.seed(identity)
    assert len(store) == 3 and store.hits == 0
    assert "b" not in store and all(i in store for i in ("c", "a", "d"))


def _fill(n: int) -> StreamFrame:
    data = dict(example_payload(Family.fills), venue_execution_id=f"kraken-{n}")
    return StreamFrame(recv_ns=n, epoch=1, raw=orjson.dumps({"channel": "fills", "data": data}))


def test_bridge_drops_a_duplicate_within_the_derived_window() -> None:
    settings = load_settings(env={})
    metrics = Metrics()
    bridge = Bridge(topics=TopicNames(), encoder=WireEncoder(SCHEMAS, IDS), metrics=metrics,
                    instance="test", max_frame_bytes=65536, carry_unknown=True,
                    dedupe_capacity=dedupe_capacity(settings))
    window = dedupe_window(Family.fills, 100, 50)
    assert bridge.dedupe[Family.markets_new].capacity == 2 * LIFECYCLE_REPLAY
    assert len(bridge.process(_fill(0))) == 1
    for n in range(1, window):
        bridge.process(_fill(n))
    store = bridge.dedupe[Family.fills]
    assert len(store) == window
    assert bridge.process(_fill(0)) == [], "the oldest identity is still inside the window"
    assert counted(metrics, "dedupe_hits", family="fills") == 1
    bridge.process(_fill(window))  # one more pushes the oldest out
    assert len(store) == window and "kraken-0" not in store
    assert bridge.process(_fill(1)) == [], "the next oldest is still remembered"


def _order(oid: str, ts: int) -> dict[str, Any]:
    return {"node_order_id": oid, "updated_unix_ns": ts}


def test_backfill_order_memory_is_bounded_by_the_window() -> None:
    bf = Backfiller(SequenceRest("http://127.0.0.1:9", "k"), BoundedHandoff(10, 10_000),
                    Metrics(), known=lambda family, row: False, page_size=10, max_pages=2)
    window = dedupe_window(Family.orders, 10, 2)
    for n in range(window + 10):
        bf.observe("orders", _order(f"o{n}", 1000 + n))
    assert len(bf._orders) == window  # noqa: SLF001 - the bound is on a private memory
    # forgotten orders fall back to the watermark rule; remembered ones are still checked
    assert not bf.is_stale("orders", _order("o0", 1))
    assert bf.is_stale("orders", _order(f"o{window + 9}", 1))


def test_resnapshot_forgets_expired_channels_named_by_gaps() -> None:
    """Gap frames name the channel, so the server decides how many there are: the
    per-channel not-before times stay bounded once they have passed."""

    async def scenario() -> Resnapshotter:
        handoff = BoundedHandoff(10_000, 10_000_000)
        resnap = Resnapshotter(SequenceRest("http://127.0.0.1:9", "k"), handoff, Metrics(),
                               min_interval_s=0.0)
        loop = asyncio.get_running_loop()
        for n in range(MAX_REMEMBERED_CHANNELS * 2):
            channel = f"fair_price:U{n}"  # no REST snapshot: a control record only
            resnap.request(channel, 1, "gap")
            await resnap._take(channel, loop)  # noqa: SLF001 - one take, without run()'s timing
            await handoff.get_batch(10)
        resnap.request("fair_price:pending", 1, "gap")
        return resnap

    resnap = asyncio.run(scenario())
    assert resnap.completed == MAX_REMEMBERED_CHANNELS * 2
    assert len(resnap._not_before) <= MAX_REMEMBERED_CHANNELS + 1  # noqa: SLF001 - as above
    assert resnap.pending == {"fair_price:pending"}


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_young_collections_run_on_a_timer_whatever_the_allocation_count() -> None:
    """With the tuned thresholds the hot path almost never triggers a collection;
    cycles (aiohttp leaves one per ops-port request) are freed by the timer."""
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        async def scenario() -> bool:
            collect_young_every(asyncio.get_running_loop(), 0.01)
            node = _Node()
            ref = weakref.ref(node)
            del node
            deadline = time.monotonic() + 10
            while ref() is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return ref() is None

        assert asyncio.run(scenario())
    finally:
        gc.set_threshold(*before)
