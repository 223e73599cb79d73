"""How many identities a dedupe store remembers: as many as can actually repeat.

A duplicate reaches the bridge only from a bounded distance back, and each
source of repeats has its own bound, set by Sequence or by our settings:

- a REST backfill (orders, fills, TCA; after a start, a gap or a reconnect)
  pages back through at most ``backfill_page_size * backfill_max_pages``
  items, newest first; every one of them may already have been written;
- Sequence buffers at most 4096 entries per client and topic
  (docs/upstream/streams.md, "Lagged-client semantics"; beyond that it drops
  them and says so with a Gap): events still buffered when a backfill reads
  REST arrive after it wrote them. A TCA report also arrives on two live
  paths, the unified socket and the SSE stream, and the later copy trails
  the earlier by at most the slower path's buffer;
- each lifecycle connect replays the last 128 events, the newest the server
  has, so the newest 128 we received; nothing else repeats there (the
  server dedupes its edges; lifecycle has no backfill).

So each family gets its own window. Older identities cannot come back, and
the compacted topics (``sequence.fills``, ``sequence.orders``,
``sequence.markets.*``) keep one record per key for good: they, not this
memory, are the long-term record. At the default settings the windows are
18,192 (fills, and the backfill's order memory), 26,384 (TCA) and 256
(lifecycle) identities, 3.4, 5.9 and 0.05 MB once full (tracemalloc, dict
tables included; the orders memory 4.3 MB), where the old fixed 1,000,000
per family grew to ~150 MB each on a busy account (measured for fills).
"""

from __future__ import annotations

from connector.config import Settings
from connector.protocol.families import LIFECYCLE_FAMILIES, Family

# Sequence's per-client, per-topic buffer (docs/upstream/streams.md,
# "Lagged-client semantics").
STREAM_BUFFER = 4096
# Live paths per family: TCA comes on /v1/stream and on /v1/tca/stream.
LIVE_PATHS = {Family.tca: 2}
# Each connect of a lifecycle socket replays the last 128 events
# (docs/upstream/streams.md, lifecycle streams).
LIFECYCLE_REPLAY = 128
LIFECYCLE = frozenset(LIFECYCLE_FAMILIES.values())
# While a backfill pages back (up to max_pages REST calls, each retried
# within its budget), the live stream keeps adding new identities and pushes
# the oldest out; twice the sum keeps every repeat source inside the window
# meanwhile, for a few MB per family.
HEADROOM = 2


def dedupe_window(family: Family, backfill_page_size: int, backfill_max_pages: int) -> int:
    """Identities of ``family`` that can still repeat (see the module doc)."""
    if family in LIFECYCLE:
        return HEADROOM * LIFECYCLE_REPLAY
    backfill_depth = backfill_page_size * backfill_max_pages
    return HEADROOM * (backfill_depth + LIVE_PATHS.get(family, 1) * STREAM_BUFFER)


def dedupe_capacity(settings: Settings) -> dict[Family, int]:
    """Per family: ``connector.dedupe_capacity`` when set, else its derived window."""
    override = settings.connector.dedupe_capacity
    s = settings.sequence
    return {f: override if override is not None
            else dedupe_window(f, s.backfill_page_size, s.backfill_max_pages)
            for f in Family}
