"""The independent reader: checks what was written without our own stack.

Nothing here touches librdkafka or fastavro, which the connector writes
with. Records are fetched by kafka-python, the schema is fetched by id from
the registry over plain urllib, and the body is decoded by Apache Avro's own
Python library. So a bug shared by our writer and our reader cannot hide.
"""

from __future__ import annotations

import io
import json
import struct
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import avro.io
import avro.schema
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import RetriableError

MAGIC_BYTE = 0
T = TypeVar("T")


@dataclass(frozen=True)
class RawRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    timestamp_ms: int


@dataclass(frozen=True)
class DecodedRecord:
    raw: RawRecord
    schema_id: int
    value: dict[str, Any]


def read_all(bootstrap: str, topic: str, timeout_s: float = 15.0,
             read_committed: bool = False) -> list[RawRecord]:
    """Every record in ``topic``, ordered by (partition, offset).

    Reads each partition from the beginning up to the high watermark that the
    fetch response reports. ListOffsets "latest" (end_offsets) is not used:
    tansu answers it wrongly for batches holding several records.
    """
    consumer = _consumer(bootstrap, read_committed)
    try:
        deadline = time.monotonic() + timeout_s
        partitions = _partitions(consumer, topic, deadline)
        if not partitions:
            raise TimeoutError(f"topic {topic!r} not found on {bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list[RawRecord] = []
        while True:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(_raw(r) for r in batch)
            if _caught_up(consumer, tps):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"did not reach the high watermark of {topic!r} in {timeout_s}s")
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def _consumer(bootstrap: str, read_committed: bool = False) -> KafkaConsumer:
    """A groupless consumer that asks about topics without creating any."""
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        allow_auto_create_topics=False,
        isolation_level="read_committed" if read_committed else "read_uncommitted",
    )


def _partitions(consumer: KafkaConsumer, topic: str, deadline: float) -> set[int]:
    """The topic's partition ids, asking again until ``deadline`` while it is
    not listed yet or the metadata request fails retriably."""
    while True:
        partitions: set[int] = _retrying(lambda: consumer.partitions_for_topic(topic), deadline)
        if partitions or time.monotonic() > deadline:
            return partitions
        time.sleep(0.1)
        consumer.cluster.request_update()


def topic_exists(bootstrap: str, topic: str, timeout_s: float = 30.0) -> bool:
    """Whether the broker lists ``topic`` (kafka-python; creates nothing)."""
    consumer = _consumer(bootstrap)
    try:
        topics: set[str] = _retrying(consumer.topics, time.monotonic() + timeout_s)
        return topic in topics
    finally:
        consumer.close()


def _retrying(call: Callable[[], T], deadline: float) -> T:
    """``call()``, again after a retriable failure until ``deadline``.

    A broker just back from SIGSTOP is fenced by its controller until its next
    heartbeat: its metadata then lists no broker and no leader, and
    kafka-python raises MetadataEmptyBrokerList (seen on Apache Kafka right
    after the outage test's minute-long pause; a connection reset or a timed
    out request looks the same). That is the broker recovering, not the answer.
    """
    while True:
        try:
            return call()
        except RetriableError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kafka metadata still failing: {exc!r}") from exc
            time.sleep(0.2)


def _caught_up(consumer: KafkaConsumer, tps: list[TopicPartition]) -> bool:
    for tp in tps:
        high = consumer.highwater(tp)  # None until a fetch for tp has returned
        if high is None or consumer.position(tp) < high:
            return False
    return True


def _raw(record: Any) -> RawRecord:
    return RawRecord(
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers={name: value for name, value in record.headers},
        timestamp_ms=record.timestamp,
    )


class SchemaFetcher:
    """Schemas by id over plain HTTP, cached (ids never change meaning)."""

    def __init__(self, registry_url: str) -> None:
        self._url = registry_url.rstrip("/")
        self._cache: dict[int, avro.schema.Schema] = {}

    def get(self, schema_id: int) -> avro.schema.Schema:
        if schema_id not in self._cache:
            with urllib.request.urlopen(f"{self._url}/schemas/ids/{schema_id}", timeout=10) as rsp:
                payload = json.loads(rsp.read())
            self._cache[schema_id] = avro.schema.parse(payload["schema"])
        return self._cache[schema_id]


_fetchers: dict[str, SchemaFetcher] = {}


def decode_confluent_avro(value: bytes, registry_url: str) -> tuple[int, Any]:
    """Decode Confluent's wire format: magic 0, 4-byte big-endian id, Avro body."""
    if len(value) < 5 or value[0] != MAGIC_BYTE:
        raise ValueError(f"not Confluent Avro framing: first bytes {value[:5]!r}")
    (schema_id,) = struct.unpack(">I", value[1:5])
    fetcher = _fetchers.setdefault(registry_url, SchemaFetcher(registry_url))
    schema = fetcher.get(schema_id)
    decoder = avro.io.BinaryDecoder(io.BytesIO(value[5:]))
    datum = avro.io.DatumReader(schema).read(decoder)
    return schema_id, datum


def read_decoded(
    bootstrap: str, topic: str, registry_url: str, timeout_s: float = 15.0,
    tombstones_ok: bool = False, read_committed: bool = False,
) -> list[DecodedRecord]:
    """Every record decoded; a tombstone is an error unless ``tombstones_ok`` (then skipped)."""
    out = []
    for raw in read_all(bootstrap, topic, timeout_s, read_committed):
        if raw.value is None:
            if tombstones_ok:
                continue
            raise ValueError(f"tombstone at {raw.partition}/{raw.offset} has no value to decode")
        schema_id, datum = decode_confluent_avro(raw.value, registry_url)
        out.append(DecodedRecord(raw=raw, schema_id=schema_id, value=datum))
    return out
