"""Compaction on a real broker: the topic layout the connector asks for, and
what the log cleaner leaves of it.

tansu never compacts, so until now "compact for orders and fills" was a
setting nobody had seen work. Here the connector runs against Apache Kafka,
the fills and orders topics get test-sized segments, at-least-once resend
duplicates are added by hand (what a producer rebuild can leave), and once
the cleaner has run Kafka holds each fill once and each order's final state.
"""

from __future__ import annotations

import io
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from connector import operations as ops
from connector.config import Settings, load_settings
from connector.demo import SimulatorThread
from connector.protocol.families import Family
from connector.sandbox.simulator import SimulatorConfig
from connector.serde.topics import TopicNames
from tests.support.chaos import (
    ConnectorProcess,
    connector_env,
    fills_tally,
    new_prefix,
    orders_check,
    rest_truth,
    wait_subscribed,
    wait_until,
)
from tests.support.e2e import KEY
from tests.support.readback import RawRecord, read_all, read_decoded

pytestmark = pytest.mark.kafka_only("tansu has no log compaction and no topic configs")

COMPACTED = {Family.orders, Family.fills, Family.markets_new, Family.markets_resolved}
# test-sized: segments roll after a second, any dirt makes a log cleanable
FAST_CLEANING = {"segment.ms": "1000", "min.cleanable.dirty.ratio": "0.01",
                 "min.compaction.lag.ms": "0", "delete.retention.ms": "0"}


def _settings(bootstrap: str, registry_url: str, prefix: str, sim_url: str = "http://127.0.0.1:9",
              partitions: int = 3) -> Settings:
    return load_settings(env={
        "SEQUENCE_API_KEY": KEY, "SEQCONN__SEQUENCE__BASE_URL": sim_url,
        "SEQCONN__KAFKA__BOOTSTRAP_SERVERS": bootstrap, "SEQCONN__KAFKA__TOPIC_PREFIX": prefix,
        "SEQCONN__KAFKA__PARTITIONS": str(partitions),
        "SEQCONN__SCHEMA_REGISTRY__URL": registry_url})


def _policies(bootstrap: str, topics: list[str]) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics]
    return {r.name: f.result(15)["cleanup.policy"].value
            for r, f in admin.describe_configs(resources).items()}


def _alter(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
               for k, v in configs.items()]
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    for fut in admin.incremental_alter_configs([resource]).values():
        fut.result(15)

    def applied() -> bool:
        got = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
        try:
            values = next(iter(got.values())).result(15)
        except KafkaException:  # a topic just created is not known to every broker yet
            return False
        return all(values[k].value == v for k, v in configs.items())

    # the controller has it; the broker answering describe sees it a moment later
    wait_until(applied, 15, f"{topic} to show {configs}", 0.2)


def _kafka_line(settings: Settings) -> str:
    """The kafka verdict of ``check`` (the Sequence side is unreachable here: ignored)."""
    out = io.StringIO()
    ops.check(settings, out)
    return next(line for line in out.getvalue().splitlines() if line.startswith("kafka"))


def test_topics_carry_the_documented_cleanup_policies_and_check_reports_drift(
    bootstrap: str, registry_url: str
) -> None:
    prefix = f"layout{uuid.uuid4().hex[:8]}"
    settings = _settings(bootstrap, registry_url, prefix)
    assert ops.topics_create(settings, io.StringIO()) == 0
    names = TopicNames(prefix=prefix)
    wanted = {names.topic(f): "compact" if f in COMPACTED else "delete" for f in Family}
    wanted[names.dlq] = "delete"
    assert _policies(bootstrap, list(wanted)) == wanted

    assert _kafka_line(settings).split()[1] == "OK", "the layout is right after topics create"
    # an operator "fixed" the fills topic by hand: the check must say so
    _alter(bootstrap, names.topic(Family.fills), {"cleanup.policy": "delete"})
    line = _kafka_line(settings)
    assert line.split()[1] == "FAIL", line
    assert f"{names.topic(Family.fills)} has cleanup.policy=delete, needs compact" in line

    # topics made with another partition count than the connector is configured with
    other = f"parts{uuid.uuid4().hex[:8]}"
    ops.topics_create(_settings(bootstrap, registry_url, other, partitions=2), io.StringIO())
    line = _kafka_line(_settings(bootstrap, registry_url, other, partitions=3))
    assert line.split()[1] == "FAIL", line
    assert f"{TopicNames(prefix=other).topic(Family.orders)} has 2 partitions, configured 3" in (
        line)


def _roll(bootstrap: str, topic: str, partitions: int) -> None:
    """A tombstone with a key of its own in every partition: the segment that held
    the real records is closed (segment.ms has passed), so the cleaner may take it."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for p in range(partitions):
        producer.produce(topic, key=f"__roll__{p}".encode(), value=None, partition=p)
    assert producer.flush(15) == 0


def _copy(bootstrap: str, topic: str, records: list[RawRecord]) -> None:
    """Write records again as they are: what a resend after a producer rebuild leaves."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for r in records:
        producer.produce(topic, key=r.key, value=r.value, partition=r.partition,
                         headers=list(r.headers.items()))
    assert producer.flush(15) == 0


def _written(bootstrap: str, topic: str, partitions: int = 3) -> int:
    """Records ever appended (end offsets: the cleaner never reuses an offset)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-probe"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(partitions))
    finally:
        consumer.close()


def _live_counts(bootstrap: str, topic: str) -> Counter[bytes]:
    return Counter(r.key for r in read_all(bootstrap, topic)
                   if r.value is not None and r.key is not None)


def test_cleaner_leaves_each_fill_once_and_each_orders_final_state(
    bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    prefix = new_prefix("compact")
    names = TopicNames(prefix=prefix)
    fills, orders = names.topic(Family.fills), names.topic(Family.orders)
    assert ops.topics_create(_settings(bootstrap, registry_url, prefix), io.StringIO()) == 0
    for topic in (fills, orders):
        _alter(bootstrap, topic, FAST_CLEANING)
    sim = SimulatorThread(SimulatorConfig(seed=17, rate=400.0, api_keys=(KEY,))).start()
    proc = ConnectorProcess(
        connector_env(prefix, sim.base_url, bootstrap, registry_url, ("orders", "fills")),
        tmp_path / "connector.log")
    try:
        proc.start()
        wait_subscribed(sim, 0, proc=proc)
        wait_until(lambda: len(_live_counts(bootstrap, fills)) >= 20, 60, "20 fills in Kafka")
        # duplicates the cleaner must remove: every fill so far, written again
        copied = [r for r in read_all(bootstrap, fills) if r.value is not None]
        _copy(bootstrap, fills, copied)
        time.sleep(4.0)  # more fills and order updates land in later segments
        assert proc.terminate() == 0, proc.log_tail()
        truth = rest_truth(sim)
    finally:
        proc.cleanup()
        sim.stop()

    # the cleaner runs all along (segments roll every second): count what was written
    before_fills, before_orders = _written(bootstrap, fills), _written(bootstrap, orders)
    time.sleep(1.2)  # past segment.ms, so the next append rolls the segment
    for topic in (fills, orders):
        _roll(bootstrap, topic, 3)

    def compacted() -> bool:
        return all(max(_live_counts(bootstrap, t).values()) == 1 for t in (fills, orders))

    wait_until(compacted, 90, "the log cleaner to compact fills and orders", 1.0)
    fill_counts, order_counts = _live_counts(bootstrap, fills), _live_counts(bootstrap, orders)
    tally = fills_tally(truth.fills, read_decoded(bootstrap, fills, registry_url,
                                                  tombstones_ok=True))
    checked, order_records, wrong = orders_check(
        truth.orders, read_decoded(bootstrap, orders, registry_url, tombstones_ok=True))
    print(f"\n[compaction] fills: {before_fills} records written ({len(copied)} copied "
          f"in), {sum(fill_counts.values())} after, REST {tally.sent} | orders: "
          f"{before_orders} records written, {order_records} after for {len(order_counts)} "
          f"orders, checked {checked}, wrong {len(wrong)}")
    assert len(copied) >= 20 and before_fills >= len(fill_counts) + len(copied)
    assert tally.duplicates == 0 and not tally.missing, tally.line()
    assert before_orders > len(order_counts), "orders had several states per order to clean"
    assert order_records == len(order_counts)
    assert checked > 0 and not wrong, f"orders whose surviving state is not REST's: {wrong[:3]}"
