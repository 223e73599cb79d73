"""The embedded tansu broker: lifecycle, port handling, and a real round trip."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from connector.sandbox.broker import BrokerStartError, EmbeddedBroker, metadata_brokers
from tests.conftest import TopicFactory, create_topic
from tests.support.readback import read_all


def produce(bootstrap: str, topic: str, count: int, compression: str = "lz4") -> None:
    errors: list[object] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": compression,
            "linger.ms": 5,
        }
    )

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    for i in range(count):
        producer.produce(
            topic,
            key=f"k{i}".encode(),
            value=f"value-{i}".encode() * 10,
            headers=[("seq", str(i).encode()), ("empty", b"")],
            on_delivery=on_delivery,
        )
    assert producer.flush(20) == 0
    assert errors == []


def test_start_stop_and_context_manager(tmp_path: Path) -> None:
    with EmbeddedBroker(log_dir=tmp_path) as broker:
        assert metadata_brokers("127.0.0.1", broker.port) == [("127.0.0.1", broker.port)]
        pid = broker.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_taken_port_is_reported_or_avoided(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        # A fixed port that is taken fails loudly, not with a silent exit 0.
        with pytest.raises(BrokerStartError, match="port"):
            EmbeddedBroker(port=taken, log_dir=tmp_path, start_timeout_s=5).start()
        # Without a fixed port the broker finds its own.
        with EmbeddedBroker(log_dir=tmp_path) as broker:
            assert broker.port != taken


def test_second_broker_on_same_port_fails(broker: EmbeddedBroker, tmp_path: Path) -> None:
    with pytest.raises(BrokerStartError):
        EmbeddedBroker(port=broker.port, log_dir=tmp_path, start_timeout_s=5).start()
    # ...and the session broker is unharmed.
    assert metadata_brokers("127.0.0.1", broker.port) == [("127.0.0.1", broker.port)]


def test_create_topics_with_partitions(bootstrap: str, topic_factory: TopicFactory) -> None:
    topic = topic_factory(partitions=4)
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    assert len(meta.topics[topic].partitions) == 4


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_idempotent_producer_round_trip(
    bootstrap: str, topic_factory: TopicFactory, compression: str
) -> None:
    topic = topic_factory(partitions=3)
    produce(bootstrap, topic, 50, compression)
    records = read_all(bootstrap, topic)
    assert len(records) == 50
    by_key = {r.key: r for r in records}
    assert set(by_key) == {f"k{i}".encode() for i in range(50)}
    for i in range(50):
        rec = by_key[f"k{i}".encode()]
        assert rec.value == f"value-{i}".encode() * 10
        assert rec.headers == {"seq": str(i).encode(), "empty": b""}
    # Offsets are dense per partition: nothing lost, nothing doubled.
    for p in {r.partition for r in records}:
        offsets = [r.offset for r in records if r.partition == p]
        assert offsets == list(range(len(offsets)))


def test_empty_topic_reads_as_empty(bootstrap: str, topic_factory: TopicFactory) -> None:
    assert read_all(bootstrap, topic_factory(partitions=2)) == []


def test_restart_keeps_port_and_loses_data(tmp_path: Path) -> None:
    with EmbeddedBroker(log_dir=tmp_path) as broker:
        topic = create_topic(broker.bootstrap, f"restart-{uuid.uuid4().hex}")
        produce(broker.bootstrap, topic, 5)
        port, pid = broker.port, broker.pid
        broker.restart()
        assert (broker.port, broker.pid != pid) == (port, True)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        assert topic not in admin.list_topics(timeout=10).topics


def test_pause_resume_and_kill(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_dir=tmp_path).start()
    try:
        broker.pause()
        with pytest.raises(OSError):
            metadata_brokers("127.0.0.1", broker.port, timeout_s=0.5)
        broker.resume()
        assert metadata_brokers("127.0.0.1", broker.port) == [("127.0.0.1", broker.port)]
        broker.kill()
        with pytest.raises(OSError):
            metadata_brokers("127.0.0.1", broker.port, timeout_s=0.5)
    finally:
        broker.stop()


def test_admin_reaches_broker(bootstrap: str) -> None:
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    assert [b.port for b in meta.brokers.values()] == [int(bootstrap.rsplit(":", 1)[1])]
