"""Rebuild dedupe state from the tail of the connector's own topics.

Kafka is the only state store: for every deduplicated family the identity
is the record key (fills: venue_execution_id; tca: node_order_id; lifecycle:
venue|event_id), so reading the keys of the last records of a topic at
start is enough for a restarted connector not to write them again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from connector.dedupe.store import DedupeStore
from connector.protocol.families import Family
from connector.serde.topics import TopicNames
from connector.sink.reader import read_tail_keys

log = logging.getLogger(__name__)


def rebuild_dedupe(
    stores: Mapping[Family, DedupeStore],
    topics: TopicNames,
    kafka_conf: Mapping[str, Any],
    max_per_partition: int,
    max_age_s: float,
) -> dict[str, int]:
    """Seed each store from its topic's tail; returns {topic: identities loaded}."""
    since_ms = int((time.time() - max_age_s) * 1000) if max_age_s > 0 else 0
    loaded: dict[str, int] = {}
    for family, store in stores.items():
        topic = topics.topic(family)
        keys = read_tail_keys(kafka_conf, topic, max_per_partition, since_ms)
        for key in keys:
            store.first_time(key.decode("utf-8", "replace"))
        loaded[topic] = len(keys)
    log.info("dedupe state rebuilt from Kafka", extra={"loaded": loaded})
    return loaded
