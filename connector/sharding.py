"""The configured subscriptions split into a fixed number of shards.

Deterministic (the same settings give every replica the same plan, so shard
``n`` means the same subscriptions everywhere) and total (every subscription
in exactly one shard):

- shard 0 owns the account streams (orders, fills, tca), the lifecycle
  sockets and SSE: their dedupe state and REST backfill need a single owner;
- market-data topics of ``sequence.stream_topics`` are dealt out over all
  shards in the configured order, shard 0 last (it already carries the
  account streams); everything about one Sequence topic stays in one shard,
  so per-key order in Kafka is as with one process.

A shard may be empty (more shards than topics): its owner runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.config import Settings, replace
from connector.errors import BadInputError
from connector.protocol.channels import family_of_channel
from connector.protocol.families import ACCOUNT_FAMILIES


@dataclass(frozen=True)
class ShardSpec:
    index: int
    stream_topics: tuple[str, ...]
    lifecycle: tuple[str, ...]
    sse: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.stream_topics or self.lifecycle or self.sse)


def single_owner(topic: str) -> bool:
    """Whether a stream topic must live on shard 0 (account data, or one we cannot
    route: shard 0 then reports Sequence's rejection)."""
    try:
        return family_of_channel(topic) in ACCOUNT_FAMILIES
    except BadInputError:
        return True


def shard_specs(settings: Settings, shards: int) -> list[ShardSpec]:
    """Exactly ``shards`` shards (some possibly empty), indexed 0..shards-1."""
    if shards < 1:
        raise ValueError("at least one shard")
    s = settings.sequence
    streams: list[list[str]] = [[] for _ in range(shards)]
    streams[0].extend(t for t in s.stream_topics if single_owner(t))
    market = [t for t in s.stream_topics if not single_owner(t)]
    for i, topic in enumerate(market):
        streams[(i + 1) % shards].append(topic)
    return [ShardSpec(i, tuple(streams[i]), tuple(s.lifecycle) if i == 0 else (),
                      tuple(s.sse) if i == 0 else ()) for i in range(shards)]


def shard_settings(settings: Settings, spec: ShardSpec) -> Settings:
    """One shard's settings: its subscriptions only, no HTTP port of its own
    (the replica serves one), backfill on start (a new owner pages back what
    nobody wrote while the shard moved)."""
    return replace(
        settings,
        sequence={"stream_topics": spec.stream_topics, "lifecycle": spec.lifecycle,
                  "sse": spec.sse},
        observe={"metrics_port": 0},
    )


def transactional_id(settings: Settings, index: int) -> str:
    """Stable per shard, so a new owner's init_transactions fences the old one."""
    return f"{settings.kafka.topic_prefix}-shard-{index}"


def shards_topic(settings: Settings) -> str:
    return f"{settings.kafka.topic_prefix}.shards"


def group_id(settings: Settings) -> str:
    return settings.connector.group_id or f"{settings.kafka.topic_prefix}.connector"
