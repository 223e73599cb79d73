"""Keyed dedupe: remembers identities already produced, bounded in memory.

Effectively-once for fills, lifecycle events and TCA reports rests on this:
a record whose identity was already accepted is dropped before producing.
The store is bounded (oldest identities are forgotten first), so memory stays
flat however long the connector runs; its capacity is the window within which
an identity can repeat (``connector.dedupe.window``). At start it is seeded
from the tail of its own Kafka topic (see ``connector.dedupe.rebuild``), so a
restart does not forget what was already written.
"""

from __future__ import annotations

from collections import OrderedDict


class DedupeStore:
    """Insertion-ordered set of identities with a capacity."""

    __slots__ = ("_capacity", "_seen", "evictions", "hits")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self.hits = 0
        self.evictions = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, identity: str) -> bool:
        return identity in self._seen

    def first_time(self, identity: str) -> bool:
        """Record ``identity``; True if it was not seen before."""
        if identity in self._seen:
            self.hits += 1
            return False
        self._seen[identity] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
            self.evictions += 1
        return True

    def seed(self, identity: str) -> None:
        """Remember ``identity`` as the newest (rebuild at start; not a hit)."""
        self._seen[identity] = None
        self._seen.move_to_end(identity)
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def forget(self, identity: str) -> None:
        """Undo ``first_time`` for a record that could not be produced."""
        self._seen.pop(identity, None)
