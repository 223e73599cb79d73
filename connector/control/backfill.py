"""Backfill orders, fills and TCA reports from REST after a gap or a reconnect.

Trading events must not be lost (docs/DESIGN.md, delivery semantics), and REST
keeps their history, newest first. After a gap or a reconnect the worker
pages back from the newest item until it reaches what was already written,
then puts the recovered items on the hand-off oldest first, behind a control
record saying a backfill follows. The bridge dedupes fills and TCA, so an
item written twice costs nothing; orders are filtered here (see below).

Where to stop paging, in order of precedence:

- ``has_more`` is false: the whole history was read;
- a whole page is "old": every item is ``known`` (in the dedupe store) or,
  for fills and orders, older than the watermark minus a slack (events from
  before the outage were already written; the slack covers events written
  out of time order across venues);
- ``max_pages``: history beyond that is not backfilled (a warning says so).

So the work of one backfill is bounded: at most ``max_pages`` requests
(each within the client's own attempt budget) and ``max_pages * page_size``
items held in memory.

Watermarks are taken when a family's backfill is first requested, so events
the live stream writes after the reconnect do not move the stop line past
the outage.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast

from connector.control.due import DueWork, Request
from connector.dedupe.window import dedupe_window
from connector.handoff import BoundedHandoff, ControlRequest, RestKind, RestRecord
from connector.normalize.records import ControlKind
from connector.observe.metrics import Metrics
from connector.protocol.families import ACCOUNT_CHANNELS, Family
from connector.source.rest import PageKind, SequenceRest

log = logging.getLogger(__name__)

FAMILIES = tuple(sorted(ACCOUNT_CHANNELS))
TS_FIELD = {"fills": "ts_unix_ns", "orders": "updated_unix_ns"}
ID_FIELD = {"fills": "venue_execution_id", "orders": "node_order_id", "tca": "node_order_id"}
DEFAULT_SLACK_NS = 5_000_000_000

Known = Callable[[str, dict[str, Any]], bool]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def page_is_old(family: str, rows: list[dict[str, Any]], known: Known,
                floor_ns: int | None) -> bool:
    """Whether a whole page lies before what was already written."""
    if not rows:
        return True
    field = TS_FIELD.get(family)

    def old(row: dict[str, Any]) -> bool:
        if known(family, row):
            return True
        if field is None or floor_ns is None:
            return False
        ts = _int(row.get(field))
        return ts is not None and ts < floor_ns

    return all(old(r) for r in rows)


def oldest_first(family: str, newest_first: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Collected pages -> emit order: oldest first, one copy per identity.

    Offset paging over a list that grows at its head sees some items twice
    (they slide into the next page). One copy is kept; for orders the newest
    state, so a key never goes back in time within one backfill.
    """
    id_field = ID_FIELD[family]
    ts_field = TS_FIELD.get(family)
    chosen: dict[Any, dict[str, Any]] = {}
    anonymous: list[dict[str, Any]] = []
    for row in reversed(newest_first):
        ident = row.get(id_field)
        if ident is None:
            anonymous.append(row)  # the bridge will dead-letter it, with its bytes
            continue
        prev = chosen.get(ident)
        if prev is None or (ts_field is not None
                            and (_int(row.get(ts_field)) or 0) >= (_int(prev.get(ts_field)) or 0)):
            chosen.pop(ident, None)  # re-insert: position follows the newest copy
            chosen[ident] = row
    rows = [*anonymous, *chosen.values()]
    if ts_field is not None and all(_int(r.get(ts_field)) is not None for r in rows):
        rows.sort(key=lambda r: cast(int, r[ts_field]))  # stable: ties keep REST order
    return rows


class Backfiller(DueWork):
    what = "backfill"
    key_name = "family"

    def __init__(
        self,
        rest: SequenceRest,
        handoff: BoundedHandoff,
        metrics: Metrics,
        *,
        known: Known,
        page_size: int = 100,
        max_pages: int = 50,
        slack_ns: int = DEFAULT_SLACK_NS,
        min_interval_s: float = 1.0,
    ) -> None:
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be within 1..1000 (the API's limit)")
        if max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        super().__init__(interval_s=min_interval_s, retry_base_s=max(min_interval_s, 0.5))
        self._rest = rest
        self._handoff = handoff
        self._m = metrics
        self._known = known
        self._page_size = page_size
        self._max_pages = max_pages
        self._slack = slack_ns
        self.watermarks: dict[str, int] = {}  # one per family of TS_FIELD: bounded
        # Latest written state per order id, most recently updated last. A
        # backfill reads at most page_size * max_pages rows, so an order state
        # it can bring back was written within the same window the dedupe
        # stores keep (connector.dedupe.window); beyond it the watermark rule
        # alone decides which order states are new. The fixed 100,000 before
        # held 21 MB (tracemalloc) once a busy account had filled it, for
        # orders no backfill could bring back.
        self._order_memory = dedupe_window(Family.orders, page_size, max_pages)
        self._orders: OrderedDict[str, int] = OrderedDict()
        self.pages_fetched = 0

    # -- called by the lead for every trading record that goes to Kafka -----------
    def observe(self, family: str, data: dict[str, Any]) -> None:
        field = TS_FIELD.get(family)
        if field is None:
            return
        ts = _int(data.get(field))
        if ts is None:
            return
        if ts > self.watermarks.get(family, -1):
            self.watermarks[family] = ts
        if family == "orders":
            oid = data.get("node_order_id")
            if isinstance(oid, str):
                if ts >= self._orders.get(oid, -1):
                    self._orders[oid] = ts
                    self._orders.move_to_end(oid)
                if len(self._orders) > self._order_memory:
                    self._orders.popitem(last=False)

    def is_stale(self, family: str, data: dict[str, Any]) -> bool:
        """True for an order state older than one already written for that order.

        The live stream and a backfill share the hand-off, so a newer state
        may be queued ahead of a backfilled one. The lead may call this in the
        bridge worker (where ``observe`` runs, in hand-off order) for items
        with ``stream == "backfill"`` and drop stale ones: then a compacted
        orders topic never ends on an older state.
        """
        if family != "orders":
            return False
        seen = self._orders.get(str(data.get("node_order_id")))
        ts = _int(data.get("updated_unix_ns"))
        return seen is not None and ts is not None and ts < seen

    # -- requests and the worker -------------------------------------------------------
    def request(self, family: str, epoch: int, reason: str) -> None:
        """Ask for a backfill of ``family``; never blocks. Coalesced per family."""
        if family not in FAMILIES:
            raise ValueError(f"cannot backfill {family!r}; one of {FAMILIES}")
        # the watermark when first asked: where the outage began
        self._request(family, epoch, reason, self.watermarks.get(family))

    async def _serve(self, family: str, request: Request) -> None:
        await self.backfill(family, request.epoch, request.reason, request.mark)

    async def backfill(self, family: str, epoch: int, reason: str,
                       watermark: int | None = None) -> int:
        """Page back, then put control + recovered items; returns items put."""
        floor = watermark - self._slack if watermark is not None else None
        collected = await self._collect(family, floor)
        rows = oldest_first(family, collected)
        if family == "orders":
            # Older order states were written already; re-writing them would
            # move a compacted key back in time.
            rows = [r for r in rows if not self.is_stale(family, r)
                    and (floor is None or (_int(r.get("updated_unix_ns")) or 0) >= floor)]
        else:
            rows = [r for r in rows if not self._is_known(family, r)]
        await self._handoff.put(ControlRequest(
            kind=ControlKind.backfill, topic=family, fields={"reason": reason},
            recv_ns=time.time_ns(), epoch=epoch))
        now = time.time_ns()
        for row in rows:
            await self._handoff.put(RestRecord(
                kind=RestKind.backfill, family=family, data=row, channel=family,
                recv_ns=now, epoch=epoch))
        if rows:
            self._m.backfilled.labels(family).inc(len(rows))
        log.info("backfill", extra={"family": family, "fetched": len(collected),
                                    "records": len(rows), "epoch": epoch})
        return len(rows)

    async def _collect(self, family: str, floor: int | None) -> list[dict[str, Any]]:
        collected: list[dict[str, Any]] = []
        offset = 0
        for _ in range(self._max_pages):
            rows, has_more = await self._rest.page(cast(PageKind, family), self._page_size,
                                                   offset)
            self.pages_fetched += 1
            collected.extend(rows)
            offset += len(rows)
            if not has_more or page_is_old(family, rows, self._is_known, floor):
                return collected
        log.warning("backfill stopped at max_pages; older history is not backfilled",
                    extra={"family": family, "max_pages": self._max_pages,
                           "page_size": self._page_size})
        return collected

    def _is_known(self, family: str, row: dict[str, Any]) -> bool:
        try:
            return bool(self._known(family, row))
        except Exception:  # noqa: BLE001 - a row without its key is simply not known
            return False
