"""Sans-I/O decoding of Sequence frames into typed events.

Three transports, three entry points:

- ``decode_stream_frame``: /v1/stream text frames -> Envelope | Ack | Gap |
  ServerError.
- ``decode_lifecycle_frame``: /v1/ws/new_markets and /v1/ws/market_resolved.
- ``decode_sse_event``: /v1/tca/stream and /v1/alerts/stream events.

Gap wire shape. The vendor documents that a lagging client "will receive a
Gap event indicating how many messages were dropped" but not its JSON. Our
simulator sends the canonical form ``{"channel": "<topic>", "gap":
{"dropped": N}}``. We also accept, so that a real server variant is still
recognised as a gap rather than silently dead-lettered:

1. ``{"channel": t, "gap": N}``
2. ``{"type" | "event": "gap" (any case), "channel" | "topic": t,
   "dropped" | "count" | "missed": N}``
3. ``{"Gap": {...}}`` or ``{"gap": {...}}`` where the inner object carries
   ``channel``/``topic`` and the count (an externally tagged enum, as serde
   writes them)
4. an envelope on the channel ``gap``: ``{"channel": "gap", "data":
   {"channel" | "topic": t, "dropped": N}}``

A missing or unusable count gives ``dropped=None`` (still a gap: the data is
lost either way). A gap that names no topic gets ``channel="*"``, meaning
"assume every subscription lost data".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from connector.errors import ConnectorError, DecodeError, UnknownChannelError
from connector.protocol.families import Family

ALL_CHANNELS = "*"
"""Channel of a Gap that names no topic: it applies to every subscription."""

_GAP_COUNT_KEYS = ("dropped", "count", "missed")
_TOPIC_KEYS = ("channel", "topic")
LIFECYCLE_KINDS: dict[str, Family] = {
    "new_market": Family.markets_new,
    "market_resolved": Family.markets_resolved,
}
SSE_EVENTS: dict[str, Family] = {"tca_report": Family.tca, "alert": Family.alerts}


@dataclass(frozen=True, slots=True)
class Envelope:
    """A data event: ``{"channel": "<topic>", "data": {...}}``."""

    channel: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejection:
    """One topic the server refused in a subscribe ack, with its reason if given."""

    topic: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class Ack:
    """Reply to subscribe/unsubscribe."""

    subscribed: tuple[str, ...]
    rejected: tuple[str, ...]
    rejections: tuple[Rejection, ...] = ()
    unsubscribed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Gap:
    """The server dropped ``dropped`` messages (None: unknown) on ``channel``."""

    channel: str
    dropped: int | None


@dataclass(frozen=True, slots=True)
class ServerError:
    """An error envelope sent over the socket."""

    code: str
    message: str


StreamFrame = Envelope | Ack | Gap | ServerError


def load_json_object(raw: str | bytes, max_bytes: int) -> dict[str, Any]:
    """Parse one JSON object, refusing oversized input before parsing it."""
    size = len(raw)
    # A str is measured in UTF-8 bytes, but encoding every frame costs; 4
    # bytes per char is the worst case, so only borderline strings are encoded.
    if isinstance(raw, str) and size * 4 > max_bytes:
        size = len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise DecodeError(f"frame of {size} bytes exceeds the limit of {max_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise DecodeError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def decode_stream_frame(raw: str | bytes, max_bytes: int) -> StreamFrame:
    """Decode one /v1/stream text frame."""
    obj = load_json_object(raw, max_bytes)
    if len(obj) == 2:
        # the common case, exactly {"channel": str, "data": object}: nothing
        # else below can match it (no error/type/gap/ack keys)
        channel = obj.get("channel")
        data = obj.get("data")
        if (type(channel) is str and channel and type(data) is dict
                and channel not in ("gap", "Gap")):
            return Envelope(channel, data)
    if obj.get("error") is not None or str(obj.get("type", "")).lower() == "error":
        return _server_error(obj)
    gap = _gap_or_none(obj)
    if gap is not None:
        return gap
    if "subscribed" in obj or "rejected" in obj or "unsubscribed" in obj:
        return _ack(obj)
    channel = obj.get("channel")
    if not isinstance(channel, str) or not channel:
        raise DecodeError("frame has no channel string", field="channel")
    if "data" not in obj:
        raise DecodeError("envelope has no data", field="data")
    data = obj["data"]
    if not isinstance(data, dict):
        raise DecodeError(f"envelope data is {type(data).__name__}, not an object", field="data")
    return Envelope(channel, data)


def decode_lifecycle_frame(raw: str | bytes, max_bytes: int) -> dict[str, Any]:
    """Decode one lifecycle event; ``kind`` is ``new_market`` or ``market_resolved``.

    Use ``LIFECYCLE_KINDS[frame["kind"]]`` for its family.
    """
    obj = load_json_object(raw, max_bytes)
    kind = obj.get("kind")
    if kind not in LIFECYCLE_KINDS:
        raise DecodeError(f"unknown lifecycle kind {kind!r}", field="kind")
    return obj


def decode_sse_event(
    event_name: str, data_text: str | bytes, max_bytes: int
) -> tuple[Family, dict[str, Any]]:
    """Decode one SSE event (``tca_report`` -> tca, ``alert`` -> alerts)."""
    family = SSE_EVENTS.get(event_name)
    if family is None:
        raise UnknownChannelError(f"unknown SSE event {event_name!r}", field="event")
    obj = load_json_object(data_text, max_bytes)
    # The SSE carries the bare payload; tolerate a /v1/stream style envelope.
    if obj.keys() == {"channel", "data"} and isinstance(obj["data"], dict):
        obj = obj["data"]
    return family, obj


def _server_error(obj: dict[str, Any]) -> ServerError:
    error = obj.get("error")
    source = error if isinstance(error, dict) else obj
    code = source.get("code")
    message = source.get("message")
    if message is None and isinstance(error, str):
        message = error
    return ServerError(
        code=str(code) if code is not None else "UNKNOWN",
        message=str(message) if message is not None else "",
    )


def _ack(obj: dict[str, Any]) -> Ack:
    rejections = tuple(_rejection(item) for item in _list(obj.get("rejected"), "rejected"))
    return Ack(
        subscribed=_topics(obj.get("subscribed"), "subscribed"),
        rejected=tuple(r.topic for r in rejections),
        rejections=rejections,
        unsubscribed=_topics(obj.get("unsubscribed"), "unsubscribed"),
    )


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError(f"ack {field} is not a list", field=field)
    return value


def _topics(value: Any, field: str) -> tuple[str, ...]:
    items = _list(value, field)
    if not all(isinstance(t, str) for t in items):
        raise DecodeError(f"ack {field} holds a non-string topic", field=field)
    return tuple(items)


def _rejection(item: Any) -> Rejection:
    if isinstance(item, str):
        return Rejection(item, None)
    if isinstance(item, dict):
        topic = _first(item, _TOPIC_KEYS)
        reason = _first(item, ("reason", "message", "error"))
        if isinstance(topic, str):
            return Rejection(topic, None if reason is None else str(reason))
    raise DecodeError(f"unreadable rejected entry {item!r}", field="rejected")


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in obj:
            return obj[key]
    return None


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _gap_from(channel: Any, body: Any) -> Gap:
    """Build a Gap from a topic and either a bare count or an object."""
    if isinstance(body, dict):
        inner_channel = _first(body, _TOPIC_KEYS)
        if channel is None:
            channel = inner_channel
        body = _first(body, _GAP_COUNT_KEYS)
    name = channel if isinstance(channel, str) and channel else ALL_CHANNELS
    return Gap(name, _count(body))


def _gap_or_none(obj: dict[str, Any]) -> Gap | None:
    for tag in ("gap", "Gap"):
        if tag in obj and "data" not in obj:
            return _gap_from(_first(obj, _TOPIC_KEYS), obj[tag])
    marker = _first(obj, ("type", "event"))
    if isinstance(marker, str) and marker.lower() == "gap":
        return _gap_from(_first(obj, _TOPIC_KEYS), _first(obj, _GAP_COUNT_KEYS))
    if obj.get("channel") in ("gap", "Gap") and isinstance(obj.get("data"), dict):
        return _gap_from(None, obj["data"])
    return None


def parse_ack_topics(raw: str | bytes) -> tuple[Sequence[str], Sequence[tuple[str, str]]] | None:
    """The subscribed and (topic, reason) rejected topics of an ack frame;
    None when ``raw`` is not an ack (the socket reader waits on)."""
    try:
        frame = decode_stream_frame(raw, 1 << 24)
    except ConnectorError:
        return None
    if not isinstance(frame, Ack):
        return None
    return frame.subscribed, [(r.topic, r.reason or "rejected") for r in frame.rejections]

