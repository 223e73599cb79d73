"""The end-to-end run: connector + simulator + a broker + a registry, read back independently.

Every event in the simulator's ledger that the connector accepted must be in
Kafka: exactly once for fills, TCA and lifecycle events, and (no faults
here) exactly once for everything else too, with the source's exact values
and per-key order kept.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from connector.app import Connector
from connector.config import Settings, load_settings
from connector.demo import SimulatorThread
from connector.protocol.channels import family_of_channel
from connector.protocol.families import Family
from connector.sandbox.simulator import SimulatorConfig
from connector.serde.topics import TopicNames
from tests.support.faithful import assert_faithful, parse_exact
from tests.support.readback import DecodedRecord, read_all, read_decoded

KEY = "seq_test_key"
POLY = "71166707665253014908308475311609108419118036985903834861277070930664191157865"
TOPICS = (
    "prices:BTC-USD", "prices:ETH-USD", f"prices:polymarket:{POLY}",
    "prices:KXBTCZ-26DEC31-T99000:YES", "book:BTC-USD", f"book:polymarket:{POLY}",
    "orders", "fills", "tca", "funding", "fair_price", "traces:dep_sim_alpha",
)  # fmt: skip
RUN_SECONDS = 20.0

KEY_FIELDS: dict[Family, tuple[str, ...]] = {
    Family.prices: ("symbol",), Family.book: ("symbol", "venue"),
    Family.orders: ("node_order_id",), Family.fills: ("venue_execution_id",),
    Family.tca: ("node_order_id",), Family.traces: ("deployment_id",),
    Family.funding: ("venue", "symbol"), Family.fair_price: ("underlying",),
    Family.markets_new: ("venue", "event_id"), Family.markets_resolved: ("venue", "event_id"),
    Family.alerts: ("rule_id",),
}  # fmt: skip


def key_of(family: Family, data: dict[str, Any]) -> str:
    return "|".join(str(data[f]) for f in KEY_FIELDS[family])


def e2e_settings(prefix: str, sim_url: str, bootstrap: str, registry_url: str,
                 extra_topics: tuple[str, ...] = ()) -> Settings:
    return load_settings(env={"SEQUENCE_API_KEY": KEY}, overrides={
        "sequence": {"base_url": sim_url, "stream_topics": TOPICS + extra_topics,
                     "lifecycle": ("new_markets", "market_resolved"), "sse": ("alerts", "tca")},
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix, "partitions": 3},
        "schema_registry": {"url": registry_url},
        "connector": {"instance_id": "e2e"},
        "observe": {"metrics_port": 0},
    })


Action = Callable[[SimulatorThread], None]


def sim_call(sim: SimulatorThread, coro_or_none: Any) -> Any:
    """Run a simulator coroutine on the simulator's own loop, from any thread."""
    if asyncio.iscoroutine(coro_or_none):
        return sim.call(coro_or_none)
    return coro_or_none


def run_for(settings: Settings, seconds: float, sim: SimulatorThread | None = None,
            during: Action | None = None) -> Connector:
    async def main() -> Connector:
        connector = Connector(settings)
        task = asyncio.create_task(connector.run())
        await connector.started.wait()
        if during is not None and sim is not None:
            # faults apply to open sockets: wait until the stream is subscribed
            stream = next(r for r in connector.readers if r.name == "stream")
            await asyncio.wait_for(stream.connected.wait(), 30)  # type: ignore[union-attr]
            await asyncio.to_thread(during, sim)
        await asyncio.wait([task], timeout=seconds)
        connector.stop()
        await task
        return connector

    return asyncio.run(main())


def accepted_frames(sim: SimulatorThread, path: str, handed_on: int) -> list[Any]:
    """The frames of ``path`` the connector accepted: the ledger's prefix it read.

    Garbage frames (fault injection) stay in, as ``{"_garbage": kind}``.
    """
    conns = sim.sim.ledger.connections(path)
    assert len(conns) == 1, f"expected one connection to {path}, got {len(conns)}"
    frames = [_parse_ledger(f) for f in conns[0].raw_frames]
    frames = [f for f in frames if "subscribed" not in f]  # the ack is not data
    assert len(frames) >= handed_on
    return frames[:handed_on]


def _parse_ledger(frame: bytes | dict[str, Any]) -> Any:
    if isinstance(frame, dict):
        return frame
    try:
        return parse_exact(frame)
    except ValueError:
        return {"_unparsable": frame[:100]}


def run_e2e(bootstrap: str, registry_url: str, extra_topics: tuple[str, ...] = (),
            during: Action | None = None, seconds: float = RUN_SECONDS) -> dict[str, Any]:
    prefix = f"e2e{uuid.uuid4().hex[:8]}"
    sim = SimulatorThread(SimulatorConfig(seed=42, rate=400.0, api_keys=(KEY,),
                                          lifecycle_interval=0.5)).start()
    try:
        settings = e2e_settings(prefix, sim.base_url, bootstrap, registry_url, extra_topics)
        connector = run_for(settings, seconds, sim, during)
        handed = {r.name: r.frames for r in connector.readers}
        rest_fills = sim_call(sim, _history(sim))
        ledger = {
            "stream": accepted_frames(sim, "/v1/stream", handed["stream"]),
            "new_markets": accepted_frames(sim, "/v1/ws/new_markets", handed["new_markets"]),
            "market_resolved": accepted_frames(sim, "/v1/ws/market_resolved",
                                               handed["market_resolved"]),
            "alerts": accepted_frames(sim, "/v1/alerts/stream", handed["alerts"]),
            "tca": accepted_frames(sim, "/v1/tca/stream", handed["tca"]),
        }
    finally:
        sim.stop()
    topics = TopicNames(prefix=prefix)
    kafka = {f: read_decoded(bootstrap, topics.topic(f), registry_url)
             for f in Family if f is not Family.control}
    dlq = read_all(bootstrap, topics.dlq)
    control = read_decoded(bootstrap, topics.topic(Family.control), registry_url)
    return {"ledger": ledger, "kafka": kafka, "dlq": dlq, "control": control,
            "connector": connector, "rest_fills": rest_fills}


async def _history(sim: SimulatorThread) -> list[dict[str, Any]]:
    """Every fill the simulator's REST /v1/fills knows (read on its own loop)."""
    return [dict(f) for f in sim.sim.state.feed.trading.fills]


def is_rest(record: DecodedRecord) -> bool:
    return record.raw.headers.get("sequence.source") == b"rest"


def check_fills_complete(e2e_run: dict[str, Any]) -> None:
    """Against the simulator's REST history: every fill up to the newest one in
    Kafka is in Kafka exactly once (stream, backfill, duplicates, all merged)."""
    records = e2e_run["kafka"][Family.fills]
    keys = [r.raw.key.decode() for r in records]
    assert len(keys) == len(set(keys)), "duplicate fills in Kafka"
    newest = max(r.value["ts_unix_ns"] for r in records)
    expected = {f["venue_execution_id"] for f in e2e_run["rest_fills"]
                if f["ts_unix_ns"] <= newest}
    missing = expected - set(keys)
    assert not missing, f"{len(missing)} fills missing, e.g. {sorted(missing)[:3]}"
    by_id = {f["venue_execution_id"]: f for f in e2e_run["rest_fills"]}
    for record in records:
        source = by_id.get(record.raw.key.decode())
        if source is not None:
            assert_faithful(source, record.value)


def expected_by_family(ledger: dict[str, list[Any]]) -> dict[Family, list[dict[str, Any]]]:
    out: dict[Family, list[dict[str, Any]]] = defaultdict(list)
    for frame in ledger["stream"]:
        assert "gap" not in frame, "no gaps expected at this rate"
        if "_garbage" in frame or "_unparsable" in frame:
            continue
        out[family_of_channel(frame["channel"])].append(frame["data"])
    out[Family.markets_new] = list(ledger["new_markets"])
    out[Family.markets_resolved] = list(ledger["market_resolved"])
    out[Family.alerts] = [f["data"] for f in ledger["alerts"] if f["event"] == "alert"]
    out[Family.tca] += [f["data"] for f in ledger["tca"] if f["event"] == "tca_report"]
    return out


def by_key(family: Family, items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        grouped[key_of(family, item)].append(item)
    return grouped


def check_every_family_arrived(e2e_run: dict[str, Any]) -> None:
    expected = expected_by_family(e2e_run["ledger"])
    for family in Family:
        if family is Family.control:
            continue
        assert expected[family], f"the simulator sent no {family} in {RUN_SECONDS}s"
        assert e2e_run["kafka"][family], f"no {family} records in Kafka"
    assert e2e_run["dlq"] == [], "good input must not be dead-lettered"


def check_family_exact(
    e2e_run: dict[str, Any], family: Family
) -> None:
    source = expected_by_family(e2e_run["ledger"])[family]
    records: list[DecodedRecord] = e2e_run["kafka"][family]
    if family in (Family.fills, Family.tca, Family.markets_new, Family.markets_resolved):
        # effectively once: one record per identity, whatever the sources repeated
        first: dict[str, dict[str, Any]] = {}
        for item in source:
            first.setdefault(key_of(family, item), item)
        keys = [r.raw.key.decode() for r in records if r.raw.key is not None]
        assert len(keys) == len(set(keys)), f"{family}: duplicates in Kafka"
        # REST backfill may add history from before the stream started
        assert set(first) <= set(keys), f"{family}: missing {set(first) - set(keys)}"
        assert all(is_rest(r) for r in records if r.raw.key.decode() not in first)
        for record in records:
            assert record.raw.key is not None
            if record.raw.key.decode() in first:
                assert_faithful(first[record.raw.key.decode()], record.value)
        return
    want = by_key(family, source)
    got: dict[str, list[DecodedRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.raw.partition, r.raw.offset)):
        assert record.raw.key is not None
        if is_rest(record):
            continue  # re-snapshots and backfill: checked against REST, not the stream
        got[record.raw.key.decode()].append(record)
    assert set(got) == set(want)
    for key, items in want.items():
        assert len(got[key]) == len(items), f"{family} {key}: {len(got[key])} != {len(items)}"
        for record, item in zip(got[key], items, strict=True):
            assert_faithful(item, record.value)


def check_headers(e2e_run: dict[str, Any]) -> None:
    [record, *_] = e2e_run["kafka"][Family.prices]
    headers = record.raw.headers
    assert headers["sequence.channel"].startswith(b"prices:")
    assert headers["sequence.source"] == b"ws"
    assert headers["connector.instance"] == b"e2e"
    assert int(headers["sequence.received_at_ns"]) > 1_700_000_000_000_000_000
