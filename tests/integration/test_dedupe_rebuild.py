"""Restart-safe dedupe: identities come back from the tail of our own topics."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Producer

from connector.dedupe.rebuild import rebuild_dedupe
from connector.dedupe.store import DedupeStore
from connector.protocol.families import Family
from connector.serde.topics import TopicNames
from connector.sink.reader import read_tail_keys
from tests.conftest import TopicFactory


def _produce(bootstrap: str, topic: str, keys: list[str], partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i, key in enumerate(keys):
        producer.produce(topic, key=key.encode(), value=b"v", partition=i % partitions)
        if i % 50 == 0:
            producer.flush()  # several batches: tansu's ListOffsets would be wrong here
    assert producer.flush(30) == 0


def test_tail_is_bounded_per_partition_and_in_order(bootstrap: str,
                                                    topic_factory: TopicFactory) -> None:
    topic = topic_factory(partitions=3)
    keys = [f"k{i}" for i in range(600)]
    _produce(bootstrap, topic, keys, 3)
    tail = read_tail_keys({"bootstrap.servers": bootstrap}, topic, max_per_partition=50)
    assert len(tail) == 150
    for p in range(3):
        mine = [k for k in keys if int(k[1:]) % 3 == p]
        got = [k.decode() for k in tail if int(k.decode()[1:]) % 3 == p]
        assert got == mine[-50:]
    everything = read_tail_keys({"bootstrap.servers": bootstrap}, topic, max_per_partition=10**6)
    assert sorted(k.decode() for k in everything) == sorted(keys)


def test_empty_and_missing_topics_rebuild_nothing(bootstrap: str,
                                                  topic_factory: TopicFactory) -> None:
    topic = topic_factory(partitions=2)
    assert read_tail_keys({"bootstrap.servers": bootstrap}, topic, 100) == []
    assert read_tail_keys({"bootstrap.servers": bootstrap}, topic + "-absent", 100) == []


def test_rebuild_seeds_the_fill_store(bootstrap: str) -> None:
    topics = TopicNames(prefix="rebuild")
    _produce(bootstrap, topics.topic(Family.fills), [f"ex-{i}" for i in range(120)], 1)
    stores = {Family.fills: DedupeStore(1000)}
    loaded = rebuild_dedupe(stores, topics, {"bootstrap.servers": bootstrap},
                            max_per_partition=100, max_age_s=3600)
    assert loaded == {"rebuild.fills": 100}
    assert "ex-119" in stores[Family.fills] and "ex-20" in stores[Family.fills]
    assert "ex-19" not in stores[Family.fills]


@pytest.mark.kafka_only("tansu's ListOffsets is short; there the fetch high watermark decides")
def test_rebuild_reads_up_to_the_end_offsets_it_found_while_writes_go_on(
    bootstrap: str, topic_factory: TopicFactory
) -> None:
    """The read is bounded by the end offsets taken at its start (ListOffsets and the
    fetch high watermark agree on Apache Kafka): a producer that keeps writing (a
    live connector, another replica) neither stretches it nor leaks into it."""
    topic = topic_factory(partitions=2)
    _produce(bootstrap, topic, [f"k{i}" for i in range(400)], 2)
    stop = threading.Event()
    written: list[str] = []

    def keep_writing() -> None:
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                             "linger.ms": 0})
        i = 400
        while not stop.is_set():
            producer.produce(topic, key=f"k{i}".encode(), value=b"v", partition=i % 2)
            written.append(f"k{i}")
            producer.poll(0)
            i += 1
            time.sleep(0.001)
        producer.flush(10)

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        time.sleep(0.5)  # writes are flowing
        before = set(written)
        tail = [k.decode() for k in read_tail_keys({"bootstrap.servers": bootstrap}, topic,
                                                   max_per_partition=100)]
    finally:
        stop.set()
        writer.join(timeout=15)
    assert len(written) > len(before), "the producer kept writing during the rebuild"
    for p in range(2):
        mine = [k for k in tail if int(k[1:]) % 2 == p]
        # exactly the limit: reading past the end it found would give more
        assert len(mine) == 100, (p, len(mine))
        numbers = [int(k[1:]) for k in mine]
        assert numbers == sorted(numbers) and numbers == list(
            range(numbers[0], numbers[-1] + 1, 2)), "a contiguous tail, oldest first"
    assert set(tail) <= {f"k{i}" for i in range(400)} | set(written)
