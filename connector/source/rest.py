"""Sequence's REST API: the one place the connector speaks plain HTTP to Sequence.

Used for re-snapshots (quotes, funding rates) and backfill (orders, fills,
TCA pages). The retry policy is the vendor SDK's, from ``docs/upstream/rest.md``:

- 429: wait ``Retry-After`` seconds when given, else exponential backoff
  capped at ``backoff_cap_s``;
- 502/503/504, network errors and timeouts: exponential backoff (0.5 s, 1 s,
  2 s ...), within ``max_attempts`` in total;
- 401/403: ``AuthError`` at once (a bad key must never become a retry storm);
- any other 4xx and 500: ``RestError`` at once, carrying the vendor's
  ``code`` and ``request_id`` so an operator can quote them to the vendor.

When the attempts run out the last transient failure surfaces as
``RestUnavailable``, which is both a ``RestError`` and a ``TransientError``:
callers may retry the whole operation later. The API key only ever lives in
the session's headers; it is never logged nor put in an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, Self
from urllib.parse import quote as url_quote

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
)
from yarl import URL

from connector.errors import ConnectorError, TransientError
from connector.source.reconnect import AuthError, parse_retry_after

log = logging.getLogger(__name__)

PageKind = Literal["fills", "orders", "tca"]

# Where each page kind keeps its rows in the ``{<rows>, total, limit, offset,
# has_more}`` envelope.
PAGE_PATHS: dict[str, tuple[str, str]] = {
    "fills": ("/v1/fills", "fills"),
    "orders": ("/v1/orders", "orders"),
    "tca": ("/v1/tca", "reports"),
}
RETRY_STATUSES = frozenset({429, 502, 503, 504})
AUTH_STATUSES = frozenset({401, 403})
# A server may ask for any Retry-After; past this we would rather fail the
# call and let the caller reschedule than park a worker for minutes.
MAX_RETRY_AFTER_S = 60.0
USER_AGENT = "sequence-kafka-connector/0.1"


class RestError(ConnectorError):
    """Sequence answered with an error the client does not retry."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        code: str | None = None,
        request_id: str | None = None,
        path: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.path = path


class RestUnavailable(RestError, TransientError):
    """Every attempt failed transiently (429, 502-504, network): try later."""


class _Retry(Exception):
    """Internal: one attempt failed transiently."""

    def __init__(self, message: str, *, status: int | None, code: str | None = None,
                 request_id: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after


def parse_error(body: bytes) -> tuple[str | None, str | None, str | None]:
    """(code, message, request_id) from the vendor's error envelope, if there is one.

    A proxy in front of the API may answer with HTML or nothing at all, so a
    body that is not the envelope gives Nones instead of raising.
    """
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None, None, None
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict):
        return None, None, None

    def text(name: str) -> str | None:
        value = err.get(name)
        return value if isinstance(value, str) else None

    return text("code"), text("message"), text("request_id")


def page_rows(body: Any, kind: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], bool]:
    """Rows and has_more of one page; accepts the paged envelope or a bare list."""
    if isinstance(body, list):
        rows: Any = body
        # A bare list says nothing about more pages: a full page may have more,
        # a longer-than-asked list means the server does not page at all.
        has_more = len(body) == limit
    elif isinstance(body, dict):
        rows = body.get(PAGE_PATHS[kind][1], body.get(kind))
        more = body.get("has_more")
        total = body.get("total")
        if isinstance(more, bool):
            has_more = more
        elif isinstance(total, int) and isinstance(rows, list):
            has_more = offset + len(rows) < total
        else:
            has_more = isinstance(rows, list) and len(rows) == limit
    else:
        rows = None
        has_more = False
    if not isinstance(rows, list):
        raise RestError(f"unexpected {kind} page shape", status=200, code="BAD_RESPONSE",
                        path=PAGE_PATHS[kind][0])
    return [r for r in rows if isinstance(r, dict)], has_more and bool(rows)


class SequenceRest:
    """An aiohttp client for Sequence's REST API with the vendor's retry policy."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        max_attempts: int = 5,
        backoff_cap_s: float = 8.0,
        backoff_initial_s: float = 0.5,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._base = base_url.rstrip("/")
        self.__key = api_key  # name-mangled: keeps it out of casual attribute dumps
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_attempts = max_attempts
        self._cap = backoff_cap_s
        self._initial = backoff_initial_s
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0  # HTTP requests sent, retries included
        self.retries = 0

    def __repr__(self) -> str:
        return f"SequenceRest({self._base!r})"

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self.__key}",
                         "Accept": "application/json", "User-Agent": USER_AGENT})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the generic call -----------------------------------------------------------
    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` (already percent-encoded, starting with /) and decode its JSON."""
        await self.start()
        url = URL(self._base + path, encoded=True)
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        if query:
            url = url.with_query(query)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Retry),
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            before_sleep=self._before_sleep(path),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(url, path)
        except _Retry as exc:
            raise RestUnavailable(
                f"GET {path} failed after {self._max_attempts} attempts: {exc}",
                status=exc.status, code=exc.code, request_id=exc.request_id, path=path,
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _once(self, url: URL, path: str) -> Any:
        assert self._session is not None  # noqa: S101 - for mypy: callers start() first
        self.requests += 1
        try:
            async with self._session.get(url) as resp:
                status = resp.status
                body = await resp.read()
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError) as exc:
            # TimeoutError is what aiohttp raises when ClientTimeout expires.
            raise _Retry(f"{type(exc).__name__}: {exc}", status=None) from exc
        if status < 300:
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise RestError(f"GET {path}: response is not JSON", status=status,
                                code="BAD_RESPONSE", path=path) from exc
        code, message, request_id = parse_error(body)
        detail = f"GET {path} -> {status} {code or ''}: {message or ''}".rstrip(": ")
        if status in AUTH_STATUSES:
            raise AuthError(f"Sequence refused the API key ({detail}, request_id={request_id})")
        if status in RETRY_STATUSES:
            raise _Retry(detail, status=status, code=code, request_id=request_id,
                         retry_after=retry_after)
        raise RestError(detail, status=status, code=code, request_id=request_id, path=path)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), MAX_RETRY_AFTER_S)
        return float(min(self._cap, self._initial * 2 ** (state.attempt_number - 1)))

    def _before_sleep(self, path: str) -> Any:
        def before_sleep(state: RetryCallState) -> None:
            self.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning("rest retry", extra={
                "path": path, "attempt": state.attempt_number, "delay_s": round(delay, 3),
                "status": getattr(exc, "status", None), "error": str(exc)[:300]})
        return before_sleep

    # -- typed helpers ----------------------------------------------------------------
    async def quote(self, symbol: str, depth: int = 10) -> dict[str, Any]:
        """NBBO, per-venue books and merged book of one symbol (any address form)."""
        # safe="" as in the vendor SDK: prediction addresses hold ':' and may hold '/'.
        path = f"/v1/quotes/{url_quote(symbol, safe='')}"
        body = await self.get_json(path, {"depth": depth})
        if not isinstance(body, dict):
            raise RestError("quote is not an object", status=200, code="BAD_RESPONSE", path=path)
        return body

    async def funding_rates(
        self, venue: str | None = None, symbol: str | None = None
    ) -> list[dict[str, Any]]:
        path = "/v1/market/funding-rates"
        body = await self.get_json(path, {"venue": venue, "symbol": symbol})
        rates = body.get("rates") if isinstance(body, dict) else body
        if not isinstance(rates, list):
            raise RestError("funding rates missing", status=200, code="BAD_RESPONSE", path=path)
        return [r for r in rates if isinstance(r, dict)]

    async def page(
        self, kind: PageKind, limit: int, offset: int, symbol: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of history, newest first, and whether more pages follow."""
        path, _ = PAGE_PATHS[kind]
        body = await self.get_json(path, {"limit": limit, "offset": offset, "symbol": symbol})
        return page_rows(body, kind, limit, offset)
