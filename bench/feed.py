"""The bench feeds: N pre-encoded ``/v1/stream`` frames, deterministic from a seed.

Payloads come from the simulator's own generators (``simulator/feed.py`` and
``trading.py``), so every shape is the one the connector is tested against;
only the clock is fake (1 µs per event from a fixed epoch), which makes the
bytes identical for a given (feed, N, seed). Book frames follow the vendor
rule: the first frame per (symbol, venue) is a full snapshot.

Frames are stored one per line (orjson never writes a raw newline), so every
process of a run (feed server, peers, limits) reads the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from connector.sandbox.simulator.bus import Event
from connector.sandbox.simulator.feed import Feed

FEEDS = ("prices", "book", "mix")
EPOCH_NS = 1_760_000_000_000_000_000
# The realistic mix of the issue: prices 40%, book 40%, funding/fair_price
# 10%, orders/fills/tca 10% (the last two groups split in generation order).
MIX: tuple[tuple[str, float], ...] = (("prices", 0.40), ("book", 0.40),
                                      ("funding_fair", 0.10), ("trading", 0.10))
_BARE = frozenset({"funding", "fair_price", "orders", "fills", "tca"})


def channel_of(event: Event) -> str:
    """The channel string a subscriber of the event's most specific topic sees."""
    if event.family in _BARE:
        return event.family
    return ":".join(event.keys[0])


class _Source:
    """Pulls events of one kind out of a simulator Feed, one at a time."""

    def __init__(self, seed: int) -> None:
        self._now = EPOCH_NS
        self._out: list[Event] = []
        self.feed = Feed(seed, self._out.append, clock=self._clock)
        self._seen_books: set[tuple[str, str]] = set()

    def _clock(self) -> int:
        self._now += 1_000
        return self._now

    def _drain(self) -> list[bytes]:
        frames = []
        for ev in self._out:
            data = ev.data
            if ev.snapshot is not None:
                venue_key = (data["symbol"], data["venue"])
                if venue_key not in self._seen_books:
                    self._seen_books.add(venue_key)
                    data = ev.snapshot()
            frames.append(orjson.dumps({"channel": channel_of(ev), "data": data}))
        self._out.clear()
        return frames

    def pull(self, step: Callable[[], None]) -> list[bytes]:
        step()
        return self._drain()

    def book(self) -> list[bytes]:
        return self.pull(self.feed.step_book)

    def prices(self) -> list[bytes]:
        # Books move between NBBO updates, as they do on a live feed.
        self.feed.step_book()
        self._out.clear()
        return self.pull(self.feed.step_prices)

    def funding_fair(self) -> list[bytes]:
        feed = self.feed
        step = feed.step_funding if feed.rng.random() < 0.5 else feed.step_fair_price
        return self.pull(step)

    def trading(self) -> list[bytes]:
        return self.pull(self.feed.trading.step)


def generate(feed: str, count: int, seed: int = 1) -> list[bytes]:
    """``count`` JSON frames ``{"channel": ..., "data": ...}`` of one feed."""
    if feed not in FEEDS:
        raise ValueError(f"unknown feed {feed!r} (one of {', '.join(FEEDS)})")
    source = _Source(seed)
    frames: list[bytes] = []
    pending: dict[str, list[bytes]] = {name: [] for name, _ in MIX}
    pick = random.Random(f"bench-mix:{seed}")  # noqa: S311 - a seeded mix, not a secret
    names = [name for name, _ in MIX]
    weights = [w for _, w in MIX]
    while len(frames) < count:
        name = feed if feed != "mix" else pick.choices(names, weights)[0]
        queue = pending.setdefault(name, [])
        while not queue:
            queue.extend(getattr(source, name)())
        frames.append(queue.pop(0))
    return frames


def channels(frames: list[bytes]) -> list[str]:
    """Distinct channels in first-seen order: what a client subscribes to."""
    seen: dict[str, None] = {}
    for frame in frames:
        seen.setdefault(orjson.loads(frame)["channel"], None)
    return list(seen)


def write_frames(path: Path, frames: list[bytes]) -> None:
    path.write_bytes(b"\n".join(frames) + b"\n")


def read_frames(path: Path, limit: int | None = None) -> list[bytes]:
    frames = path.read_bytes().split(b"\n")[:-1]
    return frames if limit is None else frames[:limit]


def iter_payloads(frames: list[bytes]) -> Iterator[tuple[str, dict[str, object]]]:
    for frame in frames:
        obj = orjson.loads(frame)
        yield obj["channel"], obj["data"]
