"""Reads topics back (demo summary, dedupe rebuild): librdkafka consumer, no group.

Partitions are assigned explicitly and read until librdkafka reports the end
of each partition. Ends come from the fetch high watermark, and for the
dedupe rebuild also from ListOffsets: Apache Kafka answers both right, tansu
only the first (its ListOffsets 'latest' is short).
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from connector.sink.errors import RefusalWatch, list_topics, watch_refusals

log = logging.getLogger(__name__)


def _headers(msg: Message) -> dict[str, bytes]:
    raw = msg.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {k: v if isinstance(v, bytes) else (v or "").encode() for k, v in pairs}


def _assign_only_consumer(conf: Mapping[str, Any], group: str) -> tuple[Consumer, RefusalWatch]:
    """A consumer for explicit assign(): connection and security settings only;
    its error callback watches for a refused login or certificate."""
    consumer_conf = {
        k: v for k, v in conf.items()
        if k.startswith(("bootstrap.", "security.", "sasl.", "ssl.", "client.id"))
    }
    consumer_conf.update({
        "group.id": group,  # required by librdkafka; never joined (assign only)
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
    })
    watch = watch_refusals(consumer_conf)
    # without a logger librdkafka writes its own lines to stderr (one per failed
    # connect while Kafka is down at start), breaking the JSON log stream
    return Consumer(consumer_conf, logger=log), watch


def _poll(consumer: Consumer, timeout_s: float) -> Message | None:
    """``consumer.poll`` without the group coordinator's refusal. librdkafka
    looks up the coordinator of any consumer with a ``group.id``, even one
    that only assigns; with an authorizer, a principal given no ACL on the
    group (it needs none: nothing joins or commits) gets
    GROUP_AUTHORIZATION_FAILED, which says nothing about the reads."""
    msg = consumer.poll(timeout_s)
    if msg is not None:
        err = msg.error()
        if err is not None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            return None
    return msg


def _partitions(consumer: Consumer, watch: RefusalWatch, topic: str) -> list[int]:
    """The topic's partition ids; empty when the topic does not exist."""
    meta = list_topics(consumer, watch, f"cannot read {topic}", 10.0, topic)
    tmeta = meta.topics.get(topic)
    if tmeta is None or tmeta.error is not None or not tmeta.partitions:
        return []
    return sorted(tmeta.partitions)


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
    consumer, watch = _assign_only_consumer(conf, "sequence-connector-reader")
    try:
        partitions = _partitions(consumer, watch, topic)
        if not partitions:
            return
        parts = [TopicPartition(topic, p, -2) for p in partitions]  # -2: beginning
        consumer.assign(parts)
        pending = {p.partition for p in parts}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            msg = _poll(consumer, 0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                    continue
                raise KafkaException(err)
            part, offset = msg.partition(), msg.offset()
            if part is None or offset is None:  # never on a fetched record
                continue
            yield ReadRecord(topic, part, offset, msg.key(), msg.value(), _headers(msg),
                             msg.timestamp()[1])
    finally:
        consumer.close()


class AvroValueDecoder:
    """Decodes Confluent-framed Avro values with the schema fetched by id."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self._deserializer = AvroDeserializer(client)

    def decode(self, topic: str, value: bytes) -> Any:
        return self._deserializer(value, SerializationContext(topic, MessageField.VALUE))


def read_tail_keys(
    conf: Mapping[str, Any],
    topic: str,
    max_per_partition: int,
    since_ms: int = 0,
    timeout_s: float = 60.0,
) -> list[bytes]:
    """Keys of the last ``max_per_partition`` records of each partition, oldest first.

    The end of each partition is taken once, before reading, as the larger of
    the high watermark that fetch responses carry and ListOffsets' answer (see
    ``_tail``), and the read stops there: records appended meanwhile are not
    read. Records older than ``since_ms`` are skipped.
    """
    consumer, watch = _assign_only_consumer(conf, "sequence-connector-dedupe-rebuild")
    try:
        partitions = _partitions(consumer, watch, topic)
        if not partitions:
            return []
        deadline = time.monotonic() + timeout_s
        return _tail(consumer, topic, partitions, max_per_partition, since_ms, deadline)
    finally:
        consumer.close()


def _tail(consumer: Consumer, topic: str, partitions: list[int], limit: int,
          since_ms: int, deadline: float) -> list[bytes]:
    # One fetch per partition from the beginning teaches librdkafka the true
    # high watermarks; all partitions at once, so an empty topic costs one poll.
    consumer.assign([TopicPartition(topic, p, -2) for p in partitions])
    unseen = set(partitions)
    while unseen and time.monotonic() < deadline:
        msg = _poll(consumer, 0.2)
        if msg is None:
            continue
        err = msg.error()
        if err is not None and err.code() != KafkaError._PARTITION_EOF:
            raise KafkaException(err)
        unseen.discard(msg.partition())
    if unseen:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"no fetch from {topic}"))
    ends: dict[int, int] = {}
    starts = []
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True)
        # Apache Kafka answers ListOffsets with the true end; tansu's is short
        # when a batch holds several records, while its fetch high watermark
        # (above) is right. The larger of the two is the end on both.
        _, listed = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        high = max(high, listed)
        start = max(low, high - limit, 0)
        if high > 0 and start < high:
            ends[p] = high
            starts.append(TopicPartition(topic, p, start))
    keys: dict[int, list[tuple[int, bytes]]] = {p: [] for p in ends}
    if not starts:
        return []
    consumer.assign(starts)
    while ends and time.monotonic() < deadline:
        msg = _poll(consumer, 0.2)
        if msg is None:
            continue
        err = msg.error()
        part, offset = msg.partition(), msg.offset()
        if part is None:
            continue
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                ends.pop(part, None)
                continue
            raise KafkaException(err)
        if offset is None:  # never on a fetched record
            continue
        key = msg.key()
        end = ends.get(part)
        if end is None:
            continue  # a partition already read to its end
        # bounded by the end taken above: records written since (a live
        # producer, another replica) are not part of the state being rebuilt
        ts = msg.timestamp()[1]
        if offset < end and key is not None and ts >= since_ms:
            keys[part].append((ts, key))
        if offset >= end - 1:
            ends.pop(part)
    # Oldest first across partitions, by record time (each partition keeps its
    # own order): a bounded dedupe store fed these keeps the newest ones.
    merged = heapq.merge(*(keys[p] for p in sorted(keys)), key=lambda tk: tk[0])
    return [key for _, key in merged]
