"""The rebuild at start reads only the window, and keeps the newest identities across
partitions however unevenly they are spread."""

from __future__ import annotations

from confluent_kafka import Producer

from connector.dedupe.rebuild import rebuild_dedupe
from connector.dedupe.store import DedupeStore
from connector.protocol.families import Family
from connector.serde.topics import TopicNames
from tests.conftest import TopicFactory

BASE_MS = 1_700_000_000_000


def test_rebuild_keeps_the_newest_window_across_skewed_partitions(
    bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(partitions=3)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    # record time decides "newest": partition 1 holds the oldest 100 identities,
    # partition 0 the next 60, partition 2 the newest 10
    layout = [(1, range(100)), (0, range(100, 160)), (2, range(160, 170))]
    for partition, numbers in layout:
        for n in numbers:
            producer.produce(topic, key=f"ex-{n}".encode(), value=b"v", partition=partition,
                             timestamp=BASE_MS + n)
        producer.flush(30)
    assert producer.flush(30) == 0
    store = DedupeStore(50)
    loaded = rebuild_dedupe({Family.fills: store}, TopicNames(overrides={Family.fills: topic}),
                            {"bootstrap.servers": bootstrap}, max_per_partition=None,
                            max_age_s=0)
    assert loaded == {topic: 50}
    # the newest 50 by record time, though 40 of them sit on one partition
    assert set(_members(store)) == {f"ex-{n}" for n in range(120, 170)}
    assert store.hits == 0


def _members(store: DedupeStore) -> list[str]:
    return [f"ex-{n}" for n in range(170) if f"ex-{n}" in store]
