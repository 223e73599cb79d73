"""Rebuild dedupe state from the tail of the connector's own topics.

Kafka is the only state store: for every deduplicated family the identity
is the record key (fills: venue_execution_id; tca: node_order_id; lifecycle:
venue|event_id), so reading the keys of the last records of a topic at
start is enough for a restarted connector not to write them again.

Only the store's window is read (``connector.dedupe.window``): identities
older than that cannot repeat, so reading them would cost start-up time and
then be evicted. A key's partition is a hash of it, so in the worst case the
whole window sits on one partition: each partition is read up to the window,
and the keys, oldest first across partitions, leave the newest ``capacity``
of them in the store.
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
    max_per_partition: int | None,
    max_age_s: float,
) -> dict[str, int]:
    """Seed each store from its topic's tail; returns {topic: identities it now holds}.

    ``max_per_partition`` (None: the store's capacity) and ``max_age_s`` (0:
    no limit) only ever shorten the read below the window.
    """
    since_ms = int((time.time() - max_age_s) * 1000) if max_age_s > 0 else 0
    loaded: dict[str, int] = {}
    for family, store in stores.items():
        topic = topics.topic(family)
        limit = store.capacity if max_per_partition is None else min(
            max_per_partition, store.capacity)
        keys = read_tail_keys(kafka_conf, topic, limit, since_ms)
        for key in keys:
            store.seed(key.decode("utf-8", "replace"))
        loaded[topic] = len(store)
    log.info("dedupe state rebuilt from Kafka", extra={"loaded": loaded})
    return loaded
