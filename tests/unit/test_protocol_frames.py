"""decode_stream_frame / decode_lifecycle_frame / decode_sse_event."""

from __future__ import annotations

import orjson
import pytest

from connector.errors import BadInputError, DecodeError, UnknownChannelError
from connector.normalize.examples import example_json
from connector.protocol import (
    ALL_CHANNELS,
    Ack,
    Envelope,
    Family,
    Gap,
    Rejection,
    ServerError,
    decode_lifecycle_frame,
    decode_sse_event,
    decode_stream_frame,
)

MAX = 1 << 20


def test_envelope_from_bytes_and_str() -> None:
    raw = b'{"channel": "prices:BTC-USD", "data": ' + example_json(Family.prices) + b"}"
    for frame in (raw, raw.decode()):
        decoded = decode_stream_frame(frame, MAX)
        assert isinstance(decoded, Envelope)
        assert decoded.channel == "prices:BTC-USD"
        assert decoded.data["best_bid_px_1e9"] == 76410000000000


def test_ack_with_string_and_object_rejections() -> None:
    raw = orjson.dumps(
        {
            "subscribed": ["prices:BTC-USD", "orders"],
            "rejected": [
                "book:NOPE",
                {"topic": "traces:x", "reason": "forbidden"},
                {"channel": "funding:zz", "message": "unknown venue"},
            ],
        }
    )
    ack = decode_stream_frame(raw, MAX)
    assert ack == Ack(
        subscribed=("prices:BTC-USD", "orders"),
        rejected=("book:NOPE", "traces:x", "funding:zz"),
        rejections=(
            Rejection("book:NOPE", None),
            Rejection("traces:x", "forbidden"),
            Rejection("funding:zz", "unknown venue"),
        ),
    )


def test_empty_ack_and_unsubscribe_ack() -> None:
    assert decode_stream_frame('{"subscribed": [], "rejected": []}', MAX) == Ack((), ())
    ack = decode_stream_frame('{"unsubscribed": ["prices:BTC-USD"]}', MAX)
    assert isinstance(ack, Ack) and ack.unsubscribed == ("prices:BTC-USD",)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # the simulator's canonical shape
        ('{"channel": "book:BTC-USDT", "gap": {"dropped": 12}}', Gap("book:BTC-USDT", 12)),
        ('{"channel": "book:BTC-USDT", "gap": 12}', Gap("book:BTC-USDT", 12)),
        ('{"channel": "book:X", "gap": {"missed": 3}}', Gap("book:X", 3)),
        ('{"type": "gap", "channel": "orders", "dropped": 5}', Gap("orders", 5)),
        ('{"type": "Gap", "topic": "orders", "count": 5}', Gap("orders", 5)),
        ('{"event": "gap", "topic": "fills", "missed": 9}', Gap("fills", 9)),
        ('{"Gap": {"channel": "prices:ETH-USD", "dropped": 4096}}', Gap("prices:ETH-USD", 4096)),
        ('{"gap": {"topic": "prices:ETH-USD", "count": 1}}', Gap("prices:ETH-USD", 1)),
        ('{"channel": "gap", "data": {"topic": "tca", "dropped": 2}}', Gap("tca", 2)),
        # unknown or unusable counts still mean data was lost
        ('{"channel": "orders", "gap": {}}', Gap("orders", None)),
        ('{"channel": "orders", "gap": "lots"}', Gap("orders", None)),
        ('{"channel": "orders", "gap": -1}', Gap("orders", None)),
        ('{"channel": "orders", "gap": true}', Gap("orders", None)),
        ('{"channel": "orders", "gap": 7.0}', Gap("orders", 7)),
        ('{"type": "gap"}', Gap(ALL_CHANNELS, None)),
    ],
)
def test_gap_variants(raw: str, expected: Gap) -> None:
    assert decode_stream_frame(raw, MAX) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '{"error": {"code": "UNAUTHORIZED", "message": "bad key", "request_id": "r"}}',
            ServerError("UNAUTHORIZED", "bad key"),
        ),
        (
            '{"error": "subscribe payload not understood"}',
            ServerError("UNKNOWN", "subscribe payload not understood"),
        ),
        (
            '{"type": "error", "code": "RATE_LIMITED", "message": "slow down"}',
            ServerError("RATE_LIMITED", "slow down"),
        ),
    ],
)
def test_server_errors(raw: str, expected: ServerError) -> None:
    assert decode_stream_frame(raw, MAX) == expected


def test_null_error_field_is_not_an_error() -> None:
    assert isinstance(
        decode_stream_frame('{"channel": "orders", "data": {}, "error": null}', MAX), Envelope
    )


@pytest.mark.parametrize(
    ("raw", "reason_part", "field"),
    [
        ("not json", "invalid JSON", None),
        (b"\xff\xfe", "invalid JSON", None),
        ("", "invalid JSON", None),
        ("[1, 2]", "expected a JSON object, got list", None),
        ('"text"', "expected a JSON object, got str", None),
        ("null", "expected a JSON object, got NoneType", None),
        ('{"data": {}}', "no channel", "channel"),
        ('{"channel": 5, "data": {}}', "no channel", "channel"),
        ('{"channel": "orders"}', "no data", "data"),
        ('{"channel": "orders", "data": [1]}', "not an object", "data"),
        ('{"channel": "orders", "data": null}', "not an object", "data"),
        ('{"subscribed": "orders"}', "not a list", "subscribed"),
        ('{"subscribed": [], "rejected": [42]}', "unreadable rejected", "rejected"),
    ],
)
def test_malformed_frames(raw: str | bytes, reason_part: str, field: str | None) -> None:
    with pytest.raises(DecodeError) as info:
        decode_stream_frame(raw, MAX)
    assert reason_part in info.value.reason
    assert info.value.field == field
    assert info.value.stage == "decode"


def test_oversized_frames_are_refused_before_parsing() -> None:
    frame = '{"channel": "orders", "data": {"x": "' + "a" * 100 + '"}}'
    assert isinstance(decode_stream_frame(frame, len(frame)), Envelope)
    with pytest.raises(DecodeError, match="exceeds the limit"):
        decode_stream_frame(frame, len(frame) - 1)
    with pytest.raises(DecodeError, match="exceeds the limit"):
        decode_stream_frame(frame.encode(), len(frame) - 1)


def test_oversize_counts_utf8_bytes_of_str_frames() -> None:
    frame = '{"channel": "orders", "data": {"x": "' + "\u20ac" * 10 + '"}}'
    utf8_size = len(frame.encode())
    assert utf8_size > len(frame)
    assert isinstance(decode_stream_frame(frame, utf8_size), Envelope)
    with pytest.raises(DecodeError):
        decode_stream_frame(frame, utf8_size - 1)


def test_decode_errors_share_the_root() -> None:
    with pytest.raises(BadInputError):
        decode_stream_frame("{", MAX)


def test_lifecycle_frames() -> None:
    new = decode_lifecycle_frame(example_json(Family.markets_new), MAX)
    assert new["kind"] == "new_market"
    assert new["yes_token_id"] == (
        "71166707665253014908308475311609108419118036985903834861277070930664191157865"  # noqa: S105 - an id, not a secret
    )
    resolved = decode_lifecycle_frame(example_json(Family.markets_resolved).decode(), MAX)
    assert resolved["kind"] == "market_resolved"
    for bad in ('{"kind": "mystery"}', '{"venue": "polymarket"}', "[]", "{"):
        with pytest.raises(DecodeError):
            decode_lifecycle_frame(bad, MAX)
    with pytest.raises(DecodeError, match="exceeds"):
        decode_lifecycle_frame(example_json(Family.markets_new), 10)


def test_sse_events() -> None:
    family, data = decode_sse_event("tca_report", example_json(Family.tca).decode(), MAX)
    assert family is Family.tca and data["num_fills"] == 1
    family, data = decode_sse_event("alert", example_json(Family.alerts), MAX)
    assert family is Family.alerts and data["alert_id"] == "alt_0001"
    # a /v1/stream style envelope on the SSE is unwrapped
    wrapped = b'{"channel": "tca", "data": ' + example_json(Family.tca) + b"}"
    assert decode_sse_event("tca_report", wrapped, MAX)[1]["num_fills"] == 1


def test_sse_unknown_event_and_bad_data() -> None:
    with pytest.raises(UnknownChannelError) as info:
        decode_sse_event("message", "{}", MAX)
    assert info.value.stage == "route"
    with pytest.raises(DecodeError):
        decode_sse_event("alert", "[1]", MAX)
    with pytest.raises(DecodeError):
        decode_sse_event("alert", "{}", 1)
