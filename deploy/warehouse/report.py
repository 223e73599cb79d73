"""Query the landed Parquet with DuckDB: the views a warehouse would define, and a report.

    python deploy/warehouse/report.py --warehouse /data/sequence [--symbol BTC-USD]

Views (``views()`` creates them on a DuckDB connection):

- ``fills``, ``book``, ``prices``: the landed tables, ``dt``/``hr`` from the paths;
- ``order_states``: every state of every order as it came through Kafka;
- ``orders``: the latest state per order, the row with the highest Kafka
  offset of its key. That is the upsert-kafka / compacted-topic reading of
  the orders topic (a key lives in one partition, so its offsets order its
  states), applied when reading because Parquet files are not updated.

Decimals stay DECIMAL(38,9)/(38,8) in DuckDB and reach Python as Decimal; VWAP
is divided in Python's Decimal, not in DuckDB (whose DECIMAL division gives a
DOUBLE). This file imports nothing from the connector: copy it freely.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

TABLES = ("fills", "orders", "book", "prices")
NANO = Decimal("1e-9")


def views(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    for table in TABLES:
        if not any((warehouse / table).glob("dt=*/hr=*/part-*")):
            raise FileNotFoundError(f"no Parquet files under {warehouse / table}")
    # view names are these constants and the path is the caller's own directory
    for view, table in (("fills", "fills"), ("book", "book"), ("prices", "prices"),
                        ("order_states", "orders")):
        glob = f"{warehouse / table}/dt=*/hr=*/part-*".replace("'", "''")
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM "  # noqa: S608
                    f"read_parquet('{glob}', hive_partitioning = true)")
    con.execute("""
        CREATE OR REPLACE VIEW orders AS
        SELECT * FROM order_states
        QUALIFY row_number() OVER (PARTITION BY node_order_id ORDER BY kafka_offset DESC) = 1
    """)


def rows(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return con.execute(sql, list(params)).fetchall()


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: int(rows(con, f"SELECT count(*) FROM {t}")[0][0])  # noqa: S608 - our views
            for t in (*TABLES, "order_states")}


def fills_by_symbol(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Fills, volume and VWAP per symbol, exact (Decimal) to 9 places."""
    out = []
    for symbol, n, volume, notional in rows(con, """
            SELECT symbol, count(*), sum(qty), sum(price * qty)
            FROM fills GROUP BY symbol ORDER BY symbol"""):
        vwap = (notional / volume).quantize(NANO) if volume else None
        out.append({"symbol": symbol, "fills": n, "volume": volume, "vwap": vwap})
    return out


def orders_by_status(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    return [(s, int(n)) for s, n in rows(con, """
        SELECT status, count(*) FROM orders GROUP BY status ORDER BY count(*) DESC, status""")]


def best_bid_ask(con: duckdb.DuckDBPyConnection, symbol: str,
                 bucket_s: int = 5) -> list[tuple[Any, ...]]:
    """The NBBO at the end of each ``bucket_s`` seconds of event time."""
    return rows(con, f"""
        SELECT time_bucket(INTERVAL {int(bucket_s)} SECOND, ts) AS t,
               arg_max(best_bid_px, ts), arg_max(best_ask_px, ts), count(*)
        FROM prices WHERE symbol = ? GROUP BY t ORDER BY t""", symbol)  # noqa: S608 - an int


def render(con: duckdb.DuckDBPyConnection, symbol: str) -> str:
    lines = ["fills by symbol (from Parquet; VWAP = sum(price*qty)/sum(qty), exact):",
             f"  {'symbol':<32} {'fills':>6} {'volume':>22} {'vwap':>22}"]
    for row in fills_by_symbol(con):
        lines.append(f"  {row['symbol'][:32]:<32} {row['fills']:>6} {row['volume']!s:>22} "
                     f"{row['vwap']!s:>22}")
    lines.append("latest order state (highest Kafka offset per node_order_id), by status:")
    lines += [f"  {status:<20} {n:>6}" for status, n in orders_by_status(con)]
    lines.append(f"best bid/ask for {symbol} (NBBO at the end of each 5 s of event time):")
    lines.append(f"  {'bucket (UTC)':<20} {'best bid':>18} {'best ask':>18} {'updates':>8}")
    for t, bid, ask, n in best_bid_ask(con, symbol):
        lines.append(f"  {t:%Y-%m-%d %H:%M:%S} {bid!s:>18} {ask!s:>18} {n:>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--symbol", default="BTC-USD")
    args = parser.parse_args(argv)
    con = duckdb.connect()
    views(con, args.warehouse.resolve())
    print(render(con, args.symbol))
    return 0


if __name__ == "__main__":
    sys.exit(main())
