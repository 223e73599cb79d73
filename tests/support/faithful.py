"""Is a record read back from Kafka faithful to what Sequence sent?

Written independently of ``connector.normalize``: the source frame is parsed
with the standard library's ``json`` using ``parse_float=Decimal``, so book
levels are compared with the exact decimal *as printed on the wire*, and
fixed-point integers are scaled here by plain Decimal arithmetic.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SCALES = {"_1e9": 9, "_1e8": 8}
# fields whose value is reshaped on purpose (documented in avro/README.md)
RESHAPED = {"payload"}


def parse_exact(raw: bytes | str) -> Any:
    return json.loads(raw, parse_float=Decimal)


def _companion(name: str) -> str | None:
    if not name.endswith("_ns") or name == "duration_ns":
        return None
    base = name[: -len("_ns")]
    base = base.removesuffix("_unix")
    if base.endswith(("ts", "at")):
        return base
    return base + "_at"


def assert_faithful(source: dict[str, Any], decoded: dict[str, Any], where: str = "") -> None:
    """Every field Sequence sent is in the record with the exact same value."""
    for name, value in source.items():
        here = f"{where}.{name}" if where else name
        if name in RESHAPED:
            assert parse_exact(decoded["payload_json"]) == value, here
            continue
        suffix = name[-4:]
        if suffix in SCALES and isinstance(value, int):
            assert decoded[name] == value, here
            exact = Decimal(value) / (Decimal(10) ** SCALES[suffix])
            assert decoded[name[:-4]] == exact, f"{here}: {decoded[name[:-4]]} != {exact}"
            continue
        if name in ("bids", "asks"):
            assert len(decoded[name]) == len(value), here
            for level, (px, sz) in zip(decoded[name], value, strict=True):
                assert level["px"] == Decimal(px), f"{here}: px {level['px']} != {px}"
                assert level["sz"] == Decimal(sz), f"{here}: sz {level['sz']} != {sz}"
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            assert len(decoded[name]) == len(value), here
            for i, (d, s) in enumerate(zip(decoded[name], value, strict=True)):
                assert_faithful(s, d, f"{here}[{i}]")
            continue
        assert name in decoded, f"{here}: missing from the record"
        if isinstance(value, Decimal):
            # a JSON float: the record holds an IEEE double of the same text
            assert decoded[name] == float(value), f"{here}: {decoded[name]} != {value}"
        else:
            assert decoded[name] == value, f"{here}: {decoded[name]!r} != {value!r}"
        companion = _companion(name)
        if companion is not None and isinstance(value, int):
            expected = EPOCH + dt.timedelta(microseconds=value // 1000)
            assert decoded[companion] == expected, f"{here}: {companion} {decoded[companion]}"
