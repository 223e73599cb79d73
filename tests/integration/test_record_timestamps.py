"""Kafka record timestamps follow the vendor's event time.

Sinks that partition or retain by record time (Kafka Connect's
TimeBasedPartitioner with ``Record`` extraction, Flink's ``timestamp``
metadata, retention itself) put each record where its event happened, not in
the hour the connector wrote it. Read back by kafka-python: ``timestamp`` and
``timestamp_type`` (0 = CreateTime, the producer's stamp, which the broker keeps).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from connector.config import load_settings
from connector.demo import SimulatorThread
from connector.protocol.families import Family
from connector.sandbox.simulator import SimulatorConfig
from connector.serde.topics import TopicNames
from connector.sink.admin import ensure_topics
from connector.sink.producer import KafkaSink, producer_config
from tests.support.e2e import KEY, run_for
from tests.support.readback import read_decoded

CREATE_TIME = 0
HOUR_NS = 3600 * 10**9


def _timestamps(bootstrap: str, topic: str) -> dict[tuple[int, int], tuple[int, int]]:
    """(partition, offset) -> (timestamp ms, timestamp type) for every record in ``topic``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, allow_auto_create_topics=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: dict[tuple[int, int], tuple[int, int]] = {}
        deadline = time.monotonic() + 30
        while True:
            for batch in consumer.poll(timeout_ms=200).values():
                for r in batch:
                    out[(r.partition, r.offset)] = (r.timestamp, r.timestamp_type)
            # the fetch's high watermark, as tests/support/readback.py reads to
            if all(_caught_up(consumer, tp) for tp in parts):
                return out
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
    finally:
        consumer.close()


def _caught_up(consumer: KafkaConsumer, tp: TopicPartition) -> bool:
    high = consumer.highwater(tp)  # None until a fetch for tp has returned
    return high is not None and consumer.position(tp) >= high


def test_sink_stamps_event_time_and_falls_back_to_producer_time(bootstrap: str) -> None:
    """A day-old event keeps its time (a REST backfill's case); no event time, or
    one hours ahead of our clock (a clock fault the broker would refuse), gets
    the producer's time."""
    topic = f"ts{uuid.uuid4().hex[:8]}"
    conf = producer_config({"bootstrap.servers": bootstrap, "client.id": "timestamps"})
    ensure_topics(conf, [(topic, 1, {})])
    day_old_ns = time.time_ns() - 26 * HOUR_NS + 123_456_789
    ahead_ns = time.time_ns() + 2 * HOUR_NS
    before_ms = time.time_ns() // 1_000_000

    async def produce() -> None:
        sink = KafkaSink(conf)
        sink.produce(topic, b"old", b"k", event_ns=day_old_ns)
        sink.produce(topic, b"none", b"k")
        sink.produce(topic, b"ahead", b"k", event_ns=ahead_ns)
        assert await sink.flush(30) == 0

    asyncio.run(produce())
    after_ms = time.time_ns() // 1_000_000
    stamps = _timestamps(bootstrap, topic)
    old, none, ahead = (stamps[(0, offset)] for offset in range(3))
    assert old == (day_old_ns // 1_000_000, CREATE_TIME)
    for ts, kind in (none, ahead):
        assert kind == CREATE_TIME
        assert before_ms <= ts <= after_ms


def test_connector_records_carry_event_time_where_the_family_has_one(
    bootstrap: str, registry_url: str
) -> None:
    """Fills (``ts_unix_ns``) and order states (``updated_unix_ns``) are stamped
    with their event time to the millisecond; TCA reports have no event time and
    are stamped when produced."""
    prefix = f"rts{uuid.uuid4().hex[:8]}"
    sim = SimulatorThread(SimulatorConfig(seed=5, rate=300.0, api_keys=(KEY,))).start()
    try:
        settings = load_settings(env={"SEQUENCE_API_KEY": KEY}, overrides={
            "sequence": {"base_url": sim.base_url, "stream_topics": ("orders", "fills", "tca"),
                         "lifecycle": (), "sse": ()},
            "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix, "partitions": 2},
            "schema_registry": {"url": registry_url},
            "connector": {"instance_id": "timestamps"},
            "observe": {"metrics_port": 0},
        })
        started_ms = time.time_ns() // 1_000_000
        run_for(settings, 8.0)
        ended_ms = time.time_ns() // 1_000_000
    finally:
        sim.stop()

    names = TopicNames(prefix=prefix)
    checked: dict[str, int] = {}
    for family, field in ((Family.fills, "ts_unix_ns"), (Family.orders, "updated_unix_ns")):
        topic = names.topic(family)
        stamps = _timestamps(bootstrap, topic)
        records = read_decoded(bootstrap, topic, registry_url)
        for record in records:
            expected: Any = (record.value[field] // 1_000_000, CREATE_TIME)
            assert stamps[(record.raw.partition, record.raw.offset)] == expected, record.value
        checked[family.value] = len(records)
    tca = _timestamps(bootstrap, names.topic(Family.tca))
    for ts, kind in tca.values():
        assert kind == CREATE_TIME
        assert started_ms <= ts <= ended_ms
    assert checked["fills"] > 0 and checked["orders"] > 0 and tca, (checked, len(tca))
