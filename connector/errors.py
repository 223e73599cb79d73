"""One exception root for the whole connector.

Callers decide what to do by class, never by message text:

- ``FatalError``: stop the connector (bad credentials, incompatible schema).
- ``TransientError``: retry with backoff (network, 5xx, broker not ready).
- ``BadInputError``: one record is bad; route its raw bytes to the DLQ with
  ``stage``/``reason``/``field`` as headers and carry on.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of every exception the connector raises on purpose."""


class FatalError(ConnectorError):
    """The connector cannot continue; retrying will not help."""


class TransientError(ConnectorError):
    """A temporary condition; the same call may succeed later."""


class StartupTimeoutError(FatalError):
    """A dependency was still unreachable when ``connector.startup_timeout_s`` ran out."""

    def __init__(self, dependency: str, waited_s: float, last_error: str) -> None:
        super().__init__(f"{dependency} still unreachable after {waited_s:.0f}s "
                         f"(connector.startup_timeout_s): {last_error}")
        self.dependency = dependency


class BadInputError(ConnectorError):
    """One input record cannot be processed; the stream itself is fine.

    ``stage`` names the pipeline stage that rejected it, so DLQ consumers can
    tell a vendor format change (decode/normalize) from a schema problem
    (encode) without parsing messages.
    """

    stage: str = "unknown"

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        where = f" (field {field!r})" if field is not None else ""
        super().__init__(f"{self.stage}: {reason}{where}")


class DecodeError(BadInputError):
    """The raw frame is not valid JSON or not a frame shape we know."""

    stage = "decode"


class UnknownChannelError(BadInputError):
    """The frame is well formed but names a channel we do not route."""

    stage = "route"


class NormalizeError(BadInputError):
    """The payload misses a required field or has a value of the wrong type."""

    stage = "normalize"


class EncodeError(BadInputError):
    """The normalised value does not fit its Avro schema."""

    stage = "encode"


class RecordTooLargeError(BadInputError):
    """The encoded record is larger than the broker accepts."""

    stage = "produce"
