"""What the recovery jobs (re-snapshot, backfill) share: pending requests per
key, served once due, retried with a capped backoff after a failure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from connector.source.reconnect import AuthError

log = logging.getLogger(__name__)


async def serve_due(
    pending: Mapping[str, object],
    not_before: Mapping[str, float],
    wake: asyncio.Event,
    take: Callable[[str, asyncio.AbstractEventLoop], Awaitable[None]],
) -> None:
    """Forever: call ``take(key, loop)`` for every pending key whose time has come.

    Sleeps until the earliest ``not_before`` or until ``wake`` is set by a new
    request; cancel to stop.
    """
    loop = asyncio.get_running_loop()
    while True:
        # Cleared before looking, so a request made while we work wakes us.
        wake.clear()
        now = loop.time()
        due = [key for key in pending if not_before.get(key, 0.0) <= now]
        if not due:
            waits = [not_before[key] - now for key in pending]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(waits) if waits else None)
            continue
        for key in due:
            await take(key, loop)


MAX_REASONS = 4  # reasons kept per pending request (they end up in a control record)
# After a failure a key waits its retry base doubled per failure, up to this:
# a permanent error (an unknown symbol) costs one REST call a minute.
MAX_RETRY_DELAY_S = 60.0


@dataclass(slots=True)
class Request:
    """One pending piece of recovery work, coalescing the requests for its key."""

    epoch: int
    reasons: list[str]
    mark: int | None = None  # a watermark taken at the first request (backfill)

    def merge(self, epoch: int, reason: str) -> None:
        self.epoch = max(self.epoch, epoch)
        if reason not in self.reasons and len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


class DueWork:
    """Requests per key, served one key at a time once due, retried on failure.

    A served key waits ``interval_s`` before it is served again (requests in
    between coalesce); a failed one waits ``retry_base_s`` doubled per failure
    (capped) and stays pending with what it asked for. AuthError is fatal and
    ends ``run``. Subclasses implement ``_serve``.
    """

    what = "recovery"  # for the log line of a failure
    key_name = "key"

    def __init__(self, interval_s: float, retry_base_s: float) -> None:
        self._interval = interval_s
        self._retry_base = retry_base_s
        self._pending: dict[str, Request] = {}
        self._not_before: dict[str, float] = {}  # key -> monotonic time
        self._failures: dict[str, int] = {}
        self._wake = asyncio.Event()
        self.completed = 0  # requests fully served
        self.failures = 0

    @property
    def pending(self) -> frozenset[str]:
        return frozenset(self._pending)

    def _request(self, key: str, epoch: int, reason: str, mark: int | None = None) -> None:
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = Request(epoch, [reason], mark)
        else:
            pending.merge(epoch, reason)  # the first request's mark stays
        self._wake.set()

    async def run(self) -> None:
        """Serve due keys forever; cancel to stop. AuthError ends it (fatal)."""
        await serve_due(self._pending, self._not_before, self._wake, self._take)

    async def _serve(self, key: str, request: Request) -> None:
        raise NotImplementedError

    async def _take(self, key: str, loop: asyncio.AbstractEventLoop) -> None:
        request = self._pending.pop(key)
        # Popped before serving: a request that arrives meanwhile may describe
        # a gap after this one was served, so it needs its own turn.
        self._not_before[key] = loop.time() + self._interval
        try:
            await self._serve(key, request)
        except AuthError:
            raise
        except Exception as exc:  # noqa: BLE001 - any REST failure: try this key later
            self.failures += 1
            fails = self._failures.get(key, 0) + 1
            self._failures[key] = fails
            delay = min(MAX_RETRY_DELAY_S, self._retry_base * 2 ** (fails - 1))
            self._not_before[key] = loop.time() + delay
            log.warning(f"{self.what} failed; will retry", extra={
                self.key_name: key, "error": f"{type(exc).__name__}: {exc}"[:300],
                "retry_in_s": delay, "failures": fails})
            # still owed, with the older request's mark (the outage starts there)
            again = self._pending.get(key)
            if again is not None:
                for reason in again.reasons:
                    request.merge(again.epoch, reason)
            self._pending[key] = request
        else:
            self.completed += 1
            self._failures.pop(key, None)
