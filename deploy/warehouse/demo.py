"""``make warehouse-demo``: Sequence -> connector -> Apache Kafka -> Flink -> Parquet -> DuckDB.

Starts Apache Kafka (connector/sandbox/kafka.py), the development registry
and the Sequence simulator (connector.demo's sandbox), runs the connector for
``--duration`` seconds, then the Flink landing job (landing.py, bounded at the
offsets it finds), prints a DuckDB report over the Parquet (report.py) and
writes ``warehouse-summary.json``, comparing the landed fills and orders with
the simulator's own REST history:

    {"engine": "flink", "tables": {"fills": {"rows", "expected", "exact"},
     "orders": {"rows", "expected", "exact", "states"}, "book": {"rows"},
     "prices": {"rows"}}, "seconds": {...}}

The simulator keeps generating after the connector stops, so REST holds a
little more than Kafka. The comparison is cut at the newest event the
connector wrote (read back from Kafka, not from the Parquet): every REST fill
up to it must be landed once and equal; every REST order created up to it
must have a latest state, equal to REST's where REST's last change is up to
it, and an earlier state (same order, older ``updated_at``) where REST moved on.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import orjson
from confluent_kafka.schema_registry import SchemaRegistryClient

from connector.demo import SimulatorThread, _run_connector, demo_settings, sandbox
from connector.protocol.families import Family
from connector.sandbox import kafka as apache_kafka
from connector.sink.reader import AvroValueDecoder, read_topic
from deploy.warehouse import landing, report

EPOCH = dt.datetime(1970, 1, 1)


@dataclass
class Truth:
    """The simulator's REST history, and how far the connector got into it."""

    fills: list[dict[str, Any]]
    orders: dict[str, dict[str, Any]]
    fills_cutoff_ns: int  # newest fill's ts_unix_ns in Kafka
    orders_cutoff_ns: int  # newest order state's updated_unix_ns in Kafka


def rest_history(sim: SimulatorThread) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    async def read() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        trading = sim.sim.state.feed.trading
        return [dict(f) for f in trading.fills], {k: dict(v) for k, v in trading.orders.items()}

    return sim.call(read())  # on the simulator's own loop, where its state is consistent


def newest_in_kafka(conf: dict[str, Any], decoder: AvroValueDecoder, topic: str,
                    field: str) -> int:
    newest = -1
    for record in read_topic(conf, topic, timeout_s=30):
        if record.value is not None:
            newest = max(newest, decoder.decode(topic, record.value)[field])
    return newest


def micros(ns: int | None) -> dt.datetime | None:
    """A TIMESTAMP(6) as DuckDB returns it (naive UTC), from epoch nanoseconds."""
    return None if ns is None else EPOCH + dt.timedelta(microseconds=ns // 1000)


def scaled(unscaled: int | None, scale: int) -> Decimal | None:
    return None if unscaled is None else Decimal(unscaled).scaleb(-scale)


def landed(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def compare_fills(con: duckdb.DuckDBPyConnection, truth: Truth) -> dict[str, Any]:
    expected = {f["venue_execution_id"]: f for f in truth.fills
                if f["ts_unix_ns"] <= truth.fills_cutoff_ns}
    rows = landed(con, "SELECT * FROM fills")
    ids = [r["venue_execution_id"] for r in rows]
    exact = len(ids) == len(set(ids)) and set(ids) == set(expected)
    for row in rows:
        source = expected.get(row["venue_execution_id"])
        exact = exact and source is not None and (
            row["node_order_id"], row["symbol"], row["side"], row["price"], row["qty"],
            row["fee"], row["ts"], row["ts_unix_ns"],
        ) == (
            source["node_order_id"], source["symbol"], source["side"],
            scaled(source["price_1e9"], 9), scaled(source["qty_1e8"], 8),
            scaled(source.get("fee_1e9"), 9), micros(source["ts_unix_ns"]),
            source["ts_unix_ns"],
        )
    return {"rows": len(rows), "expected": len(expected), "exact": exact}


def compare_orders(con: duckdb.DuckDBPyConnection, truth: Truth) -> dict[str, Any]:
    cutoff = truth.orders_cutoff_ns
    expected = {k: o for k, o in truth.orders.items()
                if (o.get("created_unix_ns") or o["updated_unix_ns"]) <= cutoff}
    latest = {r["node_order_id"]: r for r in landed(con, "SELECT * FROM orders")}
    exact = set(latest) == set(expected)
    for order_id, source in expected.items():
        row = latest.get(order_id)
        if row is None:
            exact = False
            continue
        fixed = (row["symbol"], row["side"], row["qty"], row["created_at"]) == (
            source["symbol"], source["side"], scaled(source["qty_1e8"], 8),
            micros(source.get("created_unix_ns")))
        if source["updated_unix_ns"] <= cutoff:
            state = (row["status"], row["filled_qty"], row["updated_at"]) == (
                source["status"], scaled(source.get("filled_qty_1e8"), 8),
                micros(source["updated_unix_ns"]))
        else:  # REST moved on after the connector stopped: an earlier state
            state = row["updated_unix_ns"] < source["updated_unix_ns"]
        exact = exact and fixed and state
    states = int(con.execute("SELECT count(*) FROM order_states").fetchall()[0][0])
    return {"rows": len(latest), "expected": len(expected), "exact": exact, "states": states}


def run_landing(bootstrap: str, registry_url: str, warehouse: Path, log_dir: Path,
                topic_prefix: str = "sequence") -> None:
    """landing.py in its own process (its JVM ends with it), bounded at the latest offsets."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "landing.out", "wb") as out:
        done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
            [sys.executable, str(Path(landing.__file__)), "--bootstrap", bootstrap,
             "--registry", registry_url, "--warehouse", str(warehouse), "--until-latest",
             "--topic-prefix", topic_prefix,
             "--checkpoint-interval", "5 s", "--log-dir", str(log_dir)],
            stdout=out, stderr=subprocess.STDOUT, check=False, timeout=900)
    if done.returncode != 0:
        tail = (log_dir / "landing.out").read_text(errors="replace")[-3000:]
        raise landing.LandingError(f"the landing job failed ({done.returncode}):\n{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--summary-json", type=Path, default=Path("warehouse-summary.json"))
    parser.add_argument("--warehouse", type=Path, help="where the Parquet goes (default: a new "
                        "temporary directory, kept for your own queries)")
    parser.add_argument("--symbol", default="BTC-USD")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=300.0)
    args = parser.parse_args(argv)

    reason = apache_kafka.unavailable_reason() or landing.unavailable_reason()
    if reason is not None:
        print(f"warehouse-demo needs Apache Kafka and Apache Flink, which cannot run here: "
              f"{reason}", file=sys.stderr)
        return 2
    warehouse = (args.warehouse or Path(tempfile.mkdtemp(prefix="sequence-warehouse-"))).resolve()
    seconds: dict[str, float] = {}
    started = time.monotonic()
    print("fetching jars (once per user: Kafka and Flink from Maven Central) ...", file=sys.stderr)
    apache_kafka.kafka_libs()
    landing.fetch_jars()
    seconds["fetch"] = time.monotonic() - started
    with sandbox(seed=args.seed, rate=args.rate, broker_kind="kafka") as box:
        settings = demo_settings(box)
        print(f"Apache Kafka {box.broker.bootstrap}  registry {box.registry.url}  "
              f"simulator {box.simulator.base_url}", file=sys.stderr)
        mark = time.monotonic()
        connector = asyncio.run(_run_connector(settings, args.duration))
        seconds["connector"] = time.monotonic() - mark
        fills, orders = rest_history(box.simulator)
        box.simulator.stop()  # the rest of the run needs no new events
        # the sandbox is plaintext and open: the bare addresses are the whole config
        conf = {"bootstrap.servers": box.broker.bootstrap}
        decoder = AvroValueDecoder(SchemaRegistryClient({"url": box.registry.url}))
        topics = connector.topics
        truth = Truth(fills, orders,
                      newest_in_kafka(conf, decoder, topics.topic(Family.fills), "ts_unix_ns"),
                      newest_in_kafka(conf, decoder, topics.topic(Family.orders),
                                      "updated_unix_ns"))
        print(f"landing sequence.fills/orders/book/prices with Apache Flink into {warehouse} ...",
              file=sys.stderr)
        mark = time.monotonic()
        run_landing(box.broker.bootstrap, box.registry.url, warehouse,
                    warehouse.parent / f"{warehouse.name}-logs")
        seconds["landing"] = time.monotonic() - mark
    con = duckdb.connect()
    report.views(con, warehouse)
    print()
    print(report.render(con, args.symbol))
    counts = report.counts(con)
    tables: dict[str, dict[str, Any]] = {
        "fills": compare_fills(con, truth),
        "orders": compare_orders(con, truth),
        "book": {"rows": counts["book"]},
        "prices": {"rows": counts["prices"]},
    }
    summary = {
        "engine": "flink",
        "tables": tables,
        "warehouse": str(warehouse),
        "seconds": {k: round(v, 1) for k, v in
                    {**seconds, "total": time.monotonic() - started}.items()},
    }
    args.summary_json.write_text(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    print(f"\n{orjson.dumps(tables).decode()}")
    print(f"summary written to {args.summary_json}; Parquet kept in {warehouse}")
    exact = all(tables[t]["exact"] for t in ("fills", "orders"))
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
