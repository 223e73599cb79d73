"""Kafka topic and Schema Registry subject names per family."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from connector.protocol.families import Family

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
