"""The .avsc files: valid for fastavro and Apache Avro, matching what the
normaliser produces, round-tripping the vendor examples, and BACKWARD
compatible with every released version in avro/history/."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import avro.schema
import fastavro
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from connector.normalize import normalize_record
from connector.normalize.examples import EXAMPLE_CHANNELS, example_payload
from connector.protocol import Family
from connector.serde import SCHEMA_FILE_STEMS, SchemaSet
from connector.serde.schemas import NAMESPACE

AVRO_DIR = Path(__file__).resolve().parents[2] / "avro"
HISTORY_DIR = AVRO_DIR / "history"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def current_files() -> list[Path]:
    return sorted(AVRO_DIR.glob("*.avsc"))


def test_one_schema_file_per_topic() -> None:
    assert {p.name.removesuffix(".avsc") for p in current_files()} == set(
        SCHEMA_FILE_STEMS.values()
    )


@pytest.mark.parametrize("path", current_files(), ids=lambda p: p.name)
def test_parses_with_fastavro_and_apache_avro(path: Path) -> None:
    text = path.read_text()
    fastavro.parse_schema(json.loads(text))
    parsed = avro.schema.parse(text)
    assert isinstance(parsed, avro.schema.RecordSchema)
    assert parsed.namespace == NAMESPACE
    assert parsed.doc
    for field in parsed.fields:
        assert field.doc, f"{path.name}: field {field.name} has no doc"


def _avro_fields(schema: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f for f in schema["fields"]}


@pytest.mark.parametrize("family", list(Family), ids=str)
def test_normaliser_produces_exactly_the_schema_fields(family: Family) -> None:
    schema = json.loads(SchemaSet.load()[family].text)
    value = normalize_record(
        family, example_payload(family), carry_unknown=True, channel=EXAMPLE_CHANNELS[family]
    ).value
    assert list(value) == list(_avro_fields(schema))
    for name, field in _avro_fields(schema).items():
        nullable = isinstance(field["type"], list) and field["type"][0] == "null"
        # optional fields are nullable with a null default; every field added
        # later must have a default too (see avro/README.md)
        if nullable:
            assert field.get("default", "missing") is None, name


def _round_trip(schema: Any, value: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, value)
    buffer.seek(0)
    result = fastavro.schemaless_reader(buffer, schema, schema)
    assert isinstance(result, dict)
    return result


def _expected_after_read(value: Any, field_type: Any) -> Any:
    """What fastavro hands back: timestamp-micros become datetimes."""
    if isinstance(field_type, list):
        field_type = next(t for t in field_type if t != "null") if value is not None else "null"
    if isinstance(field_type, dict) and field_type.get("logicalType") == "timestamp-micros":
        return EPOCH + timedelta(microseconds=value)
    return value


@pytest.mark.parametrize("family", list(Family), ids=str)
def test_examples_round_trip_exactly(family: Family) -> None:
    family_schema = SchemaSet.load()[family]
    payload = example_payload(family)
    payload["surprise"] = {"nested": [1, 2.5, None]}
    value = normalize_record(
        family, payload, carry_unknown=True, channel=EXAMPLE_CHANNELS[family]
    ).value
    read = _round_trip(family_schema.parsed, value)
    fields = _avro_fields(json.loads(family_schema.text))
    for name, written in value.items():
        assert read[name] == _expected_after_read(written, fields[name]["type"]), name
    assert read["extras"] == {"surprise": '{"nested":[1,2.5,null]}'}


def test_decimals_survive_the_wire_digit_for_digit() -> None:
    schemas = SchemaSet.load()
    fills = example_payload(Family.fills)
    fills["fee_1e9"] = 9223372036854775807
    read = _round_trip(
        schemas[Family.fills].parsed,
        normalize_record(Family.fills, fills, carry_unknown=False).value,
    )
    assert read["fee"] == Decimal("9223372036.854775807")
    assert read["qty"] == Decimal("0.00700000")
    book = example_payload(Family.book)
    book["bids"] = [[76410.1, 1e-08], [0.1, 0.421]]
    read = _round_trip(
        schemas[Family.book].parsed, normalize_record(Family.book, book, carry_unknown=False).value
    )
    assert [(lv["px"], lv["sz"]) for lv in read["bids"]] == [
        (Decimal("76410.1"), Decimal("0.00000001")),
        (Decimal("0.1"), Decimal("0.421")),
    ]
    assert read["checksum"] == 1448524378


# --- BACKWARD compatibility against every released version -----------------


def history_pairs() -> list[tuple[str, Path]]:
    return [
        (topic_dir.name, version)
        for topic_dir in sorted(HISTORY_DIR.iterdir())
        for version in sorted(topic_dir.glob("v*.avsc"))
    ]


def is_backward_compatible(current_text: str, previous_text: str) -> tuple[bool, str]:
    """Can a reader on the current schema read data written with the previous
    one? Decided by Apache Avro's own checker, not by our rules."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(
        reader=avro.schema.parse(current_text), writer=avro.schema.parse(previous_text)
    )
    return result.compatibility is SchemaCompatibilityType.compatible, str(result.messages)


def test_every_topic_has_a_released_v1() -> None:
    for stem in SCHEMA_FILE_STEMS.values():
        assert (HISTORY_DIR / stem / "v1.avsc").is_file(), stem


@pytest.mark.parametrize(
    ("topic", "version"), history_pairs(), ids=lambda x: x if isinstance(x, str) else x.name
)
def test_current_schema_reads_every_historical_version(topic: str, version: Path) -> None:
    current = (AVRO_DIR / f"{topic}.avsc").read_text()
    ok, messages = is_backward_compatible(current, version.read_text())
    assert ok, f"{topic}: current schema cannot read {version.name}: {messages}"


def test_the_checker_catches_breaking_changes() -> None:
    """Guard the guard: the helper must reject what BACKWARD forbids."""
    previous = (HISTORY_DIR / "sequence.fills" / "v1.avsc").read_text()
    schema = json.loads(previous)
    added_without_default = json.loads(previous)
    added_without_default["fields"].append({"name": "liquidity", "type": "string"})
    assert not is_backward_compatible(json.dumps(added_without_default), previous)[0]
    added_with_default = json.loads(previous)
    added_with_default["fields"].append(
        {"name": "liquidity", "type": ["null", "string"], "default": None}
    )
    assert is_backward_compatible(json.dumps(added_with_default), previous)[0]
    retyped = json.loads(previous)
    next(f for f in retyped["fields"] if f["name"] == "qty_1e8")["type"] = "string"
    assert not is_backward_compatible(json.dumps(retyped), previous)[0]
    assert is_backward_compatible(json.dumps(schema), previous)[0]
