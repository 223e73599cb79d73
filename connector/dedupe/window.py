"""How many identities a dedupe store remembers: as many as can actually repeat.

A duplicate reaches the bridge only from a bounded distance back, and each
source of repeats has its own bound, set by Sequence or by our settings:

- a REST backfill (after a start, a gap or a reconnect) pages back through
  at most ``backfill_page_size * backfill_max_pages`` items, newest first;
  every one of them may already have been written;
- Sequence buffers at most 4096 entries per client and topic
  (docs/upstream/streams.md, "Lagged-client semantics"; beyond that it drops them and
  says so with a Gap). A TCA report can arrive on two live paths, the
  unified socket and the SSE stream, and the later copy trails the earlier
  by at most the slower path's buffer; events still buffered when a
  backfill reads REST arrive after it wrote them;
- each lifecycle connect replays the last 128 events.

Older identities cannot come back through any of these, and the compacted
topics (``sequence.fills``, ``sequence.orders``, ``sequence.markets.*``) keep
one record per key for good: they, not this memory, are the long-term
record. A store sized by these bounds is a few MB per family, where the old
fixed 1,000,000 identities grew to ~160 MB per family on a busy account.
"""

from __future__ import annotations

from connector.config import Settings

# Sequence's per-client, per-topic buffer (docs/upstream/streams.md, "Lagged-client
# semantics").
STREAM_BUFFER = 4096
# TCA reports come on /v1/stream and on /v1/tca/stream; a copy on one path
# trails the other by at most one buffer.
LIVE_PATHS = 2
# Each connect of a lifecycle socket replays the last 128 events
# (docs/upstream/streams.md, lifecycle streams).
LIFECYCLE_REPLAY = 128
# While a backfill pages back (up to max_pages REST calls, each retried
# within its budget), the live stream keeps adding new identities and pushes
# the oldest out; twice the sum keeps every repeat source inside the window
# meanwhile. Costs ~4 MB per family at the default settings.
HEADROOM = 2


def dedupe_window(backfill_page_size: int, backfill_max_pages: int) -> int:
    """Identities per deduplicated family that can still repeat (see module doc)."""
    backfill_depth = backfill_page_size * backfill_max_pages
    return HEADROOM * (LIVE_PATHS * STREAM_BUFFER + LIFECYCLE_REPLAY + backfill_depth)


def dedupe_capacity(settings: Settings) -> int:
    """``connector.dedupe_capacity`` when set, else the window derived from the settings."""
    override = settings.connector.dedupe_capacity
    if override is not None:
        return override
    s = settings.sequence
    return dedupe_window(s.backfill_page_size, s.backfill_max_pages)
