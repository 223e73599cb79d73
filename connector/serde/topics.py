"""Kafka topic and Schema Registry subject names per family."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from connector.config import Settings
from connector.protocol.families import Family

# Topics whose latest record per key is the state: Kafka compacts them, so the
# history of every order, fill and market outlives the retention of the rest.
COMPACTED = frozenset({Family.orders, Family.fills, Family.markets_new,
                       Family.markets_resolved})

# Topic name after the prefix; lifecycle families use dotted names.
_TOPIC_SUFFIX: Mapping[Family, str] = MappingProxyType(
    {f: f.value for f in Family}
    | {Family.markets_new: "markets.new", Family.markets_resolved: "markets.resolved"}
)


@dataclass(frozen=True, slots=True)
class TopicNames:
    """``<prefix>.<family>`` unless overridden; an override is the full topic
    name. Subjects follow TopicNameStrategy: ``<topic>-value``."""

    prefix: str = "sequence"
    overrides: Mapping[Family, str] = field(default_factory=dict)

    def topic(self, family: Family) -> str:
        override = self.overrides.get(family)
        return override if override else f"{self.prefix}.{_TOPIC_SUFFIX[family]}"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    def subject(self, family: Family) -> str:
        return f"{self.topic(family)}-value"

    def all_topics(self) -> dict[Family, str]:
        return {family: self.topic(family) for family in Family}


def topic_names(settings: Settings) -> TopicNames:
    overrides = {Family(k): v for k, v in settings.kafka.topics.items() if k != "dlq"}
    return TopicNames(prefix=settings.kafka.topic_prefix, overrides=overrides)


TopicPlan = list[tuple[str, int, dict[str, str]]]


def topic_plan(settings: Settings, partitions: int | None = None) -> TopicPlan:
    """(topic, partitions, config) of every topic the connector writes: what
    ``topics create`` and the start-up make, and what ``check`` compares with."""
    topics = topic_names(settings)
    parts = partitions or settings.kafka.partitions
    plan = [(topics.topic(f), parts,
             {"cleanup.policy": "compact" if f in COMPACTED else "delete"}) for f in Family]
    plan.append((topics.dlq, parts, {"cleanup.policy": "delete"}))
    return plan
