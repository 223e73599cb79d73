"""What confluent's AvroSerializer writes, read back by the independent reader.

Writer: librdkafka + fastavro (via confluent_kafka). Reader: kafka-python +
urllib + Apache Avro. Agreement between the two is the point.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.conftest import TopicFactory
from tests.support.readback import decode_confluent_avro, read_decoded

SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Fill",
        "namespace": "readback.test",
        "fields": [
            {"name": "fill_id", "type": "string"},
            {
                "name": "price",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 18},
            },
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "side", "type": {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}},
            {"name": "fee", "type": ["null", "double"], "default": None},
        ],
    }
)


def fills(count: int) -> list[dict[str, object]]:
    return [
        {
            "fill_id": f"f-{i}",
            "price": Decimal(f"{1000 + i}.123456789012345678"),
            "ts": datetime(2026, 3, 4, 5, 6, 7, i, tzinfo=UTC),
            "side": "BUY" if i % 2 else "SELL",
            "fee": None if i % 3 else i / 4,
        }
        for i in range(count)
    ]


def test_avro_records_read_back_independently(
    bootstrap: str, registry_url: str, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(partitions=3)
    serializer = AvroSerializer(SchemaRegistryClient({"url": registry_url}), SCHEMA)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "zstd",
            "linger.ms": 5,
        }
    )
    errors: list[object] = []
    sent = fills(40)
    for value in sent:
        payload = serializer(value, SerializationContext(topic, MessageField.VALUE))
        producer.produce(
            topic,
            key=str(value["fill_id"]).encode(),
            value=payload,
            headers={"source": b"sequence", "fill": str(value["fill_id"]).encode()},
            on_delivery=lambda err, _m: errors.append(err) if err else None,
        )
    assert producer.flush(20) == 0 and errors == []

    records = read_decoded(bootstrap, topic, registry_url)
    assert len(records) == len(sent)
    assert len({r.schema_id for r in records}) == 1
    by_key = {r.raw.key: r for r in records}
    for value in sent:
        got = by_key[str(value["fill_id"]).encode()]
        # Apache Avro decodes the logical types itself: Decimal and aware datetime.
        assert got.value == value
        assert got.raw.headers == {"source": b"sequence", "fill": str(value["fill_id"]).encode()}


def test_decode_rejects_foreign_framing(registry_url: str) -> None:
    with pytest.raises(ValueError, match="framing"):
        decode_confluent_avro(b"\x01\x00\x00\x00\x01abc", registry_url)
