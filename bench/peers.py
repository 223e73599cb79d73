"""What others would write instead of the connector, measured on the same feed.

naive     websockets + json + kafka-python: one ``send()`` per message with a
          JSON value, ``flush()`` at the end. What a data engineer writes in
          an afternoon; kafka-python's defaults (acks=1, no compression).
standard  websockets + orjson + fastavro + confluent-kafka: hand-written
          per-family mapping to the same .avsc schemas in avro/ (exact
          ``Decimal`` objects for fixed-point and book values), Confluent
          wire format with registered schema ids, ``produce()`` + ``poll(0)``
          per message with the connector's delivery settings (idempotent,
          acks=all, lz4, linger.ms=5) so the comparison is code, not config.

Neither dedupes, dead-letters, adds headers, handles gaps or reconnects:
they are the floor a replacement must beat, not equivalents.

Each peer's figure is events / (first frame received -> last record acked).
Like the connector, each warms its producer with one record to
``<prefix>.bench-warmup`` before it subscribes (see connector_worker).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import struct
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import orjson
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from websockets.asyncio.client import connect

from bench.connector_worker import warmup_topic
from bench.procs import Result, cpu_s

AVRO_DIR = Path(__file__).resolve().parents[1] / "avro"
Row = dict[str, Any]


def ws_endpoint(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/v1/stream"


async def _subscribe(ws: Any, topics: list[str]) -> None:
    await ws.send(json.dumps({"subscribe": topics}))
    ack = json.loads(await ws.recv())
    if "subscribed" not in ack:
        raise RuntimeError(f"no subscribe ack: {ack}")


def _result(events: int, first_ns: int, end_ns: int, cpu0: float) -> Result:
    seconds = (end_ns - first_ns) / 1e9
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds,
            "cpu_s": cpu_s() - cpu0}


# -- naive ---------------------------------------------------------------------------
def run_naive(*, base_url: str, topics: list[str], api_key: str, bootstrap: str,
              prefix: str, events: int) -> Result:
    from kafka import KafkaProducer  # kafka-python

    logging.basicConfig(level=logging.WARNING)
    producer = KafkaProducer(bootstrap_servers=bootstrap,
                             value_serializer=lambda v: json.dumps(v).encode())
    producer.send(warmup_topic(prefix), "warm-up")
    producer.flush()

    async def main() -> Result:
        async with connect(ws_endpoint(base_url),
                           additional_headers={"Authorization": f"Bearer {api_key}"}) as ws:
            await _subscribe(ws, topics)
            cpu0 = cpu_s()
            first_ns = 0
            n = 0
            async for raw in ws:
                if not first_ns:
                    first_ns = time.time_ns()
                msg = json.loads(raw)
                producer.send(f"{prefix}.{msg['channel'].split(':')[0]}", msg["data"])
                n += 1
                if n == events:
                    break
            producer.flush()
            return _result(events, first_ns, time.time_ns(), cpu0)

    try:
        return asyncio.run(main())
    finally:
        producer.close()


# -- standard --------------------------------------------------------------------------
def _d(scale: int) -> Callable[[int | None], Decimal | None]:
    def convert(raw: int | None) -> Decimal | None:
        return None if raw is None else Decimal(raw).scaleb(-scale)
    return convert


d9, d8 = _d(9), _d(8)


def _us(ns: int | None) -> int | None:
    return None if ns is None else ns // 1000


def _levels(levels: list[list[float]]) -> list[Row]:
    return [{"px": Decimal(repr(px)), "sz": Decimal(repr(sz))} for px, sz in levels]


def _price(d: Row) -> tuple[str, Row]:
    return d["symbol"], {
        "symbol": d["symbol"], "instrument_type": d.get("instrument_type"),
        "best_bid_px": d9(d.get("best_bid_px_1e9")), "best_bid_px_1e9": d.get("best_bid_px_1e9"),
        "best_bid_sz": d8(d.get("best_bid_sz_1e8")), "best_bid_sz_1e8": d.get("best_bid_sz_1e8"),
        "best_bid_venue": d.get("best_bid_venue"),
        "best_ask_px": d9(d.get("best_ask_px_1e9")), "best_ask_px_1e9": d.get("best_ask_px_1e9"),
        "best_ask_sz": d8(d.get("best_ask_sz_1e8")), "best_ask_sz_1e8": d.get("best_ask_sz_1e8"),
        "best_ask_venue": d.get("best_ask_venue"), "spread_bps": d.get("spread_bps"),
        "ts_ns": d["ts_ns"], "ts": d["ts_ns"] // 1000, "extras": {},
    }


def _book(d: Row) -> tuple[str, Row]:
    return f"{d['symbol']}|{d['venue']}", {
        "symbol": d["symbol"], "venue": d["venue"], "instrument_type": d.get("instrument_type"),
        "bids": _levels(d["bids"]), "asks": _levels(d["asks"]),
        "ts_ns": d["ts_ns"], "ts": d["ts_ns"] // 1000, "is_snapshot": d["is_snapshot"],
        "checksum": d.get("checksum"), "extras": {},
    }


def _funding(d: Row) -> tuple[str, Row]:
    return f"{d['venue']}|{d['symbol']}", {
        "venue": d["venue"], "symbol": d["symbol"],
        "rate_bps_per_hour": float(d["rate_bps_per_hour"]),
        "predicted_rate_bps_per_hour": d.get("predicted_rate_bps_per_hour"),
        "mark_price": d9(d.get("mark_price_1e9")), "mark_price_1e9": d.get("mark_price_1e9"),
        "open_interest": d8(d.get("open_interest_1e8")),
        "open_interest_1e8": d.get("open_interest_1e8"),
        "next_settlement_ns": d.get("next_settlement_ns"),
        "next_settlement_at": _us(d.get("next_settlement_ns")),
        "ts_ns": d.get("ts_ns"), "ts": _us(d.get("ts_ns")),
        "snapshot_age_ms": d.get("snapshot_age_ms"), "extras": {},
    }


def _fair_price(d: Row) -> tuple[str, Row]:
    return d["underlying"], {
        "underlying": d["underlying"],
        "fair_mid": d9(d["fair_mid_1e9"]), "fair_mid_1e9": d["fair_mid_1e9"],
        "spot_mid": d9(d.get("spot_mid_1e9")), "spot_mid_1e9": d.get("spot_mid_1e9"),
        "perp_mid": d9(d.get("perp_mid_1e9")), "perp_mid_1e9": d.get("perp_mid_1e9"),
        "basis_bps": d.get("basis_bps"), "confidence": d.get("confidence"),
        "contributors": [
            {"venue": c["venue"], "instrument_type": c.get("instrument_type"),
             "mid": d9(c["mid_1e9"]), "mid_1e9": c["mid_1e9"], "weight": c.get("weight"),
             "staleness_ms": c.get("staleness_ms")}
            for c in d.get("contributors") or ()],
        "cc_ts_ns": d["cc_ts_ns"], "cc_ts": d["cc_ts_ns"] // 1000, "extras": {},
    }


def _order(d: Row) -> tuple[str, Row]:
    return str(d["node_order_id"]), {
        "node_order_id": str(d["node_order_id"]), "client_id": d.get("client_id"),
        "client_order_id": d.get("client_order_id"), "symbol": d["symbol"], "side": d["side"],
        "qty": d8(d["qty_1e8"]), "qty_1e8": d["qty_1e8"],
        "filled_qty": d8(d.get("filled_qty_1e8")), "filled_qty_1e8": d.get("filled_qty_1e8"),
        "status": d["status"],
        "created_unix_ns": d.get("created_unix_ns"), "created_at": _us(d.get("created_unix_ns")),
        "updated_unix_ns": d["updated_unix_ns"], "updated_at": d["updated_unix_ns"] // 1000,
        "extras": {},
    }


def _fill(d: Row) -> tuple[str, Row]:
    return str(d["venue_execution_id"]), {
        "node_order_id": str(d["node_order_id"]),
        "venue_execution_id": str(d["venue_execution_id"]), "venue": d.get("venue"),
        "symbol": d["symbol"], "side": d["side"],
        "qty": d8(d["qty_1e8"]), "qty_1e8": d["qty_1e8"],
        "price": d9(d["price_1e9"]), "price_1e9": d["price_1e9"],
        "fee": d9(d.get("fee_1e9")), "fee_1e9": d.get("fee_1e9"), "edge_id": d.get("edge_id"),
        "ts_unix_ns": d["ts_unix_ns"], "ts": d["ts_unix_ns"] // 1000, "extras": {},
    }


_TCA_BPS = ("fee_cost_bps", "expected_fee_bps", "fee_prediction_error_bps", "spread_cost_bps",
            "market_impact_bps", "implementation_shortfall_bps", "savings_vs_benchmark_bps",
            "achieved_implied_prob_bps", "arrival_implied_prob_bps", "probability_slippage_bps")


def _tca(d: Row) -> tuple[str, Row]:
    row: Row = {
        "node_order_id": str(d["node_order_id"]), "client_id": d.get("client_id"),
        "symbol": d["symbol"], "side": d["side"],
        "achieved_vwap": d9(d["achieved_vwap_1e9"]), "achieved_vwap_1e9": d["achieved_vwap_1e9"],
        "expected_fill": d9(d.get("expected_fill_1e9")),
        "expected_fill_1e9": d.get("expected_fill_1e9"),
        "total_fees": d9(d.get("total_fees_1e9")), "total_fees_1e9": d.get("total_fees_1e9"),
        "is_prediction": bool(d.get("is_prediction")),
        "execution_time_ms": d.get("execution_time_ms"), "num_fills": d.get("num_fills"),
        "extras": {},
    }
    for name in _TCA_BPS:
        value = d.get(name)
        row[name] = None if value is None else float(value)
    return row["node_order_id"], row


MAPPERS: dict[str, Callable[[Row], tuple[str, Row]]] = {
    "prices": _price, "book": _book, "funding": _funding, "fair_price": _fair_price,
    "orders": _order, "fills": _fill, "tca": _tca,
}
SCHEMA_FILES = {"prices": "sequence.prices", "book": "sequence.book",
                "funding": "sequence.funding", "fair_price": "sequence.fair_price",
                "orders": "sequence.orders", "fills": "sequence.fills", "tca": "sequence.tca"}


class StandardEncoder:
    """fastavro + Confluent framing, one parsed schema and id per family."""

    def __init__(self, registry_url: str | None, prefix: str) -> None:
        self.parsed: dict[str, Any] = {}
        self.header: dict[str, bytes] = {}
        client = SchemaRegistryClient({"url": registry_url}) if registry_url else None
        for family, stem in SCHEMA_FILES.items():
            text = (AVRO_DIR / f"{stem}.avsc").read_text()
            self.parsed[family] = fastavro.parse_schema(json.loads(text))
            schema_id = (client.register_schema(f"{prefix}.{family}-value", Schema(text, "AVRO"))
                         if client else 1)
            self.header[family] = struct.pack(">bI", 0, schema_id)

    def encode(self, family: str, data: Row) -> tuple[str, bytes]:
        key, row = MAPPERS[family](data)
        out = io.BytesIO()
        out.write(self.header[family])
        fastavro.schemaless_writer(out, self.parsed[family], row)
        return key, out.getvalue()


def run_standard(*, base_url: str, topics: list[str], api_key: str, bootstrap: str,
                 registry_url: str, prefix: str, events: int) -> Result:
    logging.basicConfig(level=logging.WARNING)
    encoder = StandardEncoder(registry_url, prefix)
    state = {"delivered": 0, "failed": 0}

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        state["failed" if err is not None else "delivered"] += 1

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "compression.type": "lz4", "linger.ms": 5,
                         "on_delivery": on_delivery})
    producer.produce(warmup_topic(prefix), b"warm-up")
    producer.flush(30)
    state["delivered"] = 0

    async def main() -> Result:
        async with connect(ws_endpoint(base_url),
                           additional_headers={"Authorization": f"Bearer {api_key}"},
                           compression=None) as ws:
            await _subscribe(ws, topics)
            cpu0 = cpu_s()
            first_ns = 0
            n = 0
            async for raw in ws:
                if not first_ns:
                    first_ns = time.time_ns()
                msg = orjson.loads(raw)
                family = msg["channel"].split(":", 1)[0]
                key, value = encoder.encode(family, msg["data"])
                topic = f"{prefix}.{family}"
                while True:
                    try:
                        producer.produce(topic, value, key.encode())
                        break
                    except BufferError:
                        producer.poll(0.01)
                producer.poll(0)
                n += 1
                if n == events:
                    break
            producer.flush(120)
            if state["delivered"] != events:
                raise RuntimeError(f"standard peer: {state} of {events} delivered")
            return _result(events, first_ns, time.time_ns(), cpu0)

    return asyncio.run(main())
