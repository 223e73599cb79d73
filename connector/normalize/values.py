"""Exact conversions of single vendor values, each raising NormalizeError.

Nothing here goes through a binary float on its way to a decimal: fixed-point
integers are scaled as integers, and book floats are taken at their printed
(shortest round-trip) form, which is what the vendor meant to send.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from connector.errors import NormalizeError

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1

# Book levels: decimal(38, 18). 18 fractional digits hold every shortest-repr
# double a venue plausibly prints (sizes down to 1e-18, i.e. one wei of an
# 18-decimal token) and leave 20 integer digits for prices and sizes.
LEVEL_PRECISION = 38
LEVEL_SCALE = 18


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def as_long(value: Any, field: str) -> int:
    """A JSON integer that fits Avro long; bool and float are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise NormalizeError(f"expected an integer, got {_type_name(value)}", field=field)
    if not LONG_MIN <= value <= LONG_MAX:
        raise NormalizeError(f"integer {value} does not fit in 64 bits", field=field)
    return value


def fixed_to_decimal(raw: int, scale: int) -> Decimal:
    """``raw / 10**scale`` exactly (``raw`` already checked by ``as_long``).

    scaleb only moves the exponent; a 64-bit integer has at most 19 digits,
    well inside the default 28-digit context, so nothing is ever rounded.
    """
    return Decimal(raw).scaleb(-scale)


def as_double(value: Any, field: str) -> float:
    """A vendor float; JSON integers are accepted (``1`` bps == ``1.0`` bps)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NormalizeError(f"non-finite number {value}", field=field)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError as exc:
            raise NormalizeError("integer too large for a double", field=field) from exc
    raise NormalizeError(f"expected a number, got {_type_name(value)}", field=field)


def as_double_or_numeric_string(value: Any, field: str) -> float:
    """Like ``as_double`` but also takes ``"76410.5"``: undocumented payloads
    (alerts) may quote their numbers."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError as exc:
            raise NormalizeError(f"not a number: {value!r}", field=field) from exc
        return as_double(number, field)
    return as_double(value, field)


def as_string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise NormalizeError(f"expected a string, got {_type_name(value)}", field=field)
    return value


def as_id(value: Any, field: str) -> str:
    """An identifier, always a string. A JSON integer id is exact and becomes
    its decimal text; a float is refused because a 77-digit token id sent as a
    bare number has already lost digits in any JSON parser."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise NormalizeError(f"expected an id string, got {_type_name(value)}", field=field)


def as_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise NormalizeError(f"expected a boolean, got {_type_name(value)}", field=field)
    return value


def level_decimal(value: Any, field: str) -> Decimal:
    """The exact decimal of a printed JSON number, within decimal(38, 18).

    ``repr`` of a float is the shortest string that round-trips, i.e. the
    number as the vendor printed it, so 76410.1 stays 76410.1 rather than
    76410.100000000005820766091346740722656250.
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NormalizeError(f"non-finite number {value}", field=field)
        number = Decimal(repr(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    else:
        raise NormalizeError(f"expected a number, got {_type_name(value)}", field=field)
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # noqa: S101 - for mypy: finite, checked above
    if exponent < -LEVEL_SCALE:
        raise NormalizeError(
            f"{value!r} needs more than {LEVEL_SCALE} fractional digits", field=field
        )
    if number and number.adjusted() >= LEVEL_PRECISION - LEVEL_SCALE:
        raise NormalizeError(
            f"{value!r} exceeds decimal({LEVEL_PRECISION}, {LEVEL_SCALE})", field=field
        )
    return number


def ns_to_micros(ns: int) -> int:
    """Floor to microseconds: a timestamp never moves later than the event."""
    return ns // 1000
