"""Declarative field layouts and the one builder that applies them.

Each family is a tuple of ``FieldSpec``; the builder turns a vendor payload
into the Avro-ready dict. Output naming rules live here, once:

- ``<name>_1e9`` / ``<name>_1e8`` (FIXED_*): ``<name>`` as an exact Decimal
  (Avro decimal(38, 9) / decimal(38, 8)) plus ``<name>_1e9`` kept as long.
- ``*_ns`` timestamps (TIMESTAMP_NS): kept as long, plus a timestamp-micros
  companion named by ``timestamp_companion``.
- JSON (arbitrary payloads): ``<name>_json`` holding the JSON text.
- everything else keeps its vendor name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson

from connector.errors import NormalizeError
from connector.normalize import values as v


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


_FIXED_SCALE = {Kind.FIXED_1E9: 9, Kind.FIXED_1E8: 8}


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
        if self.kind in _FIXED_SCALE:
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


class _Unknown:
    """Collects unknown vendor fields: names to report, JSON text to carry."""

    __slots__ = ("carry", "extras", "names")

    def __init__(self, carry: bool) -> None:
        self.carry = carry
        self.names: dict[str, None] = {}  # ordered set
        self.extras: dict[str, str] = {}

    def add(self, report_name: str, extras_key: str, value: Any) -> None:
        self.names[report_name] = None
        if self.carry:
            self.extras[extras_key] = orjson.dumps(value).decode()


def _levels(value: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise NormalizeError("expected a list of [px, sz] levels", field=name)
    levels = []
    for index, level in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(level, (list, tuple)) or len(level) != 2:
            raise NormalizeError("a level must be [px, sz]", field=where)
        levels.append(
            {"px": v.level_decimal(level[0], where), "sz": v.level_decimal(level[1], where)}
        )
    return levels


def _list_of(convert: Callable[[Any, str], str]) -> Callable[[Any, str], list[str]]:
    def apply(value: Any, name: str) -> list[str]:
        if not isinstance(value, list):
            raise NormalizeError("expected a list", field=name)
        return [convert(item, f"{name}[{i}]") for i, item in enumerate(value)]

    return apply


_SIMPLE: dict[Kind, Callable[[Any, str], Any]] = {
    Kind.STRING: v.as_string,
    Kind.ID: v.as_id,
    Kind.LONG: v.as_long,
    Kind.DOUBLE: v.as_double,
    Kind.LENIENT_DOUBLE: v.as_double_or_numeric_string,
    Kind.BOOL: v.as_bool,
    Kind.STRING_LIST: _list_of(v.as_string),
    Kind.ID_LIST: _list_of(v.as_id),
    Kind.LEVELS: _levels,
}


def _write_field(
    spec: FieldSpec, value: Any, out: dict[str, Any], unknown: _Unknown, path: str
) -> None:
    name = path + spec.name
    kind = spec.kind
    simple = _SIMPLE.get(kind)
    if simple is not None:
        out[spec.name] = simple(value, name)
    elif kind in _FIXED_SCALE:
        raw = v.as_long(value, name)
        out[decimal_name(spec.name)] = v.fixed_to_decimal(raw, _FIXED_SCALE[kind])
        out[spec.name] = raw
    elif kind is Kind.TIMESTAMP_NS:
        ns = v.as_long(value, name)
        out[spec.name] = ns
        out[timestamp_companion(spec.name)] = v.ns_to_micros(ns)
    elif kind is Kind.JSON:
        out[spec.name + "_json"] = orjson.dumps(value).decode()
    elif kind is Kind.RECORDS:
        assert spec.items is not None
        if not isinstance(value, list):
            raise NormalizeError("expected a list of objects", field=name)
        out[spec.name] = [
            _build(spec.items, item, unknown, f"{name}[{i}].", f"{name}.")
            for i, item in enumerate(value)
        ]
    else:  # pragma: no cover - every Kind is handled above
        raise AssertionError(kind)


def _write_default(spec: FieldSpec, out: dict[str, Any]) -> None:
    for output_name in spec.output_names():
        # A fresh list per record: a shared default must never be mutated.
        out[output_name] = list(spec.default) if isinstance(spec.default, list) else spec.default


def _build(
    spec: RecordSpec, data: Any, unknown: _Unknown, path: str, report_prefix: str
) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise NormalizeError("expected an object", field=path.rstrip(".") or None)
    out: dict[str, Any] = {}
    for field_spec in spec.fields:
        value = data.get(field_spec.name)
        if value is None:
            if field_spec.required:
                state = "missing" if field_spec.name not in data else "null"
                raise NormalizeError(f"required field is {state}", field=path + field_spec.name)
            _write_default(field_spec, out)
        else:
            _write_field(field_spec, value, out, unknown, path)
    if not spec.known.issuperset(data):
        for key, value in data.items():
            if key not in spec.known:
                unknown.add(report_prefix + key, path + key, value)
    return out


def build_value(
    spec: RecordSpec, data: Mapping[str, Any], *, carry_unknown: bool
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Apply ``spec`` to one payload: (Avro-ready value, unknown field names).

    Nested unknowns are reported as ``contributors.foo`` and carried under
    ``contributors[2].foo`` so that nothing is lost and the map stays flat.
    """
    unknown = _Unknown(carry_unknown)
    value = _build(spec, data, unknown, "", "")
    value["extras"] = unknown.extras
    return value, tuple(unknown.names)
