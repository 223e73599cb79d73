"""Re-snapshot market data from REST after a gap or a reconnect.

Sequence cannot replay market data it dropped, so after a Gap (or a
reconnect) the connector writes a control record ("re-snapshot follows")
and then a fresh full state taken from REST: an NBBO for ``prices:<s>``,
one ``is_snapshot`` frame per venue for ``book:<s>`` (downstream book
builders reset on it), the current rates for ``funding*``. Channels with no
REST counterpart (``fair_price``, ``traces``) get the control record only.

Requests are cheap and synchronous (the gap listener runs inside the bridge
and must not block); one worker does the fetching. A burst of requests for
one channel is coalesced into one fetch, and a channel is fetched at most
once per ``min_interval_s``: a gap storm costs a bounded number of REST
calls, and a request inside the interval is deferred, never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector.control.due import serve_due
from connector.control.handoff import BoundedHandoff, Inbound
from connector.control.reconnect import AuthError
from connector.normalize.records import ControlKind
from connector.observe.metrics import Metrics
from connector.protocol.channels import split_channel
from connector.source.rest import SequenceRest

log = logging.getLogger(__name__)

PRICE_FIELDS = ("symbol", "instrument_type", "best_bid_px_1e9", "best_bid_sz_1e8",
                "best_bid_venue", "best_ask_px_1e9", "best_ask_sz_1e8", "best_ask_venue",
                "spread_bps", "ts_ns")
TRADING_CHANNELS = frozenset({"orders", "fills", "tca"})
# After a failed fetch the channel waits min_interval_s doubled per failure,
# up to this: a permanent error (unknown symbol) costs one call a minute.
MAX_RETRY_DELAY_S = 60.0
MAX_REASONS = 4

Backfill = Callable[[str, int, str], None]


@dataclass(slots=True)
class _Pending:
    epoch: int
    reasons: list[str]

    def merge(self, epoch: int, reason: str) -> None:
        self.epoch = max(self.epoch, epoch)
        if reason not in self.reasons and len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


# -- pure mapping: REST shapes -> stream payload shapes ------------------------------
def prices_from_quote(quote: dict[str, Any], now_ns: int) -> dict[str, Any]:
    """The ``prices:<s>`` stream payload carried by a quote."""
    data = {k: quote[k] for k in PRICE_FIELDS if k in quote}
    if not isinstance(data.get("ts_ns"), int):
        data["ts_ns"] = now_ns
    return data


def books_from_quote(quote: dict[str, Any], now_ns: int) -> list[dict[str, Any]]:
    """One ``book:<s>`` snapshot payload per venue of a quote."""
    fallback = quote.get("ts_ns") if isinstance(quote.get("ts_ns"), int) else now_ns
    books = []
    for venue in quote.get("venues") or []:
        if not isinstance(venue, dict):
            continue
        # A venue whose book never ticked has no time of its own; the quote's
        # time is the best statement of when this state was true.
        ts = venue.get("ts_ns")
        books.append({
            "symbol": quote.get("symbol"),
            "venue": venue.get("venue"),
            "instrument_type": venue.get("instrument_type", quote.get("instrument_type")),
            "bids": venue.get("bids", []),
            "asks": venue.get("asks", []),
            "ts_ns": ts if isinstance(ts, int) and ts > 0 else fallback,
            "is_snapshot": True,
            "checksum": venue.get("checksum"),
        })
    return books


def funding_row(row: dict[str, Any], now_ns: int) -> dict[str, Any]:
    """A REST funding row as a ``funding`` payload (REST rows have no ``ts_ns``)."""
    if isinstance(row.get("ts_ns"), int):
        return row
    age = row.get("snapshot_age_ms")
    # The row says how old its numbers are; that is when they were true.
    age_ns = age * 1_000_000 if isinstance(age, int) and age >= 0 else 0
    return {**row, "ts_ns": now_ns - age_ns}


def funding_filters(channel: str) -> tuple[str | None, str | None]:
    """(venue, symbol) of ``funding``, ``funding:<v>``, ``funding:<v>:<s>``."""
    _, suffix = split_channel(channel)
    if not suffix:
        return None, None
    venue, _, symbol = suffix.partition(":")
    return venue or None, symbol or None


class Resnapshotter:
    def __init__(
        self,
        rest: SequenceRest,
        handoff: BoundedHandoff,
        metrics: Metrics,
        *,
        min_interval_s: float = 5.0,
        depth: int = 10,
        backfill: Backfill | None = None,
    ) -> None:
        self._rest = rest
        self._handoff = handoff
        self._m = metrics
        self._interval = min_interval_s
        self._depth = depth
        self._backfill = backfill
        self._pending: dict[str, _Pending] = {}
        self._not_before: dict[str, float] = {}  # channel -> monotonic time
        self._failures: dict[str, int] = {}
        self._wake = asyncio.Event()
        self.fetches = 0  # REST snapshot fetches started
        self.completed = 0  # requests fully served (items on the hand-off)
        self.failures = 0

    @property
    def pending(self) -> frozenset[str]:
        return frozenset(self._pending)

    def request(self, channel: str, epoch: int, reason: str) -> None:
        """Ask for a re-snapshot of ``channel``; never blocks, never raises."""
        prefix, _ = split_channel(channel)
        if prefix in TRADING_CHANNELS and self._backfill is not None:
            # Trading history is recovered by paging, not by a snapshot.
            self._backfill(prefix, epoch, reason)
            return
        pending = self._pending.get(channel)
        if pending is None:
            self._pending[channel] = _Pending(epoch, [reason])
        else:
            pending.merge(epoch, reason)
        self._wake.set()

    async def run(self) -> None:
        """Fetch due channels forever; cancel to stop. AuthError ends it (fatal)."""
        await serve_due(self._pending, self._not_before, self._wake, self._take)

    async def _take(self, channel: str, loop: asyncio.AbstractEventLoop) -> None:
        pending = self._pending.pop(channel)
        # Popped before fetching: a request that arrives during the fetch may
        # describe a gap after the snapshot was taken, so it needs its own.
        self._not_before[channel] = loop.time() + self._interval
        try:
            await self.snapshot(channel, pending.epoch, pending.reason)
        except AuthError:
            raise
        except Exception as exc:  # noqa: BLE001 - any REST failure: try this channel later
            self.failures += 1
            fails = self._failures.get(channel, 0) + 1
            self._failures[channel] = fails
            delay = min(MAX_RETRY_DELAY_S, self._interval * 2 ** (fails - 1))
            self._not_before[channel] = loop.time() + delay
            log.warning("re-snapshot failed; will retry", extra={
                "channel": channel, "error": f"{type(exc).__name__}: {exc}"[:300],
                "retry_in_s": delay, "failures": fails})
            again = self._pending.get(channel)
            if again is None:
                self._pending[channel] = pending
            else:
                again.merge(pending.epoch, pending.reason)
        else:
            self.completed += 1
            self._failures.pop(channel, None)

    async def snapshot(self, channel: str, epoch: int, reason: str) -> None:
        """Fetch one channel's state and put control + snapshot items on the hand-off.

        Fetches first and puts after: a failed fetch writes nothing, so the
        control record is always followed by the snapshot it announces.
        """
        prefix, suffix = split_channel(channel)
        now = time.time_ns()
        family = prefix
        if prefix in ("prices", "book") and suffix:
            self.fetches += 1
            quote = await self._rest.quote(suffix, self._depth)
            now = time.time_ns()
            rows = ([prices_from_quote(quote, now)] if prefix == "prices"
                    else books_from_quote(quote, now))
        elif prefix == "funding":
            self.fetches += 1
            venue, symbol = funding_filters(channel)
            rates = await self._rest.funding_rates(venue, symbol)
            now = time.time_ns()
            rows = [funding_row(r, now) for r in rates]
        else:
            log.info("no REST snapshot for channel", extra={"channel": channel})
            await self._put_control(channel, epoch,
                                    f"{reason}; no REST snapshot exists for this channel")
            return
        await self._put_control(channel, epoch, reason)
        for data in rows:
            await self._handoff.put(Inbound(
                source="rest", stream="resnapshot", raw=None, recv_ns=now, epoch=epoch,
                family=family, data=data, channel=channel))
        self._m.resnapshots.labels(family).inc()
        log.info("re-snapshot", extra={"channel": channel, "records": len(rows),
                                       "epoch": epoch})

    async def _put_control(self, channel: str, epoch: int, reason: str) -> None:
        await self._handoff.put(Inbound(
            source="connector", stream="control", raw=None, recv_ns=time.time_ns(),
            epoch=epoch, channel=channel,
            control=(ControlKind.resnapshot, channel, {"reason": reason})))
