"""Normalise and encode in one step, for payloads of the common shape.

The two-step path (``normalize_for_wire`` builds the Avro-ready dict, the
fastwire encoder walks it) is general: it converts ids sent as numbers,
reports and carries unknown fields, names the field of every error. Almost
every real payload needs none of that: every field is present or null, of
exactly its JSON type, and nothing is unknown. For those, a function
generated per family from its field layout (``RECORD_SPECS``) and its Avro
schema reads the payload and writes the Confluent wire bytes directly,
without the intermediate dict, and returns ``(value bytes, event time)``.

It *defers* instead of deciding: anything off the common shape (an unknown
field, a missing required field, an id sent as a number, a bool where a
number belongs, a non-finite double, an odd book level...) returns ``None``
and the caller takes the two-step path, which converts it or raises the
precise error. So the fused path never decides anything the two-step path
would decide differently; tests/unit/test_direct_wire.py checks, over
mutated payloads of every family, that whenever it answers, its bytes and
event time are exactly the two-step path's.

Families with JSON or string-list fields (markets.new, traces, alerts) and
control records (ours, not payloads) have no fused function: their volume is
small. Nested records (fair_price's contributors) are fused like the top.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.codegen import LONG_CHECK, compile_generated
from connector.errors import NormalizeError
from connector.normalize.builders import level_unscaled
from connector.normalize.layout import FIXED_SCALE, FieldSpec, Kind, RecordSpec
from connector.serde.fastwire import WIRE_RUNTIME, WireGen, collect_named, unscaled_bytes, varint

# (payload, prefix) -> (prefix + Avro body, event time ns) or None (defer)
DirectEncoder = Callable[[dict[str, Any], bytes], "tuple[bytes, int | None] | None"]

_CHECKS = {
    Kind.STRING: "type({v}) is not str",
    Kind.ID: "type({v}) is not str",  # a numeric id is converted by the slow path
    Kind.BOOL: "type({v}) is not bool",
    Kind.DOUBLE: "",  # see _check
    Kind.LONG: LONG_CHECK,
    Kind.FIXED_1E9: LONG_CHECK,
    Kind.FIXED_1E8: LONG_CHECK,
    Kind.TIMESTAMP_NS: LONG_CHECK,
}
# A double sent as a JSON integer (``"spread_bps": 1``) is common and exact
# as a float as long as it is small; anything odder defers.
_DOUBLE_INT_LIMIT = 1 << 53


def _check(lines: list[str], ind: str, kind: Kind, var: str) -> None:
    """Lines that return None unless ``var`` is exactly of ``kind``'s type."""
    if kind is Kind.DOUBLE:
        lines += [
            f"{ind}if type({var}) is not float:",
            (f"{ind}    if type({var}) is int and -{_DOUBLE_INT_LIMIT} <= {var} <= "
             f"{_DOUBLE_INT_LIMIT}: {var} = float({var})"),
            f"{ind}    else: return None",
            f"{ind}elif {var} - {var} != 0.0: return None",
        ]
    else:
        lines.append(f"{ind}if {_CHECKS[kind].format(v=var)}: return None")

# -- book levels: [[px, sz], ...] floats straight to decimal(38, 18) bytes ----------

# The encoded decimal of each printed level number, cached like the
# normaliser's unscaled ints (prices sit on a tick grid and repeat).
_LEVEL_BYTES: dict[float, bytes] = {}
_LEVEL_BYTES_MAX = 65536
_LEVEL_BITS = (10**38).bit_length() - 1  # as fastwire's decimal(38, ...) fast path
_LEVEL_LIMIT = 10**38


def _level_bytes(value: Any) -> bytes | None:
    try:
        unscaled = level_unscaled(value, 0, "")
    except NormalizeError:
        return None
    if unscaled.bit_length() >= _LEVEL_BITS:
        return None  # near the precision: the two-step path decides exactly
    encoded = unscaled_bytes(unscaled, _LEVEL_LIMIT, "")  # in range, never raises
    if type(value) is float:  # never True/1 (equal dict keys)
        if len(_LEVEL_BYTES) >= _LEVEL_BYTES_MAX:
            _LEVEL_BYTES.clear()
        _LEVEL_BYTES[value] = encoded
    return encoded


def levels_wire(value: Any) -> bytes | None:
    """An Avro ``array<Level{px, sz: decimal(38, 18)}>`` from vendor levels,
    or None when any level is off the common shape."""
    if type(value) is not list:
        return None
    if not value:
        return b"\x00"
    cache = _LEVEL_BYTES
    parts = [varint(len(value))]
    append = parts.append
    for level in value:
        if type(level) is not list or len(level) != 2:
            return None
        px, sz = level
        a = cache.get(px) if type(px) is float else None
        if a is None:
            a = _level_bytes(px)
            if a is None:
                return None
        b = cache.get(sz) if type(sz) is float else None
        if b is None:
            b = _level_bytes(sz)
            if b is None:
                return None
        append(a)
        append(b)
    append(b"\x00")
    return b"".join(parts)


def _is_levels_schema(ftype: Any, named: dict[str, Any]) -> bool:
    """array of a record of exactly px, sz as decimal(38, 18) bytes."""
    if not (isinstance(ftype, dict) and ftype.get("type") == "array"):
        return False
    items = ftype["items"]
    items = named.get(items, items) if isinstance(items, str) else items
    if not (isinstance(items, dict) and items.get("type") == "record"):
        return False
    fields = items["fields"]
    return [f["name"] for f in fields] == ["px", "sz"] and all(
        isinstance(f["type"], dict) and f["type"].get("type") == "bytes"
        and f["type"].get("logicalType") == "decimal"
        and f["type"].get("precision") == 38 and f["type"].get("scale") == 18
        for f in fields
    )


# -- generation -----------------------------------------------------------------------


class _Fused:
    """Generates one function per record layout: validate every field's
    exact type (else ``return None``), then emit its Avro encoding."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.named: dict[str, Any] = {}
        collect_named(schema, self.named)
        self.gen = WireGen(self.named, trusted=True)
        self.funcs: list[list[str]] = []

    def resolve(self, ftype: Any) -> Any:
        return self.named.get(ftype, ftype) if isinstance(ftype, str) else ftype

    def fields(self, lines: list[str], spec: RecordSpec, schema: dict[str, Any],
               top: bool, time_field: str | None) -> tuple[list[str], str] | None:
        """Lines for the body of one record; (its part variables, the
        event-time expression), or None when the layout cannot be fused."""
        gen = self.gen
        avro_types = {f["name"]: self.resolve(f["type"]) for f in schema["fields"]}
        lines += [f"    if not {gen.const(spec.known, 'KNOWN')}.issuperset(data): return None",
                  "    get = data.get"]
        sources: dict[str, str] = {}  # Avro field -> local holding its value
        ready: dict[str, str] = {}  # Avro field -> local already holding its bytes
        event = "None"
        for index, field in enumerate(spec.fields):
            var = f"f{index}"
            names = field.output_names()
            lines.append(f"    {var} = get({field.name!r})")
            if field.kind in (Kind.LEVELS, Kind.RECORDS):
                encoder = self.sequence(field, avro_types.get(names[0]))
                if encoder is None:
                    return None
                if not field.required:
                    default = "None" if field.default is None else gen.const(field.default, "DEF")
                    lines.append(f"    if {var} is None: {var} = {default}")
                lines.append(f"    {var} = {encoder}({var})")
                lines.append(f"    if {var} is None: return None")
                ready[names[0]] = var
                continue
            if field.kind not in _CHECKS:
                return None
            if field.required:
                _check(lines, "    ", field.kind, var)
            elif field.default is None:
                lines.append(f"    if {var} is not None:")
                _check(lines, "        ", field.kind, var)
            else:
                lines.append(f"    if {var} is None: {var} = {gen.const(field.default, 'DEF')}")
                lines.append("    else:")
                _check(lines, "        ", field.kind, var)
            if field.kind in FIXED_SCALE:  # the unscaled decimal is the raw int
                sources[names[0]] = sources[names[1]] = var
            elif field.kind is Kind.TIMESTAMP_NS:
                sources[names[0]] = var
                companion = f"{var}_b"
                lines.append(f"    {companion} = {var} // 1000" if field.required
                             else f"    {companion} = None if {var} is None else {var} // 1000")
                sources[names[1]] = companion
            else:
                sources[names[0]] = var
            if field.name == time_field:
                event = var
        if top:
            # nothing unknown on this path (a local: the emitted code may assign it)
            lines.append(f"    extras = {gen.const({}, 'EMPTY')}")
            sources["extras"] = "extras"
        parts = []
        for avro_field in schema["fields"]:
            name = avro_field["name"]
            if name in ready:
                parts.append(ready[name])
                continue
            if name not in sources:  # a layout/schema mismatch: leave it to the slow path
                return None
            dst = gen.fresh("x")
            gen.emit(lines, "    ", avro_field["type"], sources[name], dst, name)
            parts.append(dst)
        return parts, event

    def sequence(self, field: FieldSpec, ftype: Any) -> str | None:
        """Name of a function encoding a list field (None: not fusable)."""
        if field.kind is Kind.LEVELS:
            return "levels_wire" if _is_levels_schema(ftype, self.named) else None
        if not (isinstance(ftype, dict) and ftype.get("type") == "array"
                and field.items is not None):
            return None
        item_schema = self.resolve(ftype["items"])
        if not (isinstance(item_schema, dict) and item_schema.get("type") == "record"):
            return None
        record = self.gen.fresh("record")
        lines = [f"def {record}(data):"]
        done = self.fields(lines, field.items, item_schema, False, None)
        if done is None:
            return None
        lines.append(f"    return b''.join(({''.join(p + ', ' for p in done[0])}))")
        self.funcs.append(lines)
        items = self.gen.fresh("items")
        self.funcs.append([
            f"def {items}(value):",
            "    if type(value) is not list: return None",
            "    if not value: return b'\\x00'",
            "    parts = [varint(len(value))]",
            "    for data in value:",
            f"        part = {record}(data) if type(data) is dict else None",
            "        if part is None: return None",
            "        parts.append(part)",
            "    parts.append(b'\\x00')",
            "    return b''.join(parts)",
        ])
        return items


def generate_direct_source(
    spec: RecordSpec, schema: dict[str, Any], time_field: str | None
) -> tuple[str, dict[str, Any]] | None:
    """Source of ``direct(data, prefix)`` for one family, or None when its
    layout has a field kind the fused path does not take."""
    fused = _Fused(schema)
    lines = ["def direct(data, prefix):"]
    done = fused.fields(lines, spec, schema, True, time_field)
    if done is None:
        return None
    parts, event = done
    lines.append(f"    return b''.join((prefix, {', '.join(parts)})), {event}")
    return fused.gen.source(*fused.funcs, lines), fused.gen.consts


def compile_direct(
    spec: RecordSpec, schema: dict[str, Any], time_field: str | None
) -> DirectEncoder | None:
    generated = generate_direct_source(spec, schema, time_field)
    if generated is None:
        return None
    source, consts = generated
    direct: DirectEncoder = compile_generated(
        source, f"<direct {schema.get('name')}>", "direct",
        {**WIRE_RUNTIME, "levels_wire": levels_wire}, consts)
    return direct
