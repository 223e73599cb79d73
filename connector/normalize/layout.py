"""The field-layout vocabulary: what a vendor field is, and what it becomes.

Each family's layout (``normalize/record_specs.py``) is a ``RecordSpec`` of
``FieldSpec``s; the builders (``normalize/builders.py``) and the fused
encoder (``serde/direct.py``) apply them. Output naming rules live here, once:

- ``<name>_1e9`` / ``<name>_1e8`` (FIXED_*): ``<name>`` as an exact Decimal
  (Avro decimal(38, 9) / decimal(38, 8)) plus ``<name>_1e9`` kept as long.
- ``*_ns`` timestamps (TIMESTAMP_NS): kept as long, plus a timestamp-micros
  companion named by ``timestamp_companion``.
- JSON (arbitrary payloads): ``<name>_json`` holding the JSON text.
- everything else keeps its vendor name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Kind(Enum):
    STRING = "string"
    ID = "id"
    LONG = "long"
    DOUBLE = "double"
    LENIENT_DOUBLE = "lenient_double"  # also numeric strings
    BOOL = "bool"
    FIXED_1E9 = "fixed_1e9"
    FIXED_1E8 = "fixed_1e8"
    TIMESTAMP_NS = "timestamp_ns"
    STRING_LIST = "string_list"
    ID_LIST = "id_list"
    LEVELS = "levels"
    JSON = "json"
    RECORDS = "records"


FIXED_SCALE = {Kind.FIXED_1E9: 9, Kind.FIXED_1E8: 8}


def decimal_name(raw_name: str) -> str:
    """``price_1e9`` -> ``price``."""
    return raw_name.rsplit("_", 1)[0]


def timestamp_companion(raw_name: str) -> str:
    """Name of the timestamp-micros twin of a ``*_ns`` field.

    Drop ``_ns`` and then ``_unix``; a name that already reads as a time
    (``ts``, ``*_ts``, ``at``, ``*_at``) stays, any other gets ``_at``:
    ts_ns -> ts, ts_unix_ns -> ts, cc_ts_ns -> cc_ts, observed_at_ns ->
    observed_at, created_unix_ns -> created_at, next_settlement_ns ->
    next_settlement_at.
    """
    base = raw_name.removesuffix("_ns").removesuffix("_unix")
    if base in ("ts", "at") or base.endswith(("_ts", "_at")):
        return base
    return base + "_at"


@dataclass(frozen=True, slots=True)
class RecordSpec:
    fields: tuple[FieldSpec, ...]
    known: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "known", frozenset(f.name for f in self.fields))


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One vendor field. Optional fields take ``default`` when missing or null;
    a ``None`` default makes the Avro field nullable."""

    name: str
    kind: Kind
    required: bool = False
    default: Any = None
    items: RecordSpec | None = None  # the element layout of RECORDS

    def output_names(self) -> tuple[str, ...]:
        if self.kind in FIXED_SCALE:
            return (decimal_name(self.name), self.name)
        if self.kind is Kind.TIMESTAMP_NS:
            return (self.name, timestamp_companion(self.name))
        if self.kind is Kind.JSON:
            return (self.name + "_json",)
        return (self.name,)


def req(name: str, kind: Kind, items: RecordSpec | None = None) -> FieldSpec:
    return FieldSpec(name, kind, required=True, items=items)


def opt(name: str, kind: Kind, default: Any = None, items: RecordSpec | None = None) -> FieldSpec:
    return FieldSpec(name, kind, default=default, items=items)
