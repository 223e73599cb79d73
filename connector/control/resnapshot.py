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
from typing import Any

from connector.control.due import DueWork, Request
from connector.handoff import BoundedHandoff, ControlRequest, RestKind, RestRecord
from connector.normalize.records import ControlKind
from connector.observe.metrics import Metrics
from connector.protocol.channels import split_channel
from connector.protocol.families import ACCOUNT_CHANNELS
from connector.source.rest import SequenceRest

log = logging.getLogger(__name__)

PRICE_FIELDS = ("symbol", "instrument_type", "best_bid_px_1e9", "best_bid_sz_1e8",
                "best_bid_venue", "best_ask_px_1e9", "best_ask_sz_1e8", "best_ask_venue",
                "spread_bps", "ts_ns")
TRADING_CHANNELS = ACCOUNT_CHANNELS
# Channels whose last fetch time is remembered before expired ones are
# dropped. Channels are named by the server's Gap frames, so nothing else
# bounds them; a time already passed means the same as no entry.
MAX_REMEMBERED_CHANNELS = 1024

Backfill = Callable[[str, int, str], None]


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


class Resnapshotter(DueWork):
    what = "re-snapshot"
    key_name = "channel"

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
        super().__init__(interval_s=min_interval_s, retry_base_s=min_interval_s)
        self._rest = rest
        self._handoff = handoff
        self._m = metrics
        self._depth = depth
        self._backfill = backfill
        self.fetches = 0  # REST snapshot fetches started

    def request(self, channel: str, epoch: int, reason: str) -> None:
        """Ask for a re-snapshot of ``channel``; never blocks, never raises."""
        prefix, _ = split_channel(channel)
        if prefix in TRADING_CHANNELS and self._backfill is not None:
            # Trading history is recovered by paging, not by a snapshot.
            self._backfill(prefix, epoch, reason)
            return
        self._request(channel, epoch, reason)

    async def _serve(self, channel: str, request: Request) -> None:
        self._forget_expired()
        await self.snapshot(channel, request.epoch, request.reason)

    def _forget_expired(self) -> None:
        """Drop not-before times already passed, for channels not pending again."""
        if len(self._not_before) <= MAX_REMEMBERED_CHANNELS:
            return
        now = asyncio.get_running_loop().time()
        for key in [k for k, t in self._not_before.items()
                    if t <= now and k not in self._pending]:
            del self._not_before[key]
            self._failures.pop(key, None)

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
            await self._handoff.put(RestRecord(
                kind=RestKind.resnapshot, family=family, data=data, channel=channel,
                recv_ns=now, epoch=epoch))
        self._m.resnapshots.labels(family).inc()
        log.info("re-snapshot", extra={"channel": channel, "records": len(rows),
                                       "epoch": epoch})

    async def _put_control(self, channel: str, epoch: int, reason: str) -> None:
        await self._handoff.put(ControlRequest(
            kind=ControlKind.resnapshot, topic=channel, fields={"reason": reason},
            recv_ns=time.time_ns(), epoch=epoch))
