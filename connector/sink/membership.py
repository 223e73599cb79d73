"""Shard ownership through Kafka's own consumer-group protocol.

Each replica is one member of one group subscribed to ``<prefix>.shards``,
a small topic with one partition per shard: the partitions a member is
assigned are the shards it owns. The group coordinator hands them out
(cooperative-sticky: a rebalance moves only what must move), static
membership (``group.instance.id``) lets a replica restarted within the
session timeout keep its shards, and a member silent longer than the
session timeout loses them to the others. No coordination service and no
election of our own: the way Kafka Connect, Kafka Streams and quix-streams
hand out work.

confluent_kafka's consumer is blocking and calls the rebalance callbacks
inside ``poll()``, so :class:`ShardMembership` runs its poll loop on a thread
and hands assignments to the caller's callbacks there; the caller blocks in
``on_revoke`` until the shards it gives up are stopped (drained, flushed),
so no shard is ever owned twice by this replica's choice.

The same topic keeps each shard's last-covered time: the shard's owner
writes a small keyed record to its shard's partition every second (in the
shard's transaction with exactly-once delivery); a new owner reads the last
one back (:func:`last_covered`) to record the window nobody covered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from connector.errors import FatalError, TransientError
from connector.sink.admin import ensure_topics
from connector.sink.errors import kafka_call

log = logging.getLogger(__name__)

ShardsListener = Callable[[list[int]], None]
POLL_S = 0.2

# librdkafka consumer properties that would be refused or meaningless here
# (the shared client config is the producer's; librdkafka warns on the rest)
_PRODUCER_ONLY = ("enable.idempotence", "acks", "compression.type", "linger.ms",
                  "batch.num.messages", "queue.buffering.max.messages",
                  "queue.buffering.max.kbytes", "message.timeout.ms", "transactional.id",
                  "transaction.timeout.ms")


def consumer_conf(client: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in client.items() if k not in _PRODUCER_ONLY}


def ensure_shards_topic(client: Mapping[str, Any], topic: str, shards: int,
                        replication_factor: int) -> str:
    """Create ``topic`` with one partition per shard (compacted: one record per
    shard key is all that matters); refuse a topic with another count."""
    conf = consumer_conf(client)
    created = ensure_topics(conf, [(topic, shards, {"cleanup.policy": "compact"})],
                            replication_factor, timeout_s=10.0)
    probe = Consumer({**conf, "group.id": "unused"}, logger=log)
    try:
        meta = probe.list_topics(topic, timeout=10.0).topics.get(topic)
    finally:
        probe.close()
    count = len(meta.partitions) if meta is not None else 0
    if count != shards:
        raise FatalError(f"{topic} has {count} partitions but connector.shards is {shards}: "
                         "every replica must be configured with the same shard count "
                         f"(delete {topic} to change it)")
    return created[topic]


def last_covered(client: Mapping[str, Any], topic: str, shard: int,
                 timeout_s: float = 10.0) -> bytes | None:
    """The value of the newest committed record in the shard's partition, if any."""
    conf = {**consumer_conf(client), "group.id": f"{topic}.reader",
            "enable.auto.commit": False, "isolation.level": "read_committed",
            "enable.partition.eof": True}
    reader = Consumer(conf, logger=log)
    try:
        # mapped like the poll errors below: the caller treats any ConnectorError
        # as "previous mark unknown" instead of losing the assignment to it
        low, high = kafka_call(f"offsets of {topic}[{shard}]", lambda: reader.get_watermark_offsets(
            TopicPartition(topic, shard), timeout=timeout_s))
        if high <= low:
            return None
        # the tail is a few records and transaction markers; 64 is ample
        reader.assign([TopicPartition(topic, shard, max(low, high - 64))])
        newest: bytes | None = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = reader.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    break
                raise TransientError(f"reading {topic}[{shard}]: {err.str()}")
            newest = msg.value()
        return newest
    except KafkaException as exc:
        raise TransientError(f"reading {topic}[{shard}]: {exc}") from exc
    finally:
        reader.close()


class ShardMembership:
    """One group member; :meth:`run` is its poll loop (call it on a thread)."""

    def __init__(self, client: Mapping[str, Any], group: str, instance: str, topic: str,
                 session_timeout_s: float, on_assign: ShardsListener,
                 on_revoke: ShardsListener, on_lost: ShardsListener) -> None:
        self._conf = {
            **consumer_conf(client),
            "group.id": group,
            "group.instance.id": instance,
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": int(session_timeout_s * 1000),
            "heartbeat.interval.ms": max(100, int(session_timeout_s * 1000) // 5),
            "enable.auto.commit": False,
            # the records are read by last_covered, not here
            "auto.offset.reset": "latest",
        }
        self._topic = topic
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_lost = on_lost
        self._stop = threading.Event()
        self.owned: set[int] = set()
        self.rebalances = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        consumer = Consumer(self._conf, logger=log)
        consumer.subscribe([self._topic], on_assign=self._assigned,
                           on_revoke=self._revoked, on_lost=self._lost)
        try:
            while not self._stop.is_set():
                msg = consumer.poll(POLL_S)
                err = msg.error() if msg is not None else None
                if err is not None:
                    if err.fatal():
                        # a fenced static member (another process took our
                        # group.instance.id): give up the shards and stop
                        log.error("group membership failed", extra={"error": err.str()})
                        self._lost(consumer, [TopicPartition(self._topic, p)
                                              for p in sorted(self.owned)])
                        return
                    log.warning("group membership error", extra={"error": err.str()})
        finally:
            # our shards were stopped by the caller before stop(); with static
            # membership close() sends no LeaveGroup: the shards stay ours for
            # the session timeout, so a restart inside it gets them back
            consumer.close()

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        shards = sorted(p.partition for p in partitions)
        self.rebalances += 1
        if shards:
            self.owned.update(shards)
            log.info("shards assigned", extra={"shards": shards, "owned": sorted(self.owned)})
            self._on_assign(shards)

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        shards = sorted(p.partition for p in partitions)
        self.rebalances += 1
        if shards:
            log.info("shards revoked", extra={"shards": shards})
            self._on_revoke(shards)
            self.owned.difference_update(shards)

    def _lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        shards = sorted(p.partition for p in partitions)
        self.rebalances += 1
        if shards:
            log.warning("shards lost (session expired)", extra={"shards": shards})
            self._on_lost(shards)
            self.owned.difference_update(shards)
