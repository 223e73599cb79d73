"""The builders that apply a field layout (``normalize/layout.py``) to a payload.

A builder turns one vendor payload into the Avro-ready dict: generated and
compiled once per layout (``compile_builder``, through ``connector.codegen``),
with an interpreting twin (``build_value_reference``) that tests compare it
with. ``decimals=False`` builds leave decimals as unscaled ints for
``serde/fastwire.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from connector.codegen import EXACT, LONG_CHECK, CodeGen, compile_generated
from connector.errors import NormalizeError
from connector.normalize import values as v
from connector.normalize.layout import (
    FIXED_SCALE,
    FieldSpec,
    Kind,
    RecordSpec,
    decimal_name,
    timestamp_companion,
)


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
    elif kind in FIXED_SCALE:
        raw = v.as_long(value, name)
        out[decimal_name(spec.name)] = v.fixed_to_decimal(raw, FIXED_SCALE[kind])
        out[spec.name] = raw
    elif kind is Kind.TIMESTAMP_NS:
        ns = v.as_long(value, name)
        out[spec.name] = ns
        out[timestamp_companion(spec.name)] = v.ns_to_micros(ns)
    elif kind is Kind.JSON:
        out[spec.name + "_json"] = orjson.dumps(value).decode()
    elif kind is Kind.RECORDS:
        assert spec.items is not None  # noqa: S101 - a RECORDS layout always names its items
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


# -- compiled builders ------------------------------------------------------------
#
# ``_build`` above interprets a RecordSpec field by field; it stays as the
# reference. The hot path runs a function generated once per (spec, mode):
# the same checks in the same order with the same errors (every non-trivial
# case calls the very converter ``_build`` calls), but with the per-field
# dispatch resolved at compile time, the common types checked by ``type(x) is``
# and the output dict built as one literal.
#
# Two modes: ``decimals=True`` gives exact Decimal values (what
# ``normalize_record`` returns); ``decimals=False`` gives, in every decimal
# field, the *unscaled* int (``price_1e9`` itself, book levels times 1e18)
# that only the fastwire encoder takes; the Avro bytes are identical.



def _missing(data: Mapping[str, Any], name: str, path: str) -> NormalizeError:
    state = "missing" if name not in data else "null"
    return NormalizeError(f"required field is {state}", field=path + name)


def _not_an_object(path: str) -> NormalizeError:
    return NormalizeError("expected an object", field=path.rstrip(".") or None)


def _add_unknowns(
    known: frozenset[str], data: Mapping[str, Any], unknown: _Unknown, path: str,
    report_prefix: str,
) -> None:
    for key, value in data.items():
        if key not in known:
            unknown.add(report_prefix + key, path + key, value)


_POW10 = tuple(10**n for n in range(v.LEVEL_SCALE + 1))
_LEVEL_INT_LIMIT = 10 ** (v.LEVEL_PRECISION - v.LEVEL_SCALE)



# Book prices sit on a tick grid and repeat from update to update: the
# unscaled value of each printed number is cached (bounded; cleared when
# full). Only successful conversions are cached, and 0.0/-0.0 (equal keys)
# both give 0.
_LEVEL_CACHE: dict[float, int] = {}
_LEVEL_CACHE_MAX = 65536


def level_unscaled(value: Any, index: int, name: str) -> int:
    """``level_decimal`` as the unscaled int of decimal(38, 18), exactly."""
    unscaled: int | None = None
    if type(value) is float:
        if value - value == 0.0:  # finite
            text = repr(value)
            if "e" not in text:  # plain "76410.5": |value| < 1e16, integer digits fit
                whole, _, fraction = text.partition(".")
                if len(fraction) <= v.LEVEL_SCALE:
                    unscaled = int(whole + fraction) * _POW10[v.LEVEL_SCALE - len(fraction)]
                    if len(_LEVEL_CACHE) >= _LEVEL_CACHE_MAX:
                        _LEVEL_CACHE.clear()
                    _LEVEL_CACHE[value] = unscaled
                    return unscaled
    elif type(value) is int and -_LEVEL_INT_LIMIT < value < _LEVEL_INT_LIMIT:
        unscaled = int(value) * _POW10[v.LEVEL_SCALE]
    if unscaled is None:
        number = v.level_decimal(value, f"{name}[{index}]")  # raises the exact error
        unscaled = int(number.scaleb(v.LEVEL_SCALE, EXACT))
    return unscaled


def _levels_unscaled(value: Any, name: str) -> list[dict[str, Any]]:
    """``_levels`` with unscaled ints instead of Decimals."""
    if not isinstance(value, list):
        raise NormalizeError("expected a list of [px, sz] levels", field=name)
    cache = _LEVEL_CACHE
    levels = []
    for index, level in enumerate(value):
        if type(level) is not list and not isinstance(level, tuple) or len(level) != 2:
            raise NormalizeError("a level must be [px, sz]", field=f"{name}[{index}]")
        px, sz = level
        # type() guard: True == 1 == 1.0 as dict keys, and a bool must fail
        upx = cache.get(px) if type(px) is float else None
        if upx is None:
            upx = level_unscaled(px, index, name)
        usz = cache.get(sz) if type(sz) is float else None
        if usz is None:
            usz = level_unscaled(sz, index, name)
        levels.append({"px": upx, "sz": usz})
    return levels


class _BuilderGen(CodeGen):
    def __init__(self, decimals: bool) -> None:
        super().__init__()
        self.decimals = decimals
        self.compiled: dict[int, str] = {}

    def const(self, value: Any, prefix: str = "C") -> str:
        return super().const(value, prefix)

    def function(self, spec: RecordSpec, top: bool) -> str:
        if id(spec) in self.compiled:
            return self.compiled[id(spec)]
        fn = self.fresh("build")
        self.compiled[id(spec)] = fn
        lines = [
            f"def {fn}(data, unknown, path, report_prefix):",
            "    if type(data) is not dict and not isinstance(data, Mapping):",
            "        raise _not_an_object(path)",
            "    get = data.get",
        ]
        items: list[str] = []
        for index, field_spec in enumerate(spec.fields):
            self.field(lines, items, field_spec, f"f{index}")
        if top:
            items.append("'extras': unknown.extras")
        known = self.const(spec.known)
        lines += [
            f"    if not {known}.issuperset(data):",
            f"        _add_unknowns({known}, data, unknown, path, report_prefix)",
            "    return {" + ", ".join(items) + "}",
        ]
        self.funcs.append(lines)
        return fn

    def field(self, out: list[str], items: list[str], spec: FieldSpec, var: str) -> None:
        name = spec.name
        kind = spec.kind
        q = repr(name)
        where = f"path + {q}"
        out.append(f"    {var} = get({q})")
        names = spec.output_names()
        extra = f"{var}_b"
        if spec.required:
            out.append(f"    if {var} is None: raise _missing(data, {q}, path)")
            out.append("    else:")
        else:
            default = spec.default
            out.append(f"    if {var} is None:")
            if isinstance(default, list):
                out.append(f"        {var} = list({self.const(default)})")
            elif default is None or isinstance(default, bool):
                out.append(f"        {var} = {default!r}")
            else:
                out.append(f"        {var} = {self.const(default)}")
            if len(names) == 2:
                out.append(f"        {extra} = {var}")
            out.append("    else:")
        ind = "        "
        if kind is Kind.STRING:
            out.append(f"{ind}if type({var}) is not str: {var} = as_string({var}, {where})")
        elif kind is Kind.ID:
            out.append(f"{ind}if type({var}) is not str: {var} = as_id({var}, {where})")
        elif kind is Kind.BOOL:
            out.append(f"{ind}if type({var}) is not bool: {var} = as_bool({var}, {where})")
        elif kind is Kind.DOUBLE:
            out.append(f"{ind}if type({var}) is not float or {var} - {var} != 0.0: "
                       f"{var} = as_double({var}, {where})")
        elif kind in (Kind.LONG, Kind.FIXED_1E9, Kind.FIXED_1E8, Kind.TIMESTAMP_NS):
            check = LONG_CHECK.format(v=var)
            out.append(f"{ind}if {check}: {var} = as_long({var}, {where})")
            if kind is Kind.TIMESTAMP_NS:
                out.append(f"{ind}{extra} = {var} // 1000")
            elif kind is not Kind.LONG:
                if self.decimals:
                    scale = FIXED_SCALE[kind]
                    out.append(f"{ind}{extra} = fixed_to_decimal({var}, {scale})")
                else:
                    out.append(f"{ind}{extra} = {var}")
        elif kind is Kind.LEVELS:
            fn = "_levels" if self.decimals else "_levels_unscaled"
            out.append(f"{ind}{var} = {fn}({var}, {where})")
        elif kind in _SIMPLE:  # lenient double, string/id lists
            out.append(f"{ind}{var} = {self.const(_SIMPLE[kind])}({var}, {where})")
        elif kind is Kind.JSON:
            out.append(f"{ind}{var} = dumps({var}).decode()")
        elif kind is Kind.RECORDS:
            assert spec.items is not None  # noqa: S101 - a RECORDS layout always names its items
            sub = self.function(spec.items, top=False)
            out += [
                f"{ind}if not isinstance({var}, list):",
                f"{ind}    raise NormalizeError('expected a list of objects', field={where})",
                (f"{ind}{var} = [{sub}(item, unknown, f'{{path}}{name}[{{i}}].', "
                 f"f'{{path}}{name}.') for i, item in enumerate({var})]"),
            ]
        else:  # pragma: no cover - every Kind is handled above
            raise AssertionError(kind)
        if kind in FIXED_SCALE:
            items.append(f"{names[0]!r}: {extra}")
            items.append(f"{names[1]!r}: {var}")
        elif kind is Kind.TIMESTAMP_NS:
            items.append(f"{names[0]!r}: {var}")
            items.append(f"{names[1]!r}: {extra}")
        else:
            items.append(f"{names[0]!r}: {var}")


_RUNTIME: dict[str, Any] = {
    "Mapping": Mapping,
    "NormalizeError": NormalizeError,
    "_missing": _missing,
    "_not_an_object": _not_an_object,
    "_add_unknowns": _add_unknowns,
    "_levels": _levels,
    "_levels_unscaled": _levels_unscaled,
    "as_string": v.as_string,
    "as_id": v.as_id,
    "as_bool": v.as_bool,
    "as_double": v.as_double,
    "as_long": v.as_long,
    "fixed_to_decimal": v.fixed_to_decimal,
    "dumps": orjson.dumps,
}

Builder = Callable[[Any, _Unknown, str, str], dict[str, Any]]


def compile_builder(spec: RecordSpec, *, decimals: bool = True) -> Builder:
    """Generate and compile the builder of ``spec`` (see above)."""
    gen = _BuilderGen(decimals)
    top = gen.function(spec, top=True)
    builder: Builder = compile_generated(gen.source(), "<normalize builder>", top,
                                         _RUNTIME, gen.consts)
    return builder


# (spec, decimals) -> builder; keyed by id with the spec kept alive and
# checked, since a frozen spec hashes all its fields on every lookup.
_BUILDERS: dict[tuple[int, bool], tuple[RecordSpec, Builder]] = {}


def builder_for(spec: RecordSpec, decimals: bool = True) -> Builder:
    entry = _BUILDERS.get((id(spec), decimals))
    if entry is None or entry[0] is not spec:
        entry = (spec, compile_builder(spec, decimals=decimals))
        _BUILDERS[(id(spec), decimals)] = entry
    return entry[1]


def build_value(
    spec: RecordSpec, data: Mapping[str, Any], *, carry_unknown: bool, decimals: bool = True
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Apply ``spec`` to one payload: (Avro-ready value, unknown field names).

    Nested unknowns are reported as ``contributors.foo`` and carried under
    ``contributors[2].foo`` so that nothing is lost and the map stays flat.
    ``decimals=False``: decimal fields hold unscaled ints (fastwire only).
    """
    unknown = _Unknown(carry_unknown)
    value = builder_for(spec, decimals)(data, unknown, "", "")
    return value, tuple(unknown.names)


def build_value_reference(
    spec: RecordSpec, data: Mapping[str, Any], *, carry_unknown: bool
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``build_value`` by the interpreting reference builder (tests compare them)."""
    unknown = _Unknown(carry_unknown)
    value = _build(spec, data, unknown, "", "")
    value["extras"] = unknown.extras
    return value, tuple(unknown.names)
