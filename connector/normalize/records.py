"""Vendor payload -> NormalizedRecord: Kafka key, Avro-ready value, event time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from connector.normalize.builders import build_value
from connector.normalize.record_specs import EVENT_TIME_FIELD, RECORD_SPECS
from connector.protocol.channels import channel_suffix
from connector.protocol.families import Family
from connector.protocol.keys import record_key


@dataclass(frozen=True, slots=True)
class NormalizedRecord:
    """One record ready for the serializer.

    ``unknown_fields`` names vendor fields the schema does not know (whether
    or not they were carried in ``extras``), so the caller can count them.
    """

    key: str
    value: dict[str, Any]
    event_ts_ns: int | None
    unknown_fields: tuple[str, ...]


class ControlKind(StrEnum):
    """Known control event kinds. The Avro field is a plain string, not an
    enum, so a new kind never needs a schema change (readers of an Avro enum
    fail on symbols they do not know)."""

    gap = "gap"
    reconnect = "reconnect"
    resnapshot = "resnapshot"
    subscribe_rejected = "subscribe_rejected"
    backfill = "backfill"
    server_error = "server_error"
    # more than one replica (connector/replicas.py): a shard changed owner
    shard_assigned = "shard_assigned"
    shard_revoked = "shard_revoked"
    handover = "handover"  # detail: from_ns..to_ns, the window no replica covered


def normalize_record(
    family: Family,
    data: Mapping[str, Any],
    *,
    carry_unknown: bool,
    channel: str | None = None,
) -> NormalizedRecord:
    """Validate and convert one payload of ``family``; raises NormalizeError.

    ``channel`` is the /v1/stream channel it arrived on; traces use its
    suffix as the deployment id when the payload lacks one.
    """
    return _normalize(family, data, carry_unknown, channel, True)


def normalize_for_wire(
    family: Family,
    data: Mapping[str, Any],
    *,
    carry_unknown: bool,
    channel: str | None = None,
) -> NormalizedRecord:
    """``normalize_record`` for the encoder only: every decimal field holds
    its *unscaled* int (``price_1e9`` for ``price``, book levels x 1e18)
    instead of a Decimal. ``connector.serde.fastwire`` (the WireEncoder)
    writes exactly the bytes the Decimals would give; nothing else should
    read these values. Same validation, errors, key and event time.
    """
    return _normalize(family, data, carry_unknown, channel, False)


def _normalize(
    family: Family,
    data: Mapping[str, Any],
    carry_unknown: bool,
    channel: str | None,
    decimals: bool,
) -> NormalizedRecord:
    if family is Family.traces and data.get("deployment_id") is None and channel:
        suffix = channel_suffix(channel)
        if suffix:
            data = {**data, "deployment_id": suffix}
    value, unknown = build_value(
        RECORD_SPECS[family], data, carry_unknown=carry_unknown, decimals=decimals
    )
    time_field = EVENT_TIME_FIELD[family]
    event_ts_ns = value[time_field] if time_field is not None else None
    return NormalizedRecord(record_key(family, value, channel), value, event_ts_ns, unknown)


def build_control_record(
    kind: ControlKind | str,
    sequence_topic: str,
    *,
    epoch: int,
    at_ns: int,
    instance: str,
    dropped: int | None = None,
    reason: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> NormalizedRecord:
    """A record for ``sequence.control``, keyed by the Sequence topic it is
    about so it lands in order with that topic's other control events."""
    data = {
        "kind": str(kind),
        "sequence_topic": sequence_topic,
        "dropped": dropped,
        "reason": reason,
        "epoch": epoch,
        "at_ns": at_ns,
        "instance": instance,
        "detail_json": None if detail is None else orjson.dumps(detail).decode(),
    }
    return normalize_record(Family.control, data, carry_unknown=False)
