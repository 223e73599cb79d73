"""Reads topics back (demo summary, dedupe rebuild): librdkafka consumer, no group.

Partitions are assigned explicitly and read until librdkafka reports the end
of each partition, which it derives from the fetch high watermark (tansu's
ListOffsets 'latest' is wrong, so watermark queries are not used).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


@dataclass(slots=True)
class ReadRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    timestamp_ms: int


def read_topic(
    conf: Mapping[str, Any],
    topic: str,
    timeout_s: float = 30.0,
    start: str = "beginning",
) -> Iterator[ReadRecord]:
    """Every record of ``topic`` from the beginning to the current end."""
    consumer_conf = {
        k: v for k, v in conf.items()
        if k.startswith(("bootstrap.", "security.", "sasl.", "ssl.", "client.id"))
    }
    consumer_conf.update({
        "group.id": "sequence-connector-reader",  # required; never joined (assign only)
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
    })
    consumer = Consumer(consumer_conf)
    try:
        meta = consumer.list_topics(topic, timeout=10)
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None or not tmeta.partitions:
            return
        parts = [TopicPartition(topic, p, -2) for p in tmeta.partitions]  # -2: beginning
        consumer.assign(parts)
        pending = {p.partition for p in parts}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                    continue
                raise KafkaException(err)
            yield ReadRecord(
                topic, msg.partition(), msg.offset(), msg.key(), msg.value(),
                {k: (v or b"") for k, v in (msg.headers() or [])},
                msg.timestamp()[1],
            )
    finally:
        consumer.close()


class AvroValueDecoder:
    """Decodes Confluent-framed Avro values with the schema fetched by id."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self._deserializer = AvroDeserializer(client)

    def decode(self, topic: str, value: bytes) -> Any:
        return self._deserializer(value, SerializationContext(topic, MessageField.VALUE))
