"""Per-topic bounded buffers, Gap frames and per-venue book snapshots."""

from __future__ import annotations

import orjson

from connector.sandbox.simulator.bus import Event, Hub, Outbox, Subscription


def frames(outbox: Outbox) -> list[dict[str, object]]:
    return [orjson.loads(raw) for _, raw, _ in outbox.take(limit=10_000, per_topic=10_000)]


def test_overflow_drops_oldest_and_sends_gap_first() -> None:
    hub, outbox = Hub(), Outbox(4)
    sub = Subscription("fills", ("fills",), outbox, 4)
    outbox.subs["fills"] = sub
    hub.add(sub)
    for i in range(10):
        hub.publish(Event("fills", (("fills",),), {"i": i}))
    out = frames(outbox)
    assert out[0] == {"channel": "fills", "gap": {"dropped": 6}}
    assert [f["data"]["i"] for f in out[1:]] == [6, 7, 8, 9]  # type: ignore[index]
    assert frames(outbox) == []


def test_control_frames_go_first() -> None:
    hub, outbox = Hub(), Outbox(8)
    sub = Subscription("orders", ("orders",), outbox, 8)
    outbox.subs["orders"] = sub
    hub.add(sub)
    hub.publish(Event("orders", (("orders",),), {"n": 1}))
    outbox.push_control(b'{"subscribed":["orders"],"rejected":[]}')
    out = frames(outbox)
    assert out[0] == {"subscribed": ["orders"], "rejected": []}
    assert out[1] == {"channel": "orders", "data": {"n": 1}}


def test_book_snapshot_once_per_venue_and_again_after_overflow() -> None:
    hub, outbox = Hub(), Outbox(3)
    sub = Subscription("book:X", ("book", "X"), outbox, 3)
    outbox.subs["book:X"] = sub
    hub.add(sub)

    def book(venue: str, n: int) -> Event:
        return Event("book", (("book", "X"),), {"venue": venue, "n": n, "is_snapshot": False},
                     snapshot=lambda: {"venue": venue, "n": n, "is_snapshot": True})

    hub.publish(book("a", 1))
    hub.publish(book("b", 2))
    hub.publish(book("a", 3))
    snaps = [f["data"]["is_snapshot"] for f in frames(outbox)]  # type: ignore[index]
    assert snaps == [True, True, False]
    for n in range(4, 9):
        hub.publish(book("a", n))
    out = frames(outbox)
    assert "gap" in out[0]
    assert any(f["data"]["is_snapshot"] for f in out[1:])  # type: ignore[index]
