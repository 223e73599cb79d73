"""Waiting for a dependency at start: the registry, Kafka (and, by deadline, Sequence).

A dependency that is not there yet is retried with capped exponential
backoff and jitter (so a fleet restarted together does not retry in step),
one warning per failed attempt naming the dependency, the error and the next
delay, while ``/readyz`` says what is awaited. ``connector.startup_timeout_s``
> 0 turns a wait past it into ``StartupTimeoutError`` (exit status 4); 0
waits forever, which suits Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from connector.errors import StartupTimeoutError, TransientError
from connector.observe.logs import mask

log = logging.getLogger("connector.app")

STARTUP_BACKOFF_INITIAL_S = 0.5
STARTUP_BACKOFF_CAP_S = 10.0

T = TypeVar("T")


class StoppedDuringStart(Exception):
    """``stop()`` came while start-up waited for a dependency: a clean exit."""


class StartupWaiter:
    """What start-up is waiting for, and the retry loop that waits."""

    def __init__(self, limit_s: float, stop: asyncio.Event) -> None:
        self.limit_s = limit_s
        self.started_at = time.monotonic()
        self._stop = stop
        self.waiting_for: str | None = "start-up"  # None once start-up is done
        self.waiting_error: str | None = None

    def done(self) -> None:
        self.waiting_for = self.waiting_error = None

    async def until_up(self, dependency: str, step: str, call: Callable[[], T],
                       target: str) -> T:
        """Run the blocking ``call`` (in a thread) until it stops raising
        ``TransientError``. ``FatalError`` is raised at once; past the limit
        (when > 0) ``StartupTimeoutError``; ``stop()`` meanwhile
        ``StoppedDuringStart``."""
        limit = self.limit_s
        self.waiting_for, self.waiting_error = dependency, None
        attempt = 0
        while True:
            if self._stop.is_set():  # SIGTERM must not wait for a dependency
                raise StoppedDuringStart
            attempt += 1
            try:
                return await asyncio.to_thread(call)
            except TransientError as exc:
                error = mask(str(exc))
            waited = time.monotonic() - self.started_at
            if limit > 0 and waited >= limit:
                raise StartupTimeoutError(dependency, waited, error) from None
            delay = min(STARTUP_BACKOFF_CAP_S, STARTUP_BACKOFF_INITIAL_S * 2 ** (attempt - 1))
            delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
            if limit > 0:
                delay = min(delay, limit - waited)
            self.waiting_error = error
            log.warning("waiting for dependency", extra={
                "dependency": dependency, "target": target, "step": step, "error": error,
                "attempt": attempt,
                "delay_s": round(delay, 2), "waited_s": round(waited, 1)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
