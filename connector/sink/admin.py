"""Topic administration: create the connector's topics with the right policies."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
)

from connector.sink.errors import kafka_error, list_topics, watch_refusals

log = logging.getLogger(__name__)


def ensure_topics(
    admin_conf: Mapping[str, Any],
    topics: Iterable[tuple[str, int, Mapping[str, str]]],
    replication_factor: int = -1,
    timeout_s: float = 30.0,
) -> dict[str, str]:
    """Create missing topics; returns {topic: "created" | "exists"}.

    ``replication_factor=-1`` lets the broker apply its default.
    """
    conf = dict(admin_conf)
    watch = watch_refusals(conf)
    admin = AdminClient(conf, logger=log)
    # transient when the cluster is down or starting (start-up waits for it),
    # fatal when it refuses our credentials or we do not trust its certificate
    existing = set(list_topics(admin, watch, "cannot list topics", timeout_s).topics)
    result: dict[str, str] = {}
    wanted = []
    for name, partitions, config in topics:
        if name in existing:
            result[name] = "exists"
        else:
            wanted.append(NewTopic(name, partitions, replication_factor, config=dict(config)))
    if not wanted:
        return result
    futures = admin.create_topics(wanted, operation_timeout=timeout_s, request_timeout=timeout_s)
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
            result[name] = "created"
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if getattr(err, "name", lambda: "")() == "TOPIC_ALREADY_EXISTS":
                result[name] = "exists"
            else:
                raise kafka_error(f"cannot create topic {name}", exc) from None
    return result


def describe_topics(admin_conf: Mapping[str, Any], names: Iterable[str],
                    timeout_s: float = 10.0) -> dict[str, tuple[int, str]]:
    """{topic: (partitions, cleanup.policy)} for those of ``names`` that exist."""
    conf = dict(admin_conf)
    watch = watch_refusals(conf)
    admin = AdminClient(conf, logger=log)
    meta = list_topics(admin, watch, "cannot list topics", timeout_s).topics
    present = [n for n in names if n in meta]
    if not present:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in present]
    layout: dict[str, tuple[int, str]] = {}
    for resource, fut in admin.describe_configs(resources, request_timeout=timeout_s).items():
        try:
            configs = fut.result(timeout=timeout_s)
        except KafkaException as exc:
            raise kafka_error(f"cannot describe topic {resource.name}", exc) from None
        policy = configs.get("cleanup.policy")
        layout[resource.name] = (len(meta[resource.name].partitions),
                                 policy.value if policy is not None else "delete")
    return layout
