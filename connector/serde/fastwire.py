"""A schema-specialised Avro binary encoder: byte-identical to fastavro.

``compile_encoder(parsed_schema)`` generates Python source for one record
schema (every field's type check and encoding inlined, in field order),
compiles it with ``exec`` once, and returns ``encode(value, prefix=b"")``
-> ``prefix + avro_body``. For every value fastavro's ``schemaless_writer``
accepts as valid data the bytes are identical (tests/unit/test_fastwire.py
checks that with random records of every schema in avro/).

It is deliberately *stricter* than fastavro where fastavro silently writes
garbage: a boolean must be a bool (fastavro writes ``None`` as false), a long
must be an int (fastavro truncates floats and accepts bools), an int must fit
32 bits, a double takes float or int (not str/bool/Decimal), an array must be
a list or tuple (fastavro writes a string as an array of its characters), a
decimal must fit its precision after scaling (fastavro writes 44 digits into
a decimal(38, 9) if the Decimal has a positive exponent). Anything that does
not fit raises ``EncodeError`` naming the field.

Decimal fields (``bytes`` + ``logicalType: decimal``) take a ``Decimal``
(exact: digits and exponent, never through a float), raw two's-complement
bytes (as fastavro does), or - the fast path - a plain ``int`` holding the
*unscaled* value (``price_1e9`` *is* the unscaled value of decimal(38, 9)).
Only an exact ``int`` (not bool) is taken as unscaled.

Generated source is kept on the function as ``__generated_source__`` for
debugging.
"""

from __future__ import annotations

import datetime
import decimal
import struct
from collections.abc import Callable, Mapping
from typing import Any

from fastavro import parse_schema
from fastavro.logical_writers import LOGICAL_WRITERS

from connector.codegen import EXACT, CodeGen, compile_generated
from connector.errors import EncodeError

Encoder = Callable[..., bytes]

LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1
INT_MIN = -(1 << 31)
INT_MAX = (1 << 31) - 1
_U64 = 1 << 64

PRIMITIVES = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)

# Zig-zag varint pieces for 14-bit chunks: TC[c] is two bytes that both have
# the continuation bit, TL[c] is the minimal final encoding of c (1-2 bytes).
TC: tuple[bytes, ...] = tuple(
    bytes(((c & 0x7F) | 0x80, (c >> 7) | 0x80)) for c in range(1 << 14)
)
TL: tuple[bytes, ...] = tuple(
    bytes((c,)) if c < 0x80 else bytes(((c & 0x7F) | 0x80, c >> 7)) for c in range(1 << 14)
)

_LIMITS = {p: 10**p for p in range(1, 77)}

_pack_double = struct.Struct("<d").pack
_pack_float = struct.Struct("<f").pack

# Logical types on int/long that fastavro converts from Python objects
# (datetime, date, time, ...), keyed "long-timestamp-micros" as fastavro keys
# them: applied only on the slow path, so the result is exactly fastavro's.
_LONG_PREPARE: dict[str, Callable[[Any, Any], Any]] = {
    key: fn for key, fn in LOGICAL_WRITERS.items() if key.startswith(("int-", "long-"))
}
_CONVERTIBLE = (datetime.date, datetime.time)  # datetime.datetime is a date


# -- runtime helpers (slow paths, called only off the common types) -------------


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _bad(path: str, expected: str, value: Any) -> EncodeError:
    return EncodeError(f"expected {expected}, got {_type_name(value)}", field=path or None)


def varint(n: int) -> bytes:
    """Zig-zag varint of a (range-checked) Python int."""
    n = (n << 1) ^ (n >> 63)
    if n < 16384:
        return TL[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _long_slow(value: Any, path: str, lo: int, hi: int, logical: str | None) -> int:
    if logical is not None and isinstance(value, _CONVERTIBLE):
        value = _LONG_PREPARE[logical](value, None)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(path, "an integer", value)
    if not lo <= value <= hi:
        bits = 32 if hi == INT_MAX else 64
        raise EncodeError(f"integer {value} does not fit in {bits} bits", field=path or None)
    return int(value)


def _range_error(value: int, path: str) -> EncodeError:
    return EncodeError(f"integer {value} does not fit in 64 bits", field=path or None)


def _double_slow(value: Any, path: str) -> float:
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError as exc:
            raise EncodeError("integer too large for a double", field=path or None) from exc
    raise _bad(path, "a number", value)


def _float_bytes(value: Any, path: str) -> bytes:
    if type(value) is not float:
        value = _double_slow(value, path)
    try:
        return _pack_float(value)
    except OverflowError:  # fastavro's C cast gives +-inf
        return _pack_float(float("inf") if value > 0 else float("-inf"))


def _str_slow(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    raise _bad(path, "a string", value)


def _bytes_slow(value: Any, path: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise _bad(path, "bytes", value)


def _seq_slow(value: Any, path: str) -> list[Any] | tuple[Any, ...]:
    if isinstance(value, (list, tuple)):
        return value
    raise _bad(path, "an array (list or tuple)", value)


def _map_slow(value: Any, path: str) -> Mapping[Any, Any]:
    if isinstance(value, Mapping):
        return value
    raise _bad(path, "a map (mapping)", value)


def _record_slow(value: Any, path: str) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    raise _bad(path, "a record (mapping)", value)


def unscaled_bytes(unscaled: int, limit: int, path: str) -> bytes:
    """Length-prefixed big-endian two's complement, sized as fastavro sizes it
    (``(bit_length(|u|) + 8) // 8`` bytes, so -128 takes two bytes)."""
    if not -limit < unscaled < limit:
        raise EncodeError(f"unscaled value {unscaled} exceeds the decimal precision",
                          field=path or None)
    body = unscaled.to_bytes((unscaled.bit_length() + 8) >> 3, "big", signed=True)
    return TL[len(body) << 1] + body


def decimal_unscaled(value: decimal.Decimal, scale: int, precision: int, path: str) -> int:
    """The exact unscaled integer of ``value`` at ``scale``, or EncodeError.

    Mirrors fastavro's checks (digits within precision, exponent not finer
    than the scale) and adds one: the scaled value must fit the precision.
    """
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise EncodeError(f"non-finite decimal {value}", field=path or None)
    if len(digits) > precision:
        raise EncodeError("the decimal precision is bigger than allowed by schema",
                          field=path or None)
    delta = exponent + scale
    if delta < 0:
        raise EncodeError(f"{value} has more than {scale} fractional digits",
                          field=path or None)
    if delta + len(digits) > precision + 1:
        # surely beyond the precision; do not build a huge int to find out
        raise EncodeError(f"{value} exceeds decimal({precision}, {scale})", field=path or None)
    # scaleb only moves the exponent; with this context it never rounds
    return int(value.scaleb(scale, EXACT))


def _decimal_slow(value: Any, scale: int, precision: int, path: str) -> bytes:
    """Length-prefixed bytes of a decimal field from anything but a plain int."""
    limit = _LIMITS.get(precision) or 10**precision
    if isinstance(value, decimal.Decimal):
        return unscaled_bytes(decimal_unscaled(value, scale, precision, path), limit, path)
    if isinstance(value, int) and not isinstance(value, bool):
        return unscaled_bytes(int(value), limit, path)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)  # already two's complement, as fastavro takes it
        return varint(len(raw)) + raw
    raise _bad(path, "a Decimal or an unscaled int", value)


def _fixed(value: Any, size: int, decimal_spec: tuple[int, int] | None, path: str) -> bytes:
    if decimal_spec is not None and (
        isinstance(value, decimal.Decimal)
        or (isinstance(value, int) and not isinstance(value, bool))
    ):
        scale, precision = decimal_spec
        unscaled = (
            decimal_unscaled(value, scale, precision, path)
            if isinstance(value, decimal.Decimal)
            else int(value)
        )
        if not -(10**precision) < unscaled < 10**precision:
            raise EncodeError(f"unscaled value {unscaled} exceeds the decimal precision",
                              field=path or None)
        try:
            return unscaled.to_bytes(size, "big", signed=True)
        except OverflowError as exc:
            raise EncodeError(f"decimal does not fit {size} bytes", field=path or None) from exc
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise _bad(path, f"fixed({size}) bytes", value)
    raw = bytes(value)
    if len(raw) != size:
        raise EncodeError(f"fixed of {len(raw)} bytes, schema says {size}", field=path or None)
    return raw


def _enum_miss(value: Any, symbols: tuple[str, ...], path: str) -> EncodeError:
    return EncodeError(f"{value!r} is not one of the enum symbols {list(symbols)}",
                       field=path or None)


# -- union branch predicates (general unions only) -------------------------------


def _branch_matcher(schema: Any, named: dict[str, Any]) -> Callable[[Any], bool]:
    """fastavro's validate() for one union branch, minus its laxness."""
    while isinstance(schema, str) and schema in named:
        schema = named[schema]
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if kind == "null":
        return lambda v: v is None
    if kind == "boolean":
        return lambda v: v is True or v is False
    if kind in ("int", "long"):
        lo, hi = (INT_MIN, INT_MAX) if kind == "int" else (LONG_MIN, LONG_MAX)
        convertible = _CONVERTIBLE if f"{kind}-{logical}" in _LONG_PREPARE else ()
        return lambda v: (
            isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
        ) or (bool(convertible) and isinstance(v, convertible))
    if kind in ("float", "double"):
        return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "string":
        return lambda v: isinstance(v, str)
    if kind == "bytes":
        if logical == "decimal":
            return lambda v: isinstance(v, (bytes, bytearray, decimal.Decimal))
        return lambda v: isinstance(v, (bytes, bytearray))
    if kind == "fixed":
        size = schema["size"]
        if logical == "decimal":
            return lambda v: isinstance(v, decimal.Decimal) or (
                isinstance(v, bytes) and len(v) == size)
        return lambda v: isinstance(v, bytes) and len(v) == size
    if kind == "enum":
        symbols = frozenset(schema["symbols"])
        return lambda v: isinstance(v, str) and v in symbols
    if kind == "array":
        return lambda v: isinstance(v, (list, tuple))
    if kind in ("map", "record", "error"):
        return lambda v: isinstance(v, Mapping)
    raise ValueError(f"unsupported union branch {schema!r}")


def _is_unscaled_branch(schema: Any, named: dict[str, Any]) -> bool:
    while isinstance(schema, str) and schema in named:
        schema = named[schema]
    return isinstance(schema, dict) and schema.get("logicalType") == "decimal"


# -- code generation --------------------------------------------------------------


class WireGen(CodeGen):
    """Emits the Avro binary encoding of schema types (also for serde/direct.py)."""

    def __init__(self, named: dict[str, Any], *, trusted: bool = False) -> None:
        super().__init__()
        self.named = named
        # trusted: the caller's generated code has already checked every
        # scalar's exact type (connector.serde.direct), so the per-type
        # coercion lines are left out
        self.trusted = trusted
        self.record_funcs: dict[str, str] = {}
        self.inlining: list[str] = []

    def resolve(self, schema: Any) -> Any:
        while isinstance(schema, str) and schema not in PRIMITIVES:
            if schema not in self.named:
                raise ValueError(f"unknown named type {schema!r}")
            schema = self.named[schema]
        return schema

    # Each emitter appends lines computing ``dst`` (bytes) from the value in ``src``.
    def emit(self, out: list[str], ind: str, schema: Any, src: str, dst: str, path: str) -> None:
        if isinstance(schema, list):
            self.emit_union(out, ind, schema, src, dst, path)
            return
        if isinstance(schema, str) and schema not in PRIMITIVES:
            schema = self.resolve(schema)
        kind = schema if isinstance(schema, str) else schema["type"]
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if isinstance(kind, (dict, list)):  # {"type": {...}} wrapper
            self.emit(out, ind, kind, src, dst, path)
            return
        p = repr(path)
        if kind == "null":
            out.append(f"{ind}if {src} is not None: raise _bad({p}, 'null', {src})")
            out.append(f"{ind}{dst} = b''")
        elif kind == "boolean":
            out += [
                f"{ind}if {src} is True: {dst} = b'\\x01'",
                f"{ind}elif {src} is False: {dst} = b'\\x00'",
                f"{ind}else: raise _bad({p}, 'a boolean', {src})",
            ]
        elif kind in ("int", "long"):
            self.emit_long(out, ind, kind, logical, src, dst, path)
        elif kind == "double":
            if not self.trusted:
                out.append(f"{ind}if type({src}) is not float: {src} = _double_slow({src}, {p})")
            out.append(f"{ind}{dst} = _pack_double({src})")
        elif kind == "float":
            out.append(f"{ind}{dst} = _float_bytes({src}, {p})")
        elif kind == "string":
            b = self.fresh("b")
            n = self.fresh("n")
            if not self.trusted:
                out.append(f"{ind}if type({src}) is not str: {src} = _str_slow({src}, {p})")
            out += [
                f"{ind}{b} = {src}.encode()",
                f"{ind}{n} = len({b}) << 1",
                f"{ind}{dst} = (TL[{n}] if {n} < 16384 else varint(len({b}))) + {b}",
            ]
        elif kind == "bytes" and logical == "decimal":
            self.emit_decimal(out, ind, schema, src, dst, path)
        elif kind == "bytes":
            out += [
                f"{ind}if type({src}) is not bytes: {src} = _bytes_slow({src}, {p})",
                f"{ind}{dst} = varint(len({src})) + {src}",
            ]
        elif kind == "fixed":
            spec = None
            if logical == "decimal":
                spec = (schema.get("scale", 0), schema["precision"])
            out.append(f"{ind}{dst} = _fixed({src}, {schema['size']}, {spec!r}, {p})")
        elif kind == "enum":
            symbols = tuple(schema["symbols"])
            table = self.const({s: varint(i) for i, s in enumerate(symbols)}, "E")
            syms = self.const(symbols, "S")
            out += [
                f"{ind}{dst} = {table}.get({src}) if type({src}) is str else None",
                f"{ind}if {dst} is None: raise _enum_miss({src}, {syms}, {p})",
            ]
        elif kind == "array":
            self.emit_array(out, ind, schema, src, dst, path)
        elif kind == "map":
            self.emit_map(out, ind, schema, src, dst, path)
        elif kind in ("record", "error"):
            self.emit_record(out, ind, schema, src, dst)
        else:
            raise ValueError(f"unsupported Avro type {kind!r}")

    def emit_long(self, out: list[str], ind: str, kind: str, logical: str | None,
                  src: str, dst: str, path: str) -> None:
        p = repr(path)
        lo, hi = (INT_MIN, INT_MAX) if kind == "int" else (LONG_MIN, LONG_MAX)
        key = f"{kind}-{logical}"
        prep = repr(key if key in _LONG_PREPARE else None)
        if not self.trusted:
            out.append(f"{ind}if type({src}) is not int: "
                       f"{src} = _long_slow({src}, {p}, {lo}, {hi}, {prep})")
        n, lo_, hi_, h2 = self.fresh("n"), self.fresh("lo"), self.fresh("hi"), self.fresh("h")
        # zig-zag without the 63-bit shift (cheaper on multi-digit ints); the
        # range check is the final bound on n: 2**64 for long, 2**32 for int
        out += [
            f"{ind}{n} = {src} + {src} if {src} >= 0 else -1 - {src} - {src}",
            f"{ind}if {n} < 16384: {dst} = TL[{n}]",
            f"{ind}elif {n} < 268435456: {dst} = TC[{n} & 16383] + TL[{n} >> 14]",
            f"{ind}else:",
            f"{ind}    {lo_} = {n} & 268435455",
            f"{ind}    {hi_} = {n} >> 28",
            (f"{ind}    if {hi_} < {16 if kind == 'int' else 16384}: {dst} = b''.join(("
             f"TC[{lo_} & 16383], TC[{lo_} >> 14], TL[{hi_}]))"),
        ]
        if kind == "int":
            out.append(f"{ind}    else: raise EncodeError('integer ' + str({src}) + "
                       f"' does not fit in 32 bits', field={p} or None)")
            return
        out += [
            (f"{ind}    elif {hi_} < 268435456: {dst} = b''.join((TC[{lo_} & 16383], "
             f"TC[{lo_} >> 14], TC[{hi_} & 16383], TL[{hi_} >> 14]))"),
            f"{ind}    elif {hi_} < 68719476736:",
            f"{ind}        {h2} = {hi_} & 268435455",
            (f"{ind}        {dst} = b''.join((TC[{lo_} & 16383], TC[{lo_} >> 14], "
             f"TC[{h2} & 16383], TC[{h2} >> 14], TL[{hi_} >> 28]))"),
            f"{ind}    else: raise _range_error({src}, {p})",
        ]

    def emit_decimal(self, out: list[str], ind: str, schema: dict[str, Any],
                     src: str, dst: str, path: str) -> None:
        p = repr(path)
        scale = schema.get("scale", 0)
        precision = schema["precision"]
        # |u| < 2**(bits-1) <= 10**precision: surely in range, and short
        # enough for the one-byte length table; the rest takes the slow path
        # (which checks the exact precision).
        bits = min((10**precision).bit_length(), 8000)
        size = self.fresh("nb")
        out += [
            f"{ind}if type({src}) is int and {src}.bit_length() < {bits - 1}:",
            f"{ind}    {size} = ({src}.bit_length() + 8) >> 3",
            f"{ind}    {dst} = TL[{size} << 1] + {src}.to_bytes({size}, 'big', signed=True)",
            f"{ind}else:",
            f"{ind}    {dst} = _decimal_slow({src}, {scale}, {precision}, {p})",
        ]

    def emit_array(self, out: list[str], ind: str, schema: dict[str, Any],
                   src: str, dst: str, path: str) -> None:
        p = repr(path)
        parts, item, enc = self.fresh("parts"), self.fresh("item"), self.fresh("x")
        out += [
            f"{ind}if type({src}) is not list: {src} = _seq_slow({src}, {p})",
            f"{ind}if {src}:",
            f"{ind}    {parts} = [varint(len({src}))]",
            f"{ind}    for {item} in {src}:",
        ]
        self.emit(out, ind + "        ", schema["items"], item, enc, path + "[]")
        self._end_block(out, ind, parts, enc, dst)

    def emit_map(self, out: list[str], ind: str, schema: dict[str, Any],
                 src: str, dst: str, path: str) -> None:
        p = repr(path)
        parts, key, val = self.fresh("parts"), self.fresh("k"), self.fresh("w")
        kb, enc = self.fresh("kb"), self.fresh("x")
        out += [
            f"{ind}if type({src}) is not dict: {src} = _map_slow({src}, {p})",
            f"{ind}if {src}:",
            f"{ind}    {parts} = [varint(len({src}))]",
            f"{ind}    for {key}, {val} in {src}.items():",
            f"{ind}        if type({key}) is not str: {key} = _str_slow({key}, {path + ' key'!r})",
            f"{ind}        {kb} = {key}.encode()",
            f"{ind}        {parts}.append(varint(len({kb})) + {kb})",
        ]
        self.emit(out, ind + "        ", schema["values"], val, enc, path + "{}")
        self._end_block(out, ind, parts, enc, dst)

    @staticmethod
    def _end_block(out: list[str], ind: str, parts: str, enc: str, dst: str) -> None:
        """The tail arrays and maps share: append the item, close the one
        block with a zero count, and an empty value as a lone zero."""
        out += [
            f"{ind}        {parts}.append({enc})",
            f"{ind}    {parts}.append(b'\\x00')",
            f"{ind}    {dst} = b''.join({parts})",
            f"{ind}else:",
            f"{ind}    {dst} = b'\\x00'",
        ]

    def emit_union(self, out: list[str], ind: str, branches: list[Any],
                   src: str, dst: str, path: str) -> None:
        kinds = [b if isinstance(b, str) else None for b in branches]
        if len(branches) == 2 and "null" in kinds:
            null_at = kinds.index("null")
            other = branches[1 - null_at]
            inner = self.fresh("u")
            out += [
                f"{ind}if {src} is None:",
                f"{ind}    {dst} = {varint(null_at)!r}",
                f"{ind}else:",
            ]
            self.emit(out, ind + "    ", other, src, inner, path)
            out.append(f"{ind}    {dst} = {varint(1 - null_at)!r} + {inner}")
            return
        # General union: fastavro picks the first branch whose validate()
        # accepts the datum (records: the one sharing most fields). Every
        # branch gets its own function; a matcher per branch picks one.
        fns = []
        for index, branch in enumerate(branches):
            fn = self.fresh("branch")
            lines = [f"def {fn}(v):"]
            self.emit(lines, "    ", branch, "v", "r", path)
            lines.append(f"    return {varint(index)!r} + r")
            self.funcs.append(lines)
            fns.append(fn)
        matchers = tuple(_branch_matcher(b, self.named) for b in branches)
        records = tuple(
            frozenset(f["name"] for f in self.resolve(b)["fields"])
            if isinstance(self.resolve(b), dict) and self.resolve(b).get("type") == "record"
            else None
            for b in branches
        )
        unscaled = tuple(i for i, b in enumerate(branches) if _is_unscaled_branch(b, self.named))
        kinds_ = tuple(_kind_of(self.resolve(b)) for b in branches)
        table = self.const((matchers, records, kinds_, unscaled, tuple(branches)), "U")
        pick = f"_union_pick({src}, {table}, {path!r})"
        out.append(f"{ind}{dst} = ({', '.join(fns)},)[{pick}]({src})")

    def emit_record(self, out: list[str], ind: str, schema: dict[str, Any],
                    src: str, dst: str) -> None:
        """A nested record: inlined, except inside itself (recursive types
        call a generated function)."""
        name = schema["name"]
        if name in self.inlining:
            fn = self.record_function(schema)
            out.append(f"{ind}{dst} = {fn}({src})")
            return
        self.inlining.append(name)
        parts = self.emit_fields(out, ind, schema, src)
        self.inlining.pop()
        out.append(f"{ind}{dst} = b''.join(({''.join(x + ', ' for x in parts)}))")

    def record_function(self, schema: dict[str, Any]) -> str:
        name = schema["name"]
        if name in self.record_funcs:
            return self.record_funcs[name]
        fn = self.fresh("record_")
        self.record_funcs[name] = fn  # before the body: recursive types
        lines = [f"def {fn}(d):"]
        parts = self.emit_fields(lines, "    ", schema, "d")
        lines.append(f"    return b''.join(({''.join(x + ', ' for x in parts)}))")
        self.funcs.append(lines)
        return fn

    def emit_fields(self, out: list[str], ind: str, schema: dict[str, Any], rec: str) -> list[str]:
        """Lines encoding every field of the record in ``rec``; returns the
        names of the variables holding the field encodings, in order."""
        out.append(f"{ind}if type({rec}) is not dict: {rec} = _record_slow({rec}, "
                   f"{schema['name']!r})")
        names = []
        for field in schema["fields"]:
            fname = field["name"]
            ftype = field["type"]
            src = self.fresh("v")
            dst = self.fresh("x")
            if "default" in field:
                default = field["default"]
                if default is None or isinstance(default, bool):
                    fallback = repr(default)
                else:
                    fallback = self.const(_python_default(default), "D")
                out.append(f"{ind}{src} = {rec}.get({fname!r}, {fallback})")
            elif _nullable(ftype):
                out.append(f"{ind}{src} = {rec}.get({fname!r})")
            else:
                out.append(f"{ind}{src} = {rec}[{fname!r}]")
            self.emit(out, ind, ftype, src, dst, fname)
            names.append(dst)
        return names


def _kind_of(schema: Any) -> str:
    return schema if isinstance(schema, str) else str(schema.get("type"))


def _nullable(ftype: Any) -> bool:
    return ftype == "null" or (isinstance(ftype, list) and "null" in ftype)


def _python_default(default: Any) -> Any:
    # Avro JSON defaults of our types are already Python values (null, [],
    # {}, false, numbers, strings). They are only read, never mutated.
    return default


def _union_pick(value: Any, table: tuple[Any, ...], path: str) -> int:
    """fastavro's branch choice: the first branch whose validate() accepts the
    value, except that records compete on shared field names and a float
    branch yields to a later double."""
    matchers, records, kinds, unscaled, branches = table
    best = -1
    most = -1
    could_be_float = False
    for index, match in enumerate(matchers):
        if could_be_float:
            if kinds[index] == "double":
                best = index
                break
            continue
        if not match(value):
            continue
        fields = records[index]
        if fields is not None:
            overlap = len(fields.intersection(value))
            if overlap > most:
                best, most = index, overlap
        elif kinds[index] == "float":
            best = index
            could_be_float = True
        else:
            best = index
            break
    if best != -1:
        return best
    if unscaled and isinstance(value, int) and not isinstance(value, bool):
        return int(unscaled[0])
    raise EncodeError(f"{_type_name(value)} value matches no branch of {list(branches)}",
                      field=path or None)


WIRE_RUNTIME: dict[str, Any] = {
    "TL": TL,
    "TC": TC,
    "varint": varint,
    "EncodeError": EncodeError,
    "_bad": _bad,
    "_long_slow": _long_slow,
    "_range_error": _range_error,
    "_double_slow": _double_slow,
    "_pack_double": _pack_double,
    "_float_bytes": _float_bytes,
    "_str_slow": _str_slow,
    "_bytes_slow": _bytes_slow,
    "_seq_slow": _seq_slow,
    "_map_slow": _map_slow,
    "_record_slow": _record_slow,
    "_decimal_slow": _decimal_slow,
    "_fixed": _fixed,
    "_enum_miss": _enum_miss,
    "_union_pick": _union_pick,
}


def collect_named(schema: Any, named: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            collect_named(branch, named)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed") and "name" in schema:
            named.setdefault(schema["name"], schema)
        if kind in ("record", "error"):
            for field in schema.get("fields", ()):
                collect_named(field["type"], named)
        elif kind == "array":
            collect_named(schema["items"], named)
        elif kind == "map":
            collect_named(schema["values"], named)
        elif isinstance(kind, (dict, list)):
            collect_named(kind, named)


def generate_source(schema: Any) -> tuple[str, dict[str, Any]]:
    """Python source of ``encode(d, prefix=b'')`` for a parsed record schema,
    and the constants it refers to."""
    if not (isinstance(schema, dict) and schema.get("__fastavro_parsed")):
        schema = parse_schema(schema)
    if schema.get("type") not in ("record", "error"):
        raise ValueError("fastwire encodes record schemas")
    named: dict[str, Any] = {}
    collect_named(schema, named)
    gen = WireGen(named)
    gen.inlining.append(schema["name"])
    body = ["def encode(d, prefix=b''):"]
    parts = gen.emit_fields(body, "    ", schema, "d")
    body.append(f"    return b''.join((prefix, {''.join(x + ', ' for x in parts)}))")
    return gen.source(body), gen.consts


def compile_encoder(schema: Any) -> Encoder:
    """Compile an encoder ``encode(value, prefix=b"") -> prefix + Avro body``."""
    source, consts = generate_source(schema)
    name = schema.get("name", "record") if isinstance(schema, dict) else "record"
    encode: Encoder = compile_generated(source, f"<fastwire {name}>", "encode", WIRE_RUNTIME,
                                        consts)
    return encode
