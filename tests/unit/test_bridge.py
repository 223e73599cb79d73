"""The bridge stage without sockets: routing, keys, headers, dedupe, dead letters."""

from __future__ import annotations

import io
import random
from decimal import Decimal
from typing import Any

import fastavro
import orjson
import pytest

from connector.bridge import H_CHANNEL, H_SOURCE, H_STAGE, Bridge, OutRecord
from connector.dedupe.store import DedupeStore
from connector.handoff import LifecycleFrame, RestKind, RestRecord, StreamFrame
from connector.normalize.examples import example_payload
from connector.observe.metrics import Metrics
from connector.protocol.families import Family
from connector.serde.schemas import SchemaSet
from connector.serde.topics import TopicNames
from connector.serde.wire import WireEncoder
from tests.support.metrics import counted

SCHEMAS = SchemaSet.load()
IDS = {f: i + 1 for i, f in enumerate(Family)}


def make_bridge(max_frame_bytes: int = 65536, metrics: Metrics | None = None) -> Bridge:
    return Bridge(topics=TopicNames(), encoder=WireEncoder(SCHEMAS, IDS),
                  metrics=metrics if metrics is not None else Metrics(),
                  instance="test", max_frame_bytes=max_frame_bytes, carry_unknown=True,
                  dedupe_capacity=1000)


def ws(obj: Any) -> StreamFrame:
    raw = obj if isinstance(obj, (bytes, str)) else orjson.dumps(obj)
    return StreamFrame(raw=raw, recv_ns=1, epoch=1)


def decode(out: OutRecord) -> dict[str, Any]:
    assert out.family is not None
    assert out.value[0] == 0 and int.from_bytes(out.value[1:5], "big") == IDS[out.family]
    return fastavro.schemaless_reader(io.BytesIO(out.value[5:]), SCHEMAS[out.family].parsed)


CHANNELS = {
    Family.prices: "prices:BTC-USD", Family.book: "book:BTC-USDT", Family.orders: "orders",
    Family.fills: "fills", Family.tca: "tca", Family.funding: "funding:binance",
    Family.fair_price: "fair_price:BTC", Family.traces: "traces:dep-alpha",
}
KEYS = {
    Family.prices: b"BTC-USD", Family.book: b"BTC-USDT|binance",
    Family.orders: b"graph:graph_a1b2c3d4:btc_leg:1", Family.fills: b"kraken-8f3a2b1c",
    Family.funding: b"binance|BTC-USDT", Family.fair_price: b"BTC",
}


@pytest.mark.parametrize("family", list(CHANNELS))
def test_every_stream_family_routes_keys_and_headers(family: Family) -> None:
    [out] = make_bridge().process(ws({"channel": CHANNELS[family],
                                      "data": example_payload(family)}))
    assert out.topic == TopicNames().topic(family)
    if family in KEYS:
        assert out.key == KEYS[family]
    headers = dict(out.headers)
    assert headers[H_CHANNEL] == CHANNELS[family].encode()
    assert headers[H_SOURCE] == b"ws"
    decode(out)


def test_prices_exact_values() -> None:
    [out] = make_bridge().process(ws({"channel": "prices:BTC-USD",
                                      "data": example_payload(Family.prices)}))
    value = decode(out)
    assert value["best_bid_px"] == Decimal("76410.000000000")
    assert value["best_bid_px_1e9"] == 76410000000000
    assert value["best_bid_sz"] == Decimal("0.12000000")


def test_fills_deduped_by_venue_execution_id() -> None:
    bridge = make_bridge()
    frame = {"channel": "fills", "data": example_payload(Family.fills)}
    assert len(bridge.process(ws(frame))) == 1
    assert bridge.process(ws(frame)) == []
    other = dict(frame["data"], venue_execution_id="kraken-other")  # type: ignore[arg-type]
    assert len(bridge.process(ws({"channel": "fills", "data": other}))) == 1


def test_cached_routes_keep_sources_apart_and_share_dedupe() -> None:
    """What a channel's records share is cached per source and channel: the
    same channel from the socket and from REST keeps its own source header
    and counter, and both see one dedupe store."""
    metrics = Metrics()
    bridge = make_bridge(metrics=metrics)
    fill = example_payload(Family.fills)
    [live] = bridge.process(ws({"channel": "fills", "data": fill}))
    rest = RestRecord(kind=RestKind.backfill, family="fills", data=dict(fill),
                      channel="fills", recv_ns=2)
    assert bridge.process(rest) == []  # the same fill, seen live: deduped
    other = RestRecord(kind=RestKind.backfill, family="fills",
                       data=dict(fill, venue_execution_id="kraken-rest-only"),
                       channel="fills", recv_ns=3)
    [backfilled] = bridge.process(other)
    assert dict(live.headers)[H_SOURCE] == b"ws"
    assert dict(backfilled.headers)[H_SOURCE] == b"rest"
    assert dict(backfilled.headers)[H_CHANNEL] == b"fills"
    # one count per record, per source
    assert counted(metrics, "events_received", family="fills", source="ws") == 1
    assert counted(metrics, "events_received", family="fills", source="rest") == 2
    # the stores are looked up per record, not cached with the route: fresh
    # stores (a harness resetting between passes) see the fill as new
    bridge.dedupe = {f: DedupeStore(1000) for f in bridge.dedupe}
    assert len(bridge.process(ws({"channel": "fills", "data": fill}))) == 1
    # many channels: the cache is bounded and routes stay right after a clear
    for i in range(5000):
        [out] = bridge.process(ws({"channel": f"prices:S{i}",
                                   "data": dict(example_payload(Family.prices), symbol=f"S{i}")}))
        assert dict(out.headers)[H_CHANNEL] == f"prices:S{i}".encode()
        assert out.key == f"S{i}".encode()
    assert len(bridge._routes["ws"]) <= 4096  # noqa: SLF001 - the cache's bound, only inside


def test_lifecycle_replay_deduped() -> None:
    bridge = make_bridge()
    item = LifecycleFrame(stream="new_markets",
                          raw=orjson.dumps(example_payload(Family.markets_new)), recv_ns=1)
    [out] = bridge.process(item)
    assert out.topic == "sequence.markets.new"
    assert bridge.process(item) == []


def test_gap_becomes_control_record_and_callback() -> None:
    bridge = make_bridge()
    seen: list[tuple[str, int | None, int]] = []
    bridge.gap_listener = lambda ch, n, e: seen.append((ch, n, e))
    [out] = bridge.process(ws({"channel": "book:BTC-USD", "gap": {"dropped": 17}}))
    assert out.topic == "sequence.control" and out.key == b"book:BTC-USD"
    value = decode(out)
    assert value["kind"] == "gap" and value["dropped"] == 17 and value["epoch"] == 1
    assert seen == [("book:BTC-USD", 17, 1)]


def _garbage(rng: random.Random, i: int) -> bytes | str:
    good_fill = example_payload(Family.fills)
    kinds: list[bytes | str] = [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'"just a string"',
        orjson.dumps({"channel": "nonsense:xyz", "data": {}}),
        orjson.dumps({"channel": "prices:BTC-USD"}),
        orjson.dumps({"channel": "prices:BTC-USD", "data": [1]}),
        orjson.dumps({"channel": "fills", "data": {**good_fill, "qty_1e8": "lots"}}),
        orjson.dumps({"channel": "fills", "data": {**good_fill, "price_1e9": 1.5}}),
        orjson.dumps({"channel": "fills", "data": {k: v for k, v in good_fill.items()
                                                   if k != "venue_execution_id"}}),
        # beyond 64 bits: orjson turns it into a float, which must not pass
        orjson.dumps({"channel": "prices:BTC-USD", "data": {
            **example_payload(Family.prices), "best_bid_px_1e9": 1}}).replace(
            b'"best_bid_px_1e9":1', b'"best_bid_px_1e9":' + str(2**70).encode()),
        orjson.dumps({"channel": "book:BTC-USD", "data": {**example_payload(Family.book),
                                                          "bids": [["x", 1]]}}),
        b"{" + b" " * 70000 + b"}",  # oversized
        "",
    ]
    return kinds[i % len(kinds)] if i < len(kinds) else rng.choice(kinds)


def test_fuzz_bad_frames_go_to_dlq_and_good_frames_all_arrive() -> None:
    rng = random.Random(7)
    bridge = make_bridge()
    produced: list[OutRecord] = []
    good_ids = []
    for i in range(1200):
        produced += bridge.process(ws(_garbage(rng, i)))
        fill = dict(example_payload(Family.fills), venue_execution_id=f"ex-{i}")
        good_ids.append(f"ex-{i}".encode())
        produced += bridge.process(ws({"channel": "fills", "data": fill}))
    dlq = [o for o in produced if o.topic == "sequence.dlq"]
    fills = [o for o in produced if o.topic == "sequence.fills"]
    assert len(dlq) == 1200
    assert [o.key for o in fills] == good_ids
    stages = {dict(o.headers)[H_STAGE] for o in dlq}
    assert stages == {b"decode", b"route", b"normalize"}
    # the raw bytes are kept verbatim for replay
    assert dlq[0].value == b"{not json"
