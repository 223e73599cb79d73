"""Logging: JSON lines for machines, a readable line for terminals.

Structured fields come from ``extra={...}``. Values that look like secrets
are masked as a last line of defence; the settings already keep secrets in
``Secret`` objects that never print.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_format: str | None = None  # set by setup_logging
_DIGITS = re.compile(r"\d+")
# Loggers handed to librdkafka clients that run while a broker may be down
# (the dedupe rebuild at start): librdkafka logs every failed connect, about
# twenty a second, and hands them all over when the client closes. The admin
# client too: a refused login or certificate gave seven identical lines in the
# second before start-up gave up with its own.
_REPEATING = ("connector.sink.reader", "connector.sink.admin")
_SECRET_RE = re.compile(r"(seq_(?:live|test)_[A-Za-z0-9_]+|Bearer\s+\S+|wst_[A-Za-z0-9_]+)")


def mask(text: str) -> str:
    return _SECRET_RE.sub(lambda m: m.group(0)[:4] + "****", text)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": mask(record.getMessage()),
        }
        for key, value in _fields(record).items():
            out[key] = mask(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exc"] = mask(self.formatException(record.exc_info))
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{time.strftime('%H:%M:%S', time.localtime(record.created))} " \
               f"{record.levelname:<7} {mask(record.getMessage())}"
        if extras:
            line += f"  {mask(extras)}"
        if record.exc_info:
            line += "\n" + mask(self.formatException(record.exc_info))
        return line


class RepeatFilter(logging.Filter):
    """Lets one line of a kind through per ``window_s``; a kind is the logger
    and the message with its numbers blanked (ports and timings vary)."""

    def __init__(self, window_s: float = 60.0) -> None:
        super().__init__()
        self._window = window_s
        self._seen: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, _DIGITS.sub("#", record.getMessage()))
        last = self._seen.get(kind)
        if last is not None and record.created - last < self._window:
            return False
        if len(self._seen) > 1000:
            self._seen.clear()  # bounded: a flood of distinct lines is let through
        self._seen[kind] = record.created
        return True


def configured_format() -> str | None:
    """``json`` or ``text`` once ``setup_logging`` ran, else None."""
    return _format


def setup_logging(fmt: str = "json", level: str = "INFO") -> None:
    global _format
    _format = fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # warnings.warn would write its own lines to stderr, between the JSON ones
    logging.captureWarnings(True)
    # librdkafka and websockets are chatty at INFO/DEBUG
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # the registry client logs every HTTP request at INFO
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    for name in _REPEATING:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter())


def without_userinfo(url: str) -> str:
    """``url`` fit for a log line: credentials in it (``user:pass@``) removed."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
