"""The Apache Kafka harness itself: jars from the cache, KRaft nodes that stop,
crash, freeze and restart with their data kept."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from connector.sandbox.kafka import KafkaBroker, cache_root, kafka_libs, kafka_version
from tests.conftest import create_topic
from tests.support.readback import read_all

pytestmark = pytest.mark.kafka_only("exercises the Apache Kafka harness")


def _produce(bootstrap: str, topic: str, values: range) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all"})
    for i in values:
        producer.produce(topic, key=f"k{i % 5}".encode(), value=str(i).encode())
    assert producer.flush(30) == 0


def test_jars_come_from_a_cache_named_by_version() -> None:
    libs = kafka_libs()
    assert libs == cache_root() / "kafka" / kafka_version() / "libs"
    assert (libs / ".complete").read_text() == kafka_version()
    assert list(libs.glob(f"kafka_2.13-{kafka_version()}.jar"))
    # nothing fetched lands inside the repository
    assert Path(__file__).resolve().parents[2] not in libs.resolve().parents


def test_kill_9_restart_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    with KafkaBroker(log_dir=tmp_path) as broker:
        topic = create_topic(broker.bootstrap, f"harness-{uuid.uuid4().hex}", 2)
        _produce(broker.bootstrap, topic, range(200))
        pid = broker.pid
        broker.kill()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        broker.restart()
        assert broker.pid != pid
        _produce(broker.bootstrap, topic, range(200, 300))
        values = sorted(int(r.value or b"-1") for r in read_all(broker.bootstrap, topic))
        assert values == list(range(300))


def test_pause_freezes_and_resume_thaws(tmp_path: Path) -> None:
    with KafkaBroker(log_dir=tmp_path) as broker:
        topic = create_topic(broker.bootstrap, f"harness-{uuid.uuid4().hex}")
        broker.pause()
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all",
                             "enable.idempotence": True})
        producer.produce(topic, value=b"held")
        # frozen: nothing can be acknowledged
        assert producer.flush(2) == 1
        broker.resume()
        started = time.monotonic()
        assert producer.flush(30) == 0, f"not delivered {time.monotonic() - started:.0f}s after"
        assert [r.value for r in read_all(broker.bootstrap, topic)] == [b"held"]
