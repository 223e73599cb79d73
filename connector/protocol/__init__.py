"""Sans-I/O protocol layer: frames -> typed events, channel -> family, keys."""

from connector.protocol.channels import channel_suffix, family_of_channel
from connector.protocol.families import Family
from connector.protocol.frames import (
    ALL_CHANNELS,
    LIFECYCLE_KINDS,
    SSE_EVENTS,
    Ack,
    Envelope,
    Gap,
    Rejection,
    ServerError,
    StreamFrame,
    decode_lifecycle_frame,
    decode_sse_event,
    decode_stream_frame,
)
from connector.protocol.keys import dedupe_key, record_key

__all__ = [
    "ALL_CHANNELS",
    "LIFECYCLE_KINDS",
    "SSE_EVENTS",
    "Ack",
    "Envelope",
    "Family",
    "Gap",
    "Rejection",
    "ServerError",
    "StreamFrame",
    "channel_suffix",
    "decode_lifecycle_frame",
    "decode_sse_event",
    "decode_stream_frame",
    "dedupe_key",
    "family_of_channel",
    "record_key",
]
