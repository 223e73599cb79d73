"""JSON log lines carry structured fields and never a credential."""

from __future__ import annotations

import logging

import orjson

from connector.config import Secret
from connector.observe.logs import JsonFormatter, TextFormatter, mask


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("connector.x", logging.WARNING, __file__, 1, msg, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_line_has_level_event_and_fields() -> None:
    line = JsonFormatter().format(_record("socket closed", stream="stream", epoch=3, code=1011))
    obj = orjson.loads(line)
    assert obj["level"] == "warning" and obj["event"] == "socket closed"
    assert obj["stream"] == "stream" and obj["epoch"] == 3 and obj["code"] == 1011
    assert obj["ts"].endswith("Z")


def test_credentials_are_masked_even_if_someone_logs_them() -> None:
    leaked = "connect with Bearer seq_live_abc123 ticket wst_zzz9"
    line = JsonFormatter().format(_record(leaked, header="Authorization: Bearer seq_live_abc123"))
    assert "seq_live_abc123" not in line and "wst_zzz9" not in line
    text = TextFormatter().format(_record(leaked))
    assert "seq_live_abc123" not in text
    assert mask("seq_test_key") == "seq_****"


def test_secret_objects_never_render() -> None:
    secret = Secret("seq_live_top")
    line = JsonFormatter().format(_record("settings", key=secret))
    assert "seq_live_top" not in line and "**********" in line
