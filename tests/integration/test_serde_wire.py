"""Our WireEncoder against Confluent's own AvroSerializer, over a real
(development) Schema Registry: the bytes must be identical for every family,
and Apache Avro (not fastavro) must decode them back with the schema fetched
by id over HTTP.
"""

from __future__ import annotations

import json
import shutil
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from connector.errors import FatalError
from connector.normalize import normalize_record
from connector.normalize.examples import EXAMPLE_CHANNELS, example_payload
from connector.protocol import Family
from connector.serde import SchemaSet, TopicNames, WireEncoder, check_compatibility

AVRO_DIR = Path(__file__).resolve().parents[2] / "avro"


@pytest.fixture
def client(registry_url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry_url})


@pytest.fixture
def topics() -> TopicNames:
    # A fresh prefix per test: subjects never leak between tests.
    return TopicNames(prefix=f"t{uuid.uuid4().hex[:12]}")


def example_value(family: Family) -> dict[str, Any]:
    payload = example_payload(family)
    payload["vendor_added_later"] = [1, "two"]  # exercise a non-empty extras map
    return normalize_record(
        family, payload, carry_unknown=True, channel=EXAMPLE_CHANNELS[family]
    ).value


@pytest.mark.parametrize("family", list(Family), ids=str)
def test_bytes_identical_to_confluent_avro_serializer(
    family: Family,
    client: SchemaRegistryClient,
    topics: TopicNames,
    readback: Any,
    registry_url: str,
) -> None:
    encoder = WireEncoder()
    ids = encoder.register_all(client, topics)
    value = example_value(family)
    ours = encoder.encode(family, value)

    context = SerializationContext(topics.topic(family), MessageField.VALUE)
    for conf in (
        {"auto.register.schemas": True},
        {"auto.register.schemas": False, "use.latest.version": True},
    ):
        serializer = AvroSerializer(client, encoder.schemas[family].text, conf=conf)
        theirs = serializer(value, context)
        assert ours == theirs, f"{family} differs from AvroSerializer with {conf}"

    schema_id, datum = readback.decode_confluent_avro(ours, registry_url)
    assert schema_id == ids[family]
    assert datum["extras"] == {"vendor_added_later": '[1,"two"]'}
    if family is Family.fills:
        assert datum["qty"] == Decimal("0.00700000")
        assert datum["price"] == Decimal("76410.000000000")
    if family is Family.book:
        assert datum["bids"][0] == {"px": Decimal("76410.5"), "sz": Decimal("0.421")}


def test_registration_is_idempotent_and_compatible(
    client: SchemaRegistryClient, topics: TopicNames
) -> None:
    before = check_compatibility(client, topics)
    assert before == {family: True for family in Family}  # no subjects yet
    first = WireEncoder().register_all(client, topics)
    again = WireEncoder().register_all(client, topics)
    assert first == again
    assert set(first) == set(Family)
    assert check_compatibility(client, topics) == {family: True for family in Family}
    for family in Family:
        latest = client.get_latest_version(topics.subject(family))
        assert latest.schema_id == first[family]


def test_incompatible_schema_is_reported_and_refused(
    client: SchemaRegistryClient, topics: TopicNames, tmp_path: Path
) -> None:
    WireEncoder().register_all(client, topics)
    for path in AVRO_DIR.glob("*.avsc"):
        shutil.copy(path, tmp_path / path.name)
    fills = json.loads((tmp_path / "sequence.fills.avsc").read_text())
    fills["fields"].append({"name": "liquidity", "type": "string", "doc": "no default"})
    (tmp_path / "sequence.fills.avsc").write_text(json.dumps(fills))
    changed = SchemaSet.load(tmp_path)

    verdict = check_compatibility(client, topics, changed)
    assert verdict[Family.fills] is False
    assert all(ok for family, ok in verdict.items() if family is not Family.fills)
    with pytest.raises(FatalError, match="sequence|fills|409"):
        WireEncoder(changed).register_all(client, topics)
