"""The vendor's error envelope, for REST responses and WS error frames."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiohttp import web

STATUS_CODES = {
    400: "INVALID_PARAMS",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "BAD_REQUEST",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


def envelope(code: str, message: str,
             details: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": str(uuid.uuid4()),
                      "details": details or []}}


def error_response(status: int, message: str, *, code: str | None = None,
                   details: list[dict[str, str]] | None = None,
                   retry_after: float | None = None) -> web.Response:
    headers = {}
    if retry_after is not None:
        # Whole seconds when integral: clients parse Retry-After as a number of seconds.
        headers["Retry-After"] = str(int(retry_after)) if retry_after == int(retry_after) \
            else str(retry_after)
    body = envelope(code or STATUS_CODES.get(status, "ERROR"), message, details)
    return web.Response(status=status, body=orjson.dumps(body), headers=headers,
                        content_type="application/json")


def invalid(field: str, message: str) -> web.Response:
    return error_response(400, f"invalid parameter {field!r}: {message}",
                          details=[{"field": field, "message": message}])
