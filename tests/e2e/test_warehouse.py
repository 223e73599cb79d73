"""A real engine reads our topics: Apache Flink lands them as Parquet, and the
Parquet equals the simulator's REST history exactly.

Connector + simulator + Apache Kafka + the dev registry, then the landing job
of deploy/warehouse/ (Flink SQL, avro-confluent by schema id, bounded at the
offsets it finds), then the Parquet read by pyarrow, not by the DuckDB of the
demo's report, and compared with the simulator's own record of every fill
and order, never with what the connector or Flink say about themselves.

The simulator keeps trading after the connector stops, so the comparison is
cut at the newest event in Kafka (read back by the independent reader), as
the chaos tests do. ``make warehouse-test`` runs this (about 1.5-2 minutes
here, the broker's start included); it is skipped where PyFlink is not
installed (``.[warehouse]``) or Flink cannot run (no java, or no jars and no mvn).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_settings
from connector.demo import SimulatorThread
from connector.protocol.families import Family
from connector.sandbox.simulator import SimulatorConfig
from tests.support.chaos import read_family, rest_truth
from tests.support.e2e import KEY, run_for

pq = pytest.importorskip("pyarrow.parquet", reason="pip install '.[warehouse]'")
pytest.importorskip("pyflink", reason="PyFlink: pip install '.[warehouse]'")
landing = pytest.importorskip("deploy.warehouse.landing")
warehouse_demo = pytest.importorskip("deploy.warehouse.demo")

pytestmark = pytest.mark.kafka_only(
    "Flink's bounded read stops at the latest offsets ListOffsets reports, and tansu reports "
    "them short for batches of several records: a run on tansu missed a book record")

TOPICS = ("prices:BTC-USD", "prices:ETH-USD", "book:BTC-USD", "orders", "fills")
RUN_SECONDS = 15.0
EPOCH = dt.datetime(1970, 1, 1)


def exact(unscaled: int | None, scale: int) -> Decimal | None:
    return None if unscaled is None else Decimal(unscaled).scaleb(-scale)


def micros(ns: int | None) -> dt.datetime | None:
    return None if ns is None else EPOCH + dt.timedelta(microseconds=ns // 1000)


def read_table(root: Path, table: str) -> tuple[list[dict[str, Any]], Any]:
    """Every row of a landed table (with dt/hr from the paths) and its Parquet schema."""
    files = sorted((root / table).glob("dt=*/hr=*/part-*"))
    assert files, f"no Parquet files for {table}"
    rows: list[dict[str, Any]] = []
    for path in files:
        partition = dict(part.split("=", 1) for part in path.parts[-3:-1])
        rows += [{**row, **partition} for row in pq.read_table(path).to_pylist()]
    return rows, pq.ParquetFile(files[0]).schema


@pytest.fixture(scope="module")
def landed(bootstrap: str, registry_url: str,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reason = landing.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    landing.fetch_jars()
    prefix = f"wh{uuid.uuid4().hex[:8]}"
    sim = SimulatorThread(SimulatorConfig(seed=7, rate=300.0, api_keys=(KEY,))).start()
    try:
        settings = load_settings(env={"SEQUENCE_API_KEY": KEY}, overrides={
            "sequence": {"base_url": sim.base_url, "stream_topics": TOPICS,
                         "lifecycle": (), "sse": ()},
            "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix, "partitions": 3},
            "schema_registry": {"url": registry_url},
            "connector": {"instance_id": "warehouse"},
            "observe": {"metrics_port": 0},
        })
        run_for(settings, RUN_SECONDS)
        truth = rest_truth(sim)
    finally:
        sim.stop()
    kafka = {f: read_family(bootstrap, prefix, registry_url, f)
             for f in (Family.fills, Family.orders, Family.book, Family.prices)}
    root = tmp_path_factory.mktemp("warehouse")
    warehouse_demo.run_landing(bootstrap, registry_url, root / "parquet", root / "logs",
                               topic_prefix=prefix)
    return {"truth": truth, "kafka": kafka, "root": root / "parquet"}


def test_every_fill_lands_exactly_once_with_exact_decimals_and_microseconds(
    landed: dict[str, Any]
) -> None:
    kafka = landed["kafka"][Family.fills]
    newest = max(r.value["ts_unix_ns"] for r in kafka)
    expected = {f["venue_execution_id"]: f for f in landed["truth"].fills
                if f["ts_unix_ns"] <= newest}
    rows, _ = read_table(landed["root"], "fills")
    ids = [r["venue_execution_id"] for r in rows]
    print(f"fills: expected (REST up to the newest in Kafka) {len(expected)}, "
          f"in Kafka {len(kafka)}, landed {len(rows)}, distinct {len(set(ids))}")
    assert len(ids) == len(set(ids)), "a fill landed twice"
    missing, unknown = set(expected) - set(ids), set(ids) - set(expected)
    assert not missing and not unknown, (sorted(missing)[:3], sorted(unknown)[:3])
    for row in rows:
        source = expected[row["venue_execution_id"]]
        assert row["price"] == exact(source["price_1e9"], 9)
        assert row["qty"] == exact(source["qty_1e8"], 8)
        assert row["fee"] == exact(source.get("fee_1e9"), 9)
        assert (row["price_1e9"], row["qty_1e8"], row["fee_1e9"]) == (
            source["price_1e9"], source["qty_1e8"], source.get("fee_1e9"))
        assert row["ts"] == micros(source["ts_unix_ns"])
        assert row["ts_unix_ns"] == source["ts_unix_ns"]
        assert (row["node_order_id"], row["symbol"], row["side"]) == (
            source["node_order_id"], source["symbol"], source["side"])
        # partitioned by the event's UTC hour, not the hour it was written
        assert (row["dt"], row["hr"]) == (f"{row['ts']:%Y-%m-%d}", f"{row['ts']:%H}")


def test_latest_order_states_equal_rest(landed: dict[str, Any]) -> None:
    """The latest state per order (highest Kafka offset of its key, the upsert
    reading of the changelog) equals REST for every order REST last changed
    before the newest state in Kafka; orders REST changed after it hold an
    earlier state of the same order."""
    newest = max(r.value["updated_unix_ns"] for r in landed["kafka"][Family.orders])
    orders = landed["truth"].orders
    rows, _ = read_table(landed["root"], "orders")
    assert len(rows) == len(landed["kafka"][Family.orders]), "one row per order state in Kafka"
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["kafka_offset"]):
        latest[row["node_order_id"]] = row
    created = {k for k, o in orders.items()
               if (o.get("created_unix_ns") or o["updated_unix_ns"]) <= newest}
    settled = {k for k in created if orders[k]["updated_unix_ns"] <= newest}
    print(f"orders: REST created up to the newest in Kafka {len(created)} (of them settled "
          f"{len(settled)}), latest states landed {len(latest)}, states landed {len(rows)}")
    assert set(latest) == created
    for order_id, row in latest.items():
        source = orders[order_id]
        assert (row["symbol"], row["side"], row["qty"], row["created_at"]) == (
            source["symbol"], source["side"], exact(source["qty_1e8"], 8),
            micros(source.get("created_unix_ns")))
        if order_id in settled:
            assert (row["status"], row["filled_qty"], row["updated_at"],
                    row["updated_unix_ns"]) == (
                source["status"], exact(source.get("filled_qty_1e8"), 8),
                micros(source["updated_unix_ns"]), source["updated_unix_ns"]), order_id
        else:
            assert row["updated_unix_ns"] < source["updated_unix_ns"], order_id


def test_book_and_prices_land_every_record(landed: dict[str, Any]) -> None:
    for family, table in ((Family.book, "book"), (Family.prices, "prices")):
        rows, _ = read_table(landed["root"], table)
        kafka = landed["kafka"][family]
        assert sorted((r["kafka_partition"], r["kafka_offset"]) for r in rows) == sorted(
            (r.raw.partition, r.raw.offset) for r in kafka), table
        by_position = {(r.raw.partition, r.raw.offset): r.value for r in kafka}
        for row in rows:
            value = by_position[(row["kafka_partition"], row["kafka_offset"])]
            assert row["ts"] == micros(value["ts_ns"])
            if table == "book":
                # levels are decimal(38,18) in Avro and stay exact
                assert [(lv["px"], lv["sz"]) for lv in row["bids"]] == [
                    (lv["px"], lv["sz"]) for lv in value["bids"]]
            else:
                assert (row["best_bid_px"], row["best_ask_px"]) == (
                    value["best_bid_px"], value["best_ask_px"])


def test_no_value_went_through_a_float(landed: dict[str, Any]) -> None:
    """Parquet types: DECIMAL(38, s) on fixed_len_byte_array for every decimal,
    INT64 TIMESTAMP(MICROS) for times; the only DOUBLE is spread_bps, which is a
    double in the Avro schema itself."""
    wanted = {
        "fills": {"price": 9, "qty": 8, "fee": 9},
        "orders": {"qty": 8, "filled_qty": 8},
        "prices": {"best_bid_px": 9, "best_bid_sz": 8, "best_ask_px": 9, "best_ask_sz": 8},
        "book": {"bids.list.element.px": 18, "bids.list.element.sz": 18,
                 "asks.list.element.px": 18, "asks.list.element.sz": 18},
    }
    times = {"fills": ("ts",), "orders": ("created_at", "updated_at"), "prices": ("ts",),
             "book": ("ts",)}
    for table, decimals in wanted.items():
        _, schema = read_table(landed["root"], table)
        columns = {schema.column(i).path: schema.column(i) for i in range(len(schema))}
        for name, scale in decimals.items():
            column = columns[name]
            assert column.physical_type == "FIXED_LEN_BYTE_ARRAY", (table, name)
            assert json.loads(column.logical_type.to_json()) == {
                "Type": "Decimal", "precision": 38, "scale": scale}, (table, name)
        for name in times[table]:
            column = columns[name]
            logical = json.loads(column.logical_type.to_json())
            assert (column.physical_type, logical["Type"], logical["timeUnit"]) == (
                "INT64", "Timestamp", "microseconds"), (table, name)
        floats = [p for p, c in columns.items() if c.physical_type in ("DOUBLE", "FLOAT")]
        assert floats == (["spread_bps"] if table == "prices" else []), (table, floats)
