"""SchemaSet, TopicNames and the wire encoder (no registry needed here)."""

from __future__ import annotations

import io
import shutil
from decimal import Decimal
from pathlib import Path

import fastavro
import pytest

from connector.errors import EncodeError, FatalError
from connector.normalize import normalize_record
from connector.normalize.examples import EXAMPLE_CHANNELS, example_payload
from connector.protocol import Family
from connector.serde import AVRO_DIR_ENV, SchemaSet, TopicNames, WireEncoder, wire_header

AVRO_DIR = Path(__file__).resolve().parents[2] / "avro"


def test_schema_set_loads_every_family() -> None:
    schemas = SchemaSet.load()
    assert set(schemas.schemas) == set(Family)
    assert schemas[Family.fills].path == AVRO_DIR / "sequence.fills.avsc"
    assert '"name": "Fill"' in schemas[Family.fills].text


def test_schema_dir_from_env_and_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in AVRO_DIR.glob("*.avsc"):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setenv(AVRO_DIR_ENV, str(tmp_path))
    assert SchemaSet.load()[Family.book].path == tmp_path / "sequence.book.avsc"
    assert SchemaSet.load(AVRO_DIR)[Family.book].path == AVRO_DIR / "sequence.book.avsc"


def test_missing_or_broken_schema_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(FatalError, match=AVRO_DIR_ENV):
        SchemaSet.load(tmp_path)
    for path in AVRO_DIR.glob("*.avsc"):
        shutil.copy(path, tmp_path / path.name)
    for broken in ("{not json", '{"type": "nope"}', '"string"'):
        (tmp_path / "sequence.tca.avsc").write_text(broken)
        with pytest.raises(FatalError, match="sequence.tca"):
            SchemaSet.load(tmp_path)


def test_topic_names_defaults_and_overrides() -> None:
    topics = TopicNames()
    assert topics.all_topics() == {
        Family.prices: "sequence.prices",
        Family.book: "sequence.book",
        Family.orders: "sequence.orders",
        Family.fills: "sequence.fills",
        Family.tca: "sequence.tca",
        Family.traces: "sequence.traces",
        Family.funding: "sequence.funding",
        Family.fair_price: "sequence.fair_price",
        Family.markets_new: "sequence.markets.new",
        Family.markets_resolved: "sequence.markets.resolved",
        Family.alerts: "sequence.alerts",
        Family.control: "sequence.control",
    }
    assert topics.dlq == "sequence.dlq"
    assert topics.subject(Family.markets_new) == "sequence.markets.new-value"
    custom = TopicNames(prefix="acme.seq", overrides={Family.fills: "trading.fills.v1"})
    assert custom.topic(Family.prices) == "acme.seq.prices"
    assert custom.topic(Family.fills) == "trading.fills.v1"
    assert custom.subject(Family.fills) == "trading.fills.v1-value"
    assert custom.dlq == "acme.seq.dlq"


def test_wire_header() -> None:
    assert wire_header(1) == b"\x00\x00\x00\x00\x01"
    assert wire_header(0x01020304) == b"\x00\x01\x02\x03\x04"


@pytest.mark.parametrize("family", list(Family), ids=str)
def test_encode_is_header_plus_schemaless_body(family: Family) -> None:
    schemas = SchemaSet.load()
    encoder = WireEncoder(schemas, {f: 100 + i for i, f in enumerate(Family)})
    value = normalize_record(
        family, example_payload(family), carry_unknown=False, channel=EXAMPLE_CHANNELS[family]
    ).value
    encoded = encoder.encode(family, value)
    assert encoded[:5] == wire_header(encoder.schema_ids[family])
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schemas[family].parsed, value)
    assert encoded[5:] == body.getvalue()


def test_encoded_body_decodes_back() -> None:
    encoder = WireEncoder(schema_ids={Family.fills: 7})
    value = normalize_record(Family.fills, example_payload(Family.fills), carry_unknown=False).value
    encoded = encoder.encode(Family.fills, value)
    read = fastavro.schemaless_reader(
        io.BytesIO(encoded[5:]), encoder.schemas[Family.fills].parsed, None
    )
    assert isinstance(read, dict)
    assert read["qty"] == Decimal("0.00700000")
    assert read["venue_execution_id"] == "kraken-8f3a2b1c"


def test_encode_errors() -> None:
    encoder = WireEncoder(schema_ids={Family.fills: 7})
    value = normalize_record(Family.fills, example_payload(Family.fills), carry_unknown=False).value
    with pytest.raises(FatalError, match="no schema id"):
        encoder.encode(Family.book, value)
    broken = dict(value, qty="not a decimal")
    with pytest.raises(EncodeError) as info:
        encoder.encode(Family.fills, broken)
    assert info.value.stage == "encode"
    too_fine = dict(value, qty=Decimal("0.000000001"))  # scale 9 in a scale-8 field
    with pytest.raises(EncodeError):
        encoder.encode(Family.fills, too_fine)
    missing = {k: v for k, v in value.items() if k != "symbol"}
    with pytest.raises(EncodeError):
        encoder.encode(Family.fills, missing)
