"""The bridge stage: one inbound frame in, Kafka records out.

decode -> route -> normalise -> dedupe -> encode, all without I/O, so every
rule here is tested without sockets. Anything that fails a stage becomes a
dead-letter record carrying the raw bytes and headers naming the stage and
the error; the stream goes on. Gaps become control records (and a callback,
so the control layer can re-snapshot).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from connector.dedupe.store import DedupeStore
from connector.errors import BadInputError, DecodeError
from connector.handoff import (
    ControlRequest,
    Inbound,
    LifecycleFrame,
    RestRecord,
    SseFrame,
    StreamFrame,
)
from connector.normalize.records import (
    ControlKind,
    NormalizedRecord,
    build_control_record,
    normalize_for_wire,
)
from connector.observe.metrics import Metrics
from connector.protocol.channels import family_of_channel
from connector.protocol.families import ACCOUNT_FAMILIES, Family
from connector.protocol.frames import (
    LIFECYCLE_KINDS,
    Ack,
    Envelope,
    Gap,
    ServerError,
    decode_lifecycle_frame,
    decode_sse_event,
    decode_stream_frame,
)
from connector.protocol.keys import dedupe_key, record_key
from connector.serde.topics import TopicNames
from connector.serde.wire import WireEncoder

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
GapListener = Callable[[str, int | None, int], None]

# Header names: stable, documented in the README.
H_CHANNEL = "sequence.channel"
H_RECEIVED = "sequence.received_at_ns"
H_SOURCE = "sequence.source"
H_INSTANCE = "connector.instance"
H_STAGE = "dlq.stage"
H_ERROR = "dlq.error"
H_FIELD = "dlq.field"
H_STREAM = "dlq.stream"
H_ORIGINAL_BYTES = "dlq.original_bytes"

# Brokers refuse records over message.max.bytes (1 MB by default): a dead
# letter keeps at most this much of the raw input, and says so in a header.
DLQ_MAX_VALUE_BYTES = 512 * 1024

DEDUPED = (Family.fills, Family.tca, Family.markets_new, Family.markets_resolved)
WATERMARKED = ACCOUNT_FAMILIES  # backfill watermarks follow what was written


@dataclass(slots=True)
class OutRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    family: Family | None  # None for the DLQ
    recv_ns: int
    event_ts_ns: int | None = None
    # the vendor payload, kept only for families whose watermarks backfill tracks
    source_data: dict[str, Any] | None = None


def _headers(fixed: tuple[tuple[str, bytes], ...], recv_ns: int) -> Headers:
    """A record's headers: channel, receive time, source, instance."""
    return [fixed[0], (H_RECEIVED, str(recv_ns).encode()), fixed[1], fixed[2]]


@dataclass(slots=True, frozen=True)
class _Route:
    """What every record of one (source, channel) shares, looked up once."""

    family: Family
    topic: str
    received: Any  # the events_received counter child for (family, source)
    deduped: bool  # its store is looked up per record: ``dedupe`` may be replaced
    watermarked: bool
    headers: tuple[tuple[str, bytes], ...]  # channel, source, instance


class Bridge:
    def __init__(
        self,
        *,
        topics: TopicNames,
        encoder: WireEncoder,
        metrics: Metrics,
        instance: str,
        max_frame_bytes: int,
        carry_unknown: bool,
        dedupe_capacity: int | Mapping[Family, int],
    ) -> None:
        self._topics = topics
        self._topic_of = topics.all_topics()
        self._encoder = encoder
        self._m = metrics
        self._instance = instance
        self._instance_b = instance.encode()
        self._max = max_frame_bytes
        self._carry = carry_unknown
        # one window per family (connector.dedupe.window), or one for all
        capacity = (dedupe_capacity if not isinstance(dedupe_capacity, int)
                    else dict.fromkeys(DEDUPED, dedupe_capacity))
        self.dedupe: dict[Family, DedupeStore] = {
            f: DedupeStore(capacity[f]) for f in DEDUPED
        }
        self.gap_listener: GapListener | None = None
        self.last_event_ns: dict[Family, int] = {}
        self.dlq_count = 0
        # Hot-path caches: per source and channel what its records share
        # (family, topic, counter child: labels() costs a lock and a tuple
        # hash per call, header bytes), and prometheus children.
        self._routes: dict[str, dict[str, _Route]] = {}
        self._events_child: dict[tuple[Family, str], Any] = {}
        self._unknown_child: dict[Family, Any] = {}
        self._fixed_headers: dict[tuple[str, str], tuple[tuple[str, bytes], ...]] = {}

    # -- entry point -----------------------------------------------------------
    def process(self, item: Inbound) -> list[OutRecord]:
        try:
            return self._process(item)
        except BadInputError as exc:
            return [self._dead_letter(item, exc)]

    def _process(self, item: Inbound) -> list[OutRecord]:
        if type(item) is StreamFrame:  # the volume: first, and no isinstance walk
            return self._stream_frame(item)
        if isinstance(item, RestRecord):
            family = Family(item.family)
            return self._record(self._route(family, item, item.channel), item.data, item,
                                item.channel)
        if isinstance(item, SseFrame):
            family, data = decode_sse_event(item.event or "message", item.raw, self._max)
            channel = f"sse:{item.stream}"
            return self._record(self._route(family, item, channel), data, item, channel)
        if isinstance(item, LifecycleFrame):
            data = decode_lifecycle_frame(item.raw, self._max)
            family = LIFECYCLE_KINDS[data["kind"]]
            return self._record(self._route(family, item, item.stream), data, item, item.stream)
        if isinstance(item, ControlRequest):
            return [self.control(item.kind, item.topic, item.epoch, **item.fields)]
        raise TypeError(f"not a hand-off item: {item!r}")

    def _stream_frame(self, item: StreamFrame) -> list[OutRecord]:
        frame = decode_stream_frame(item.raw, self._max)
        if isinstance(frame, Envelope):
            # on /v1/stream the channel decides the family: one lookup
            channel = frame.channel
            by_channel = self._routes.get(item.source)
            route = by_channel.get(channel) if by_channel is not None else None
            if route is None:
                route = self._route(family_of_channel(channel), item, channel)
                if by_channel is None:
                    by_channel = self._routes[item.source] = {}
                if len(by_channel) >= 4096:  # channels are few; never grow unbounded
                    by_channel.clear()
                by_channel[channel] = route
            return self._record(route, frame.data, item, channel)
        if isinstance(frame, Gap):
            return self._gap(frame, item)
        if isinstance(frame, Ack):
            # Acks after the first (re-subscribe, unsubscribe) carry news only
            # when they reject something.
            return [self.control(ControlKind.subscribe_rejected, r.topic, item.epoch,
                                 reason=r.reason or "rejected by server")
                    for r in frame.rejections]
        if isinstance(frame, ServerError):
            log.warning("server error frame", extra={"code": frame.code,
                                                     "server_message": frame.message})
            return [self.control(ControlKind.server_error, "*", item.epoch,
                                 reason=f"{frame.code}: {frame.message}")]
        raise DecodeError(f"unhandled frame {type(frame).__name__}")

    # -- records -----------------------------------------------------------------
    def _route(self, family: Family, item: Inbound, channel: str | None) -> _Route:
        """What the records of ``family`` from this source and channel share."""
        source = item.source
        counter = self._events_child.get((family, source))
        if counter is None:
            counter = self._events_child[(family, source)] = self._m.events_received.labels(
                family.value, source)
        return _Route(family, self._topic_of[family], counter, family in DEDUPED,
                      family in WATERMARKED, self._fixed(item, channel))

    def _record(
        self, route: _Route, data: dict[str, Any], item: Inbound, channel: str | None
    ) -> list[OutRecord]:
        family = route.family
        route.received.inc()
        store = self.dedupe[family] if route.deduped else None
        identity = None
        if store is not None:
            identity = dedupe_key(family, data)
            if identity is not None and identity in store:
                store.hits += 1
                self._m.dedupe_hits.labels(family.value).inc()
                return []
        # A payload of the common shape is normalised and encoded in one
        # step; anything else (unknown fields, ids as numbers, bad values...)
        # takes the two-step path, which converts it or names the error.
        direct = self._encoder.encode_payload(family, data) if type(data) is dict else None
        if direct is not None:
            value, event_ts_ns = direct
            key = record_key(family, data, channel)
        else:
            # Decimal fields come out as unscaled ints: only the encoder reads them.
            norm = normalize_for_wire(family, data, carry_unknown=self._carry, channel=channel)
            if norm.unknown_fields:
                unknown = self._unknown_child.get(family)
                if unknown is None:
                    unknown = self._unknown_child[family] = self._m.unknown_fields.labels(
                        family.value)
                unknown.inc(len(norm.unknown_fields))
            value = self._encoder.encode(family, norm.value)
            key = norm.key
            event_ts_ns = norm.event_ts_ns
        if store is not None and identity is not None:
            # only after it encoded: a record that went to the DLQ must not
            # shadow a later good copy of the same identity
            store.first_time(identity)
        recv_ns = item.recv_ns
        self.last_event_ns[family] = recv_ns
        return [OutRecord(route.topic, key.encode(), value, _headers(route.headers, recv_ns),
                          family, recv_ns, event_ts_ns,
                          data if route.watermarked else None)]

    def _fixed(self, item: Inbound, channel: str | None) -> tuple[tuple[str, bytes], ...]:
        """The channel, source and instance headers, which repeat: cached."""
        where = channel or item.stream
        fixed = self._fixed_headers.get((where, item.source))
        if fixed is None:
            if len(self._fixed_headers) >= 4096:  # channels are few; never grow unbounded
                self._fixed_headers.clear()
            fixed = self._fixed_headers[(where, item.source)] = (
                (H_CHANNEL, where.encode()), (H_SOURCE, item.source.encode()),
                (H_INSTANCE, self._instance_b))
        return fixed


    def _gap(self, gap: Gap, item: Inbound) -> list[OutRecord]:
        try:
            family_label = family_of_channel(gap.channel).value
        except BadInputError:
            family_label = "unknown"
        self._m.gaps.labels(family_label).inc()
        if gap.dropped:
            self._m.gap_dropped.labels(family_label).inc(gap.dropped)
        log.warning("gap", extra={"channel": gap.channel, "dropped": gap.dropped,
                                  "epoch": item.epoch})
        if self.gap_listener is not None:
            self.gap_listener(gap.channel, gap.dropped, item.epoch)
        return [self.control(ControlKind.gap, gap.channel, item.epoch, dropped=gap.dropped,
                             reason="server dropped events for a slow client")]

    def control(
        self,
        kind: ControlKind | str,
        sequence_topic: str,
        epoch: int,
        *,
        dropped: int | None = None,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> OutRecord:
        """A record for the control topic, so consumers know where data is missing."""
        now = time.time_ns()
        norm: NormalizedRecord = build_control_record(
            kind, sequence_topic, epoch=epoch, at_ns=now, instance=self._instance,
            dropped=dropped, reason=reason, detail=detail)
        self._m.control_records.labels(str(kind)).inc()
        value = self._encoder.encode(Family.control, norm.value)
        headers: Headers = [(H_SOURCE, b"connector"), (H_INSTANCE, self._instance_b)]
        return OutRecord(self._topic_of[Family.control], norm.key.encode(), value, headers,
                         Family.control, now, now)

    def dead_letter(self, item: Inbound, exc: BadInputError) -> OutRecord:
        """A DLQ record for ``item``; public so later stages (produce) can use it."""
        return self._dead_letter(item, exc)

    def _dead_letter(self, item: Inbound, exc: BadInputError) -> OutRecord:
        self.dlq_count += 1
        self._m.dlq_records.labels(exc.stage).inc()
        if isinstance(item, RestRecord):
            raw: bytes | str = orjson.dumps(item.data, default=str)
        elif isinstance(item, ControlRequest):
            raw = orjson.dumps(item.fields, default=str)
        else:
            raw = item.raw
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        headers = _headers(self._fixed(item, item.channel), item.recv_ns)
        headers += [(H_STAGE, exc.stage.encode()), (H_ERROR, exc.reason[:1000].encode()),
                    (H_STREAM, item.stream.encode())]
        if exc.field is not None:
            headers.append((H_FIELD, exc.field.encode()))
        if len(raw) > DLQ_MAX_VALUE_BYTES:
            headers.append((H_ORIGINAL_BYTES, str(len(raw)).encode()))
            raw = raw[:DLQ_MAX_VALUE_BYTES]
        log.info("dead letter", extra={"stage": exc.stage, "reason": exc.reason[:200],
                                       "stream": item.stream})
        return OutRecord(self._topics.dlq, None, raw, headers, None, item.recv_ns)
