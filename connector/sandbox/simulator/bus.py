"""Fan-out of generated events into per-client, per-topic bounded buffers.

Every subscription (one topic string on one connection) owns a buffer of
``buffer_size`` events. The generator pushes synchronously; one writer task
per connection drains its buffers, so a client that reads slowly blocks
only its own writer (aiohttp awaits the socket drain) and its buffers fill.
When a buffer is full the oldest event is dropped and counted; the next
time the writer serves that topic it first sends a Gap frame::

    {"channel": "<topic as subscribed>", "gap": {"dropped": <int>}}

then resumes with what is buffered (the most recent ``buffer_size`` events).
On SSE connections the same Gap is an ``event: gap`` whose data is
``{"channel": "tca"|"alerts", "gap": {"dropped": N}}``; on the lifecycle
sockets (which have no envelope) it is ``{"kind": "gap", "dropped": N}``.

Book topics: the first frame per venue after subscribe is a full snapshot
(``is_snapshot: true``). When a book buffer overflows, the next frame
generated per venue is a fresh snapshot again, so a client that resets on
the Gap is whole again after one snapshot per venue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

Key = tuple[str, ...]


class Event:
    """One generated payload plus where it is routed; serialised at most once."""

    __slots__ = ("_raw", "data", "family", "keys", "snapshot", "venue")

    def __init__(self, family: str, keys: tuple[Key, ...], data: dict[str, Any],
                 snapshot: Callable[[], dict[str, Any]] | None = None) -> None:
        self.family = family
        self.keys = keys
        self.data = data
        self._raw: bytes | None = None
        # Book deltas carry a way to build the venue's full book *now*, used
        # when a subscriber has not seen this venue yet.
        self.snapshot = snapshot
        self.venue: str | None = data.get("venue") if snapshot is not None else None

    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = orjson.dumps(self.data)
        return self._raw


class Subscription:
    __slots__ = (
        "bare",
        "buf",
        "cap",
        "dropped",
        "key",
        "outbox",
        "prefix",
        "seen",
        "suffix",
        "topic",
    )

    def __init__(self, topic: str, key: Key, outbox: Outbox, cap: int, bare: bool = False) -> None:
        self.topic = topic
        self.key = key
        self.outbox = outbox
        self.buf: deque[Event] = deque()
        self.cap = cap
        self.dropped = 0
        self.seen: set[str] = set()  # book venues already snapshotted
        # Lifecycle sockets send payloads bare, with no channel envelope.
        self.bare = bare
        self.prefix = b"" if bare else b'{"channel":' + orjson.dumps(topic) + b',"data":'
        self.suffix = b"" if bare else b"}"

    def push(self, ev: Event) -> None:
        if len(self.buf) >= self.cap:
            self.buf.popleft()
            self.dropped += 1
            self.seen.clear()
        self.buf.append(ev)
        self.outbox.wake.set()


class Outbox:
    """Everything one connection still has to send: control frames, then topics."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.control: deque[tuple[str | None, bytes]] = deque()
        self.subs: dict[str, Subscription] = {}
        self.wake = asyncio.Event()

    def push_control(self, frame: bytes, channel: str | None = None) -> None:
        self.control.append((channel, frame))
        self.wake.set()

    def take(self, limit: int = 256, per_topic: int = 64) -> list[tuple[str | None, bytes, int]]:
        """Up to ``limit`` frames as (channel, bytes, gap_dropped); control first."""
        out: list[tuple[str | None, bytes, int]] = []
        while self.control and len(out) < limit:
            channel, frame = self.control.popleft()
            out.append((channel, frame, 0))
        for sub in list(self.subs.values()):
            if len(out) >= limit:
                break
            if sub.dropped:
                n, sub.dropped = sub.dropped, 0
                out.append((sub.topic, gap_frame(sub.topic, n, sub.bare), n))
            buf, prefix, suffix = sub.buf, sub.prefix, sub.suffix
            for _ in range(min(per_topic, len(buf))):
                out.append((sub.topic, prefix + buf.popleft().raw() + suffix, 0))
        return out

    def pending(self) -> bool:
        return bool(self.control) or any(s.buf or s.dropped for s in self.subs.values())


def gap_frame(topic: str, dropped: int, bare: bool = False) -> bytes:
    if bare:
        return orjson.dumps({"kind": "gap", "dropped": dropped})
    return orjson.dumps({"channel": topic, "gap": {"dropped": dropped}})


class Hub:
    """Routing keys -> subscriptions; the generator publishes here."""

    def __init__(self) -> None:
        self.index: dict[Key, list[Subscription]] = {}

    def add(self, sub: Subscription) -> None:
        self.index.setdefault(sub.key, []).append(sub)

    def remove(self, sub: Subscription) -> None:
        subs = self.index.get(sub.key)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self.index[sub.key]

    def wants(self, key: Key) -> bool:
        return key in self.index

    def publish(self, ev: Event) -> None:
        index = self.index
        for key in ev.keys:
            subs = index.get(key)
            if not subs:
                continue
            if ev.snapshot is None:
                for sub in subs:
                    sub.push(ev)
                continue
            snap: Event | None = None
            venue = ev.venue or ""
            for sub in subs:
                if venue in sub.seen:
                    sub.push(ev)
                    continue
                if snap is None:
                    snap = Event(ev.family, ev.keys, ev.snapshot())
                sub.push(snap)
                sub.seen.add(venue)
