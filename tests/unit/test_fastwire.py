"""connector.serde.fastwire against fastavro, byte for byte, and the compiled
normalise builders against the interpreting reference builder.

Random records (fixed seeds) are generated from the schemas themselves, so
every schema in avro/ - and a synthetic one with the Avro types ours do not
use - is covered field by field, with edge values: 0, +-1, int32/int64
limits, varint length boundaries, decimals at full precision, -128 (a two
byte decimal), empty and non-ASCII strings, long strings, empty arrays and
maps, null and non-null unions.
"""

from __future__ import annotations

import decimal
import io
import math
import random
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest

from connector.errors import BadInputError, EncodeError
from connector.normalize import normalize_for_wire, normalize_record
from connector.normalize.builders import build_value, build_value_reference
from connector.normalize.examples import EXAMPLE_CHANNELS, example_payload
from connector.normalize.record_specs import RECORD_SPECS
from connector.protocol import Family
from connector.serde import SchemaSet, WireEncoder, wire_header
from connector.serde.fastwire import compile_encoder, varint

AVRO_DIR = Path(__file__).resolve().parents[2] / "avro"
AVSC = sorted(AVRO_DIR.glob("*.avsc"))
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
ROUNDS = 300
EXACT = decimal.Context(prec=100)

SYNTHETIC = {
    "type": "record",
    "name": "Everything",
    "namespace": "test.fastwire",
    "fields": [
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "b", "type": "boolean"},
        {"name": "s", "type": "string"},
        {"name": "raw", "type": "bytes"},
        {"name": "n", "type": "null"},
        {"name": "e",
         "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
        {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "e2", "type": "Color"},
        {"name": "string_first", "type": ["string", "null"]},
        {"name": "multi", "type": ["null", "string", "long", "double", "boolean"]},
        {"name": "long_or_double", "type": ["long", "double"]},
        {"name": "dec_small", "type": {"type": "bytes", "logicalType": "decimal",
                                       "precision": 4, "scale": 2}},
        {"name": "dec_wide", "type": ["null", {"type": "bytes", "logicalType": "decimal",
                                               "precision": 38, "scale": 18}]},
        {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "map_of_arrays", "type": {"type": "map", "values": {
            "type": "array", "items": ["null", "long"]}}},
        {"name": "nested", "type": ["null", {
            "type": "record", "name": "Node", "fields": [
                {"name": "label", "type": "string"},
                {"name": "next", "type": ["null", "Node"], "default": None},
            ]}], "default": None},
        {"name": "nodes", "type": {"type": "array", "items": "Node"}, "default": []},
        {"name": "with_default", "type": "long", "default": 42},
    ],
}


def _schemas() -> list[tuple[str, Any]]:
    found = [(p.name, fastavro.parse_schema(orjson.loads(p.read_text()))) for p in AVSC]
    return [*found, ("synthetic", fastavro.parse_schema(SYNTHETIC))]


SCHEMAS = _schemas()


# -- a random datum generator driven by the schema --------------------------------


class Gen:
    """Random valid data for a parsed schema. ``ints=True`` writes decimal
    fields as their unscaled int (same random draws, so the same record)."""

    def __init__(self, schema: Any, seed: int, ints: bool = False) -> None:
        self.named: dict[str, Any] = dict(schema.get("__named_schemas", {}))
        self.rnd = random.Random(seed)
        self.ints = ints

    def long(self, lo: int, hi: int) -> int:
        r = self.rnd
        k = r.randint(0, (hi.bit_length()))
        choices = [0, 1, -1, lo, hi, 63, 64, -64, -65, 8191, 8192, -8193,
                   min(hi, 2**k), max(lo, -(2**k)), min(hi, 2**k - 1), max(lo, -(2**k) - 1),
                   r.randint(lo, hi), r.randint(-1000, 1000), r.randint(0, 2**k)]
        return r.choice(choices)

    def decimal(self, precision: int, scale: int) -> Decimal | int:
        r = self.rnd
        top = 10**precision - 1
        choices = [0, 1, -1, top, -top, 127, 128, -128, -129, 255, 256, -256,
                   2**63, -(2**63), r.randint(-top, top), r.randint(-(10**9), 10**9)]
        unscaled = r.choice([c for c in choices if -top <= c <= top])
        trim = r.random() < 0.3
        if self.ints:
            return unscaled
        exact = Decimal(f"{unscaled}E-{scale}")  # scaleb would round past 28 digits
        if trim:  # fewer fractional digits than the scale: fastavro pads
            trimmed = exact.normalize(EXACT)
            if trimmed.as_tuple().exponent <= 0:
                return trimmed
        return exact

    def string(self) -> str:
        r = self.rnd
        return r.choice(["", "a", "é", "日本語", "\U0001f600 emoji", "x" * 64, "y" * 9000,
                         "".join(chr(r.randint(32, 0x2FFF)) for _ in range(r.randint(0, 80)))])

    def value(self, schema: Any, depth: int = 0) -> Any:
        r = self.rnd
        while isinstance(schema, str) and schema in self.named:
            schema = self.named[schema]
        if isinstance(schema, list):
            branches = schema
            if depth > 3 and "null" in branches:
                return None
            return self.value(r.choice(branches), depth + 1)
        kind = schema if isinstance(schema, str) else schema["type"]
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if kind == "null":
            return None
        if kind == "boolean":
            return r.random() < 0.5
        if kind == "int":
            return self.long(INT_MIN, INT_MAX)
        if kind == "long":
            return self.long(LONG_MIN, LONG_MAX)
        if kind == "float":
            return r.choice([0.0, -0.0, 1.5, -2.25, float(r.randint(-1000, 1000)),
                             r.uniform(-1e30, 1e30), float("inf")])
        if kind == "double":
            return r.choice([0.0, -0.0, 1.5, 5e-324, 1.7976931348623157e308, float("-inf"),
                             r.uniform(-1e300, 1e300), r.randint(-(2**53), 2**53)])
        if kind == "string":
            return self.string()
        if kind == "bytes" and logical == "decimal":
            return self.decimal(schema["precision"], schema.get("scale", 0))
        if kind == "bytes":
            return r.choice([b"", b"\x00", bytes(range(256)), r.randbytes(r.randint(0, 70))])
        if kind == "fixed":
            return r.randbytes(schema["size"])
        if kind == "enum":
            return r.choice(schema["symbols"])
        if kind == "array":
            count = 0 if depth > 3 else r.choice([0, 1, 2, 5])
            return [self.value(schema["items"], depth + 1) for _ in range(count)]
        if kind == "map":
            count = 0 if depth > 3 else r.choice([0, 1, 3])
            return {self.string() + str(i): self.value(schema["values"], depth + 1)
                    for i in range(count)}
        if kind == "record":
            out = {}
            for field in schema["fields"]:
                value = self.value(field["type"], depth + 1)
                optional = "default" in field or (
                    isinstance(field["type"], list) and "null" in field["type"])
                if optional and r.random() < 0.15:
                    continue  # missing: the default (or null) applies
                out[field["name"]] = value
            return out
        raise AssertionError(schema)


def fastavro_bytes(schema: Any, value: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, value)
    return buffer.getvalue()


# -- byte identity ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "schema"), SCHEMAS, ids=[n for n, _ in SCHEMAS])
def test_random_records_are_byte_identical(name: str, schema: Any) -> None:
    encode = compile_encoder(schema)
    for seed in range(ROUNDS):
        value = Gen(schema, seed).value(schema)
        expected = fastavro_bytes(schema, value)
        assert encode(value) == expected, (seed, value)
        assert encode(value, b"\x00\x00\x00\x00\x07") == b"\x00\x00\x00\x00\x07" + expected
        # the same record with every decimal as its unscaled int
        as_ints = Gen(schema, seed, ints=True).value(schema)
        assert encode(as_ints) == expected, (seed, as_ints)


@pytest.mark.parametrize("family", list(Family), ids=str)
def test_wire_encoder_matches_header_plus_fastavro(family: Family) -> None:
    schemas = SchemaSet.load()
    encoder = WireEncoder(schemas, {f: 1000 + i for i, f in enumerate(Family)})
    schema = schemas[family].parsed
    for seed in range(50):
        value = Gen(schema, seed).value(schema)
        expected = wire_header(encoder.schema_ids[family]) + fastavro_bytes(schema, value)
        assert encoder.encode(family, value) == expected


@pytest.mark.parametrize(
    "value",
    [0, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, 2**27, 2**28, 2**41, 2**42, 2**55, 2**56,
     2**62, LONG_MAX, LONG_MIN, LONG_MIN + 1, 1745979000123456789, -1745979000123456789],
)
def test_long_boundaries(value: int) -> None:
    schema = fastavro.parse_schema({"type": "record", "name": "L", "fields": [
        {"name": "l", "type": "long"}, {"name": "i", "type": ["null", "int"]}]})
    encode = compile_encoder(schema)
    small = value if INT_MIN <= value <= INT_MAX else None
    record = {"l": value, "i": small}
    assert encode(record) == fastavro_bytes(schema, record)
    assert varint(value) == fastavro_bytes(schema, {"l": value, "i": None})[:-1]


@pytest.mark.parametrize("value", [LONG_MAX + 1, LONG_MIN - 1, 2**64, -(2**64), 2**100,
                                   -(2**100), 2**64 - 1])
def test_long_out_of_range_is_refused(value: int) -> None:
    encoder = WireEncoder(schema_ids={Family.prices: 1})
    good = normalize_record(Family.prices, example_payload(Family.prices),
                            carry_unknown=False).value
    with pytest.raises(EncodeError, match="64 bits"):
        encoder.encode(Family.prices, dict(good, ts_ns=value))
    with pytest.raises(EncodeError):
        encoder.encode(Family.prices, dict(good, best_bid_px_1e9=value))


def test_int32_out_of_range_is_refused() -> None:
    schema = fastavro.parse_schema(SYNTHETIC)
    base = Gen(schema, 1).value(schema)
    encode = compile_encoder(schema)
    for bad in (INT_MAX + 1, INT_MIN - 1, 2**40, LONG_MAX):
        with pytest.raises(EncodeError, match="32 bits"):
            encode(dict(base, i=bad))


def test_decimal_edges() -> None:
    schema = fastavro.parse_schema({"type": "record", "name": "D", "fields": [
        {"name": "d", "type": {"type": "bytes", "logicalType": "decimal",
                               "precision": 38, "scale": 9}}]})
    encode = compile_encoder(schema)
    top = 10**38 - 1
    for unscaled in (0, 1, -1, 127, 128, -128, -129, 255, 256, top, -top,
                     LONG_MAX, LONG_MIN, 76410000000000):
        as_decimal = Decimal(f"{unscaled}E-9")
        expected = fastavro_bytes(schema, {"d": as_decimal})
        assert encode({"d": as_decimal}) == expected
        assert encode({"d": unscaled}) == expected
    for text in ("-0", "0E-9", "1.5", "-76410.5", "1E+3", "0.000000001"):
        assert encode({"d": Decimal(text)}) == fastavro_bytes(schema, {"d": Decimal(text)})
    # raw two's complement bytes pass through, as fastavro writes them
    assert encode({"d": b"\xff\x80"}) == fastavro_bytes(schema, {"d": b"\xff\x80"})


# -- refusals ----------------------------------------------------------------------------


BAD_VALUES: list[Any] = [
    None, True, False, 1, -1, 2**63, -(2**63) - 1, 2**31, 1.5, float("nan"), "x", "",
    b"x", Decimal("1.5"), Decimal("NaN"), Decimal("1E-30"), Decimal("9" * 39), [], [1],
    {}, {"a": 1}, {1: "a"}, ("a",), object(),
]


@pytest.mark.parametrize(("name", "schema"), SCHEMAS, ids=[n for n, _ in SCHEMAS])
def test_what_fastavro_refuses_is_refused(name: str, schema: Any) -> None:
    """Mutate one field of a valid record at random: whenever fastavro
    refuses the result we must raise EncodeError (never other exceptions,
    never bytes); whenever we accept it the bytes equal fastavro's."""
    encode = compile_encoder(schema)
    rnd = random.Random(99)
    scales = {f["name"]: b["scale"] for f in schema["fields"]
              for b in (f["type"] if isinstance(f["type"], list) else [f["type"]])
              if isinstance(b, dict) and b.get("logicalType") == "decimal"}
    refused = 0
    for seed in range(ROUNDS):
        value = Gen(schema, seed).value(schema)
        field = rnd.choice(schema["fields"])["name"]
        bad = dict(value)
        if rnd.random() < 0.1:
            bad.pop(field, None)
        else:
            bad[field] = rnd.choice(BAD_VALUES)
        try:
            expected: bytes | None = fastavro_bytes(schema, bad)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            expected = None
        try:
            ours: bytes | None = _wire_encode(encode, bad)
        except EncodeError:
            ours = None
        unscaled = bad.get(field)
        if field in scales and type(unscaled) is int:
            # the one deliberate extension: an int in a decimal field is the
            # unscaled value; it encodes like the exact Decimal would
            as_decimal = dict(bad, **{field: Decimal(f"{unscaled}E-{scales[field]}")})
            try:
                assert ours == fastavro_bytes(schema, as_decimal)
            except ValueError:  # beyond the precision: both refuse
                assert ours is None
            continue
        if expected is None:
            assert ours is None, (field, bad.get(field))
            refused += 1
        elif ours is not None:
            assert ours == expected, (field, bad.get(field))
    assert refused > ROUNDS // 4


def _wire_encode(encode: Any, value: Any) -> bytes:
    # what WireEncoder.encode does with a compiled encoder's exceptions
    try:
        result: bytes = encode(value)
    except EncodeError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError) as exc:
        raise EncodeError(str(exc)) from exc
    return result


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ts_ns", True),  # fastavro would write 1
        ("ts_ns", 1.7),  # fastavro would truncate to 1
        ("ts_ns", "1745979000123456789"),
        ("spread_bps", "1.5"),  # fastavro would parse the string
        ("spread_bps", True),
        ("best_bid_px", "76410"),
        ("best_bid_px", 76410.0),  # a float is never a decimal
        ("best_bid_px", True),  # a bool is not an unscaled int
        ("best_bid_px", Decimal("0.0000000001")),  # finer than the scale
        ("best_bid_px", Decimal("1E+30")),  # 39 digits once scaled: fastavro writes it
        ("best_bid_px", 10**38),  # unscaled beyond the precision
        ("best_bid_px", Decimal("Infinity")),
        ("symbol", None),
        ("symbol", b"BTC-USD"),
        ("instrument_type", 5),
        ("extras", None),
        ("extras", {"a": 1}),
        ("extras", {1: "a"}),
        ("extras", [("a", "b")]),
        ("symbol", "\ud800"),  # not encodable as UTF-8
    ],
)
def test_wrong_types_raise_encode_error(field: str, value: Any) -> None:
    encoder = WireEncoder(schema_ids={Family.prices: 1})
    good = normalize_for_wire(Family.prices, example_payload(Family.prices),
                              carry_unknown=False).value
    with pytest.raises(EncodeError) as info:
        encoder.encode(Family.prices, dict(good, **{field: value}))
    assert info.value.stage == "encode"


def test_missing_required_field_and_non_mapping() -> None:
    encoder = WireEncoder(schema_ids={Family.book: 1})
    good = normalize_for_wire(Family.book, example_payload(Family.book),
                              carry_unknown=False).value
    with pytest.raises(EncodeError, match="symbol"):
        encoder.encode(Family.book, {k: v for k, v in good.items() if k != "symbol"})
    with pytest.raises(EncodeError):
        encoder.encode(Family.book, [("symbol", "x")])  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        encoder.encode(Family.book, dict(good, bids="not levels"))
    with pytest.raises(EncodeError):
        encoder.encode(Family.book, dict(good, bids=[{"px": 1}]))
    with pytest.raises(EncodeError):
        encoder.encode(Family.book, dict(good, is_snapshot=None))


def test_generated_source_is_kept_for_debugging() -> None:
    encode = compile_encoder(SchemaSet.load()[Family.prices].parsed)
    assert "def encode(d, prefix=b''):" in encode.__generated_source__  # type: ignore[attr-defined]


# -- normalise: compiled builders vs the reference ---------------------------------------


def _mutations(family: Family, seed: int) -> dict[str, Any]:
    rnd = random.Random(seed)
    payload = example_payload(family)
    spec = RECORD_SPECS[family]
    for _ in range(rnd.randint(0, 3)):
        name = rnd.choice([f.name for f in spec.fields] + ["unknown_" + str(seed)])
        payload[name] = rnd.choice([
            None, 0, -1, 2**63, LONG_MIN, LONG_MAX, True, 1.5, float("inf"), "7", "",
            [], [[1.5, 2]], [[1e-19, 1]], [[1e20, 1]], [[-0.0, 0.1]], [["1", 2]], [1, 2],
            {"venue": "x", "mid_1e9": 5}, [{"venue": "x", "mid_1e9": 5, "new": 1}],
            ["a", 1], ["a", 1.5], 12345678901234567890,
        ])
        if rnd.random() < 0.2:
            payload.pop(name, None)
    return payload


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except BadInputError as exc:
        return ("error", type(exc), exc.reason, exc.field)


@pytest.mark.parametrize("family", list(Family), ids=str)
def test_compiled_builder_equals_reference(family: Family) -> None:
    spec = RECORD_SPECS[family]
    for seed in range(200):
        payload = _mutations(family, seed)
        for carry in (False, True):
            compiled = _outcome(partial(build_value, spec, payload, carry_unknown=carry))
            reference = _outcome(partial(build_value_reference, spec, payload,
                                         carry_unknown=carry))
            assert compiled == reference, (seed, payload)
            if compiled[0] == "ok":
                assert list(compiled[1][0]) == list(reference[1][0])  # field order too


@pytest.mark.parametrize("family", list(Family), ids=str)
def test_normalize_for_wire_encodes_to_the_same_bytes(family: Family) -> None:
    encoder = WireEncoder(schema_ids={f: 1 for f in Family})
    channel = EXAMPLE_CHANNELS[family]
    for seed in range(200):
        payload = _mutations(family, seed)
        exact = _outcome(partial(normalize_record, family, payload, carry_unknown=True,
                                 channel=channel))
        fast = _outcome(partial(normalize_for_wire, family, payload, carry_unknown=True,
                                channel=channel))
        assert exact[0] == fast[0], (seed, payload)
        if exact[0] == "error":
            assert exact == fast
            continue
        a, b = exact[1], fast[1]
        assert (a.key, a.event_ts_ns, a.unknown_fields) == (b.key, b.event_ts_ns,
                                                            b.unknown_fields)
        assert _outcome(partial(encoder.encode, family, a.value)) == _outcome(
            partial(encoder.encode, family, b.value)), (seed, payload)


def test_book_levels_unscaled_are_exact() -> None:
    payload = example_payload(Family.book)
    levels = [[76410.1, 0.1], [0.3, 1e-18], [123456789012345.6, 5], [1e15, 0.000123],
              [-0.0, 7e-5], [1e19, 2.5e-7]]
    payload["bids"] = levels
    exact = normalize_record(Family.book, payload, carry_unknown=False).value
    fast = normalize_for_wire(Family.book, payload, carry_unknown=False).value
    for exact_level, fast_level in zip(exact["bids"], fast["bids"], strict=True):
        for key in ("px", "sz"):
            assert Decimal(fast_level[key]).scaleb(-18) == exact_level[key]
            assert not math.isnan(fast_level[key])
    schema = SchemaSet.load()[Family.book].parsed
    assert compile_encoder(schema)(fast) == fastavro_bytes(schema, exact)


def test_datetimes_in_timestamp_fields_convert_as_fastavro_does() -> None:
    import datetime

    schema = fastavro.parse_schema({"type": "record", "name": "T", "fields": [
        {"name": "us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "ms", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
    ]})
    encode = compile_encoder(schema)
    moment = datetime.datetime(2026, 4, 30, 12, 0, 0, 123456, tzinfo=datetime.UTC)
    record = {"us": moment, "ms": moment}
    assert encode(record) == fastavro_bytes(schema, record)
    with pytest.raises(EncodeError):
        encode({"us": 1.5, "ms": None})  # fastavro would truncate a float
