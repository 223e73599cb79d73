"""Reconnect policy: capped exponential backoff with full jitter (tenacity).

Transient failures (network errors, 5xx handshakes, dropped sockets) retry
forever with backoff; 429 waits at least its Retry-After; 401/403 are fatal
(a bad key must never turn into a retry storm). The backoff resets after a
healthy connection: each healthy session starts a fresh retry sequence.
"""

from __future__ import annotations

import logging
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_random_exponential,
)

from connector.errors import FatalError

log = logging.getLogger(__name__)


class AuthError(FatalError):
    """Sequence refused the credentials (401/403): stop, do not retry."""


class RetryLater(Exception):
    """A transient failure; ``retry_after`` (seconds) is honoured when set."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to the backoff


class WaitBackoffOrRetryAfter:
    """Full-jitter exponential backoff, but never shorter than a Retry-After."""

    def __init__(self, initial: float, cap: float) -> None:
        self._backoff = wait_random_exponential(multiplier=initial, max=cap)
        self._cap = cap

    def __call__(self, state: RetryCallState) -> float:
        delay = float(self._backoff(state))
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            delay = max(delay, min(float(retry_after), 10 * self._cap))
        return delay


def _is_transient(exc: BaseException) -> bool:
    # CancelledError (a BaseException) must end the loop: retrying it would
    # make shutdown wait forever.
    return isinstance(exc, Exception) and not isinstance(exc, FatalError)


def retrying(name: str, initial: float = 0.5, cap: float = 30.0, **kw: Any) -> AsyncRetrying:
    def _before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "reconnecting",
            extra={"dependency": "sequence", "stream": name, "attempt": state.attempt_number,
                   "delay_s": round(delay, 3),
                   "error": f"{type(exc).__name__}: {exc}"},
        )

    return AsyncRetrying(
        retry=retry_if_exception(_is_transient),
        wait=WaitBackoffOrRetryAfter(initial, cap),
        before_sleep=_before_sleep,
        reraise=True,
        **kw,
    )
