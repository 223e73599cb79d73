"""The development registry, driven only through the real confluent client.

If these pass, code written against ``confluent_kafka.schema_registry`` 2.16
works the same against the dev registry as against a production one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext


def text(schema: Schema) -> str:
    assert schema.schema_str is not None
    return schema.schema_str


def record(fields: list[dict[str, Any]], name: str = "Trade") -> Schema:
    return Schema(
        json.dumps({"type": "record", "name": name, "namespace": "test", "fields": fields}),
        "AVRO",
    )


BASE = [{"name": "id", "type": "string"}, {"name": "qty", "type": "long"}]
WITH_DEFAULT = BASE + [{"name": "venue", "type": "string", "default": "seq"}]
WITHOUT_DEFAULT = BASE + [{"name": "venue", "type": "string"}]
QTY_AS_STRING = [{"name": "id", "type": "string"}, {"name": "qty", "type": "string"}]
ONLY_ID = [{"name": "id", "type": "string"}]


@pytest.fixture
def client(registry_url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry_url})


@pytest.fixture
def subject() -> str:
    return f"subj-{uuid.uuid4().hex}-value"


def test_register_read_back_and_list(client: SchemaRegistryClient, subject: str,
                                     registry_url: str) -> None:
    schema_id = client.register_schema(subject, record(BASE))
    # A fresh client has no cache, so every answer below comes from the server.
    fresh = SchemaRegistryClient({"url": registry_url})
    fetched = fresh.get_schema(schema_id)
    assert json.loads(text(fetched)) == json.loads(text(record(BASE)))
    latest = fresh.get_latest_version(subject)
    assert (latest.schema_id, latest.version, latest.subject) == (schema_id, 1, subject)
    assert latest.guid
    assert fresh.get_versions(subject) == [1]
    assert subject in fresh.get_subjects()
    assert fresh.get_version(subject, 1).schema_id == schema_id
    found = fresh.lookup_schema(subject, record(BASE))
    assert (found.schema_id, found.version) == (schema_id, 1)
    # Ids are global, so other tests' subjects may share this one's id.
    versions = fresh.get_schema_versions(schema_id)
    assert (subject, 1) in [(v.subject, v.version) for v in versions]
    assert subject in fresh.get_subjects_by_schema_id(schema_id)
    by_guid = text(fresh.get_schema_by_guid(latest.guid))
    assert json.loads(by_guid) == json.loads(text(fetched))


def test_ids_are_idempotent_and_shared(client: SchemaRegistryClient, subject: str,
                                       registry_url: str) -> None:
    first = client.register_schema(subject, record(BASE))
    fresh = SchemaRegistryClient({"url": registry_url})
    spaced = Schema(json.dumps(json.loads(text(record(BASE))), indent=4), "AVRO")
    assert fresh.register_schema(subject, spaced) == first
    assert fresh.get_versions(subject) == [1]
    other = f"other-{uuid.uuid4().hex}"
    assert fresh.register_schema(other, record(BASE)) == first
    assert {subject, other} <= set(fresh.get_subjects_by_schema_id(first))


def test_backward_default_accepts_added_default(client: SchemaRegistryClient, subject: str) -> None:
    assert client.get_compatibility() == "BACKWARD"
    v1 = client.register_schema(subject, record(BASE))
    assert client.test_compatibility(subject, record(WITH_DEFAULT))
    v2 = client.register_schema(subject, record(WITH_DEFAULT))
    assert v2 != v1
    assert client.get_versions(subject) == [1, 2]


@pytest.mark.parametrize("fields", [WITHOUT_DEFAULT, QTY_AS_STRING], ids=["no-default", "type"])
def test_backward_rejects_incompatible(
    client: SchemaRegistryClient, subject: str, fields: list[dict[str, Any]]
) -> None:
    client.register_schema(subject, record(BASE))
    assert not client.test_compatibility(subject, record(fields))
    with pytest.raises(SchemaRegistryError) as caught:
        client.register_schema(subject, record(fields))
    assert caught.value.http_status_code == 409
    assert client.get_versions(subject) == [1]


def test_verbose_compatibility_names_the_problem(registry_url: str, subject: str) -> None:
    SchemaRegistryClient({"url": registry_url}).register_schema(subject, record(BASE))
    body = json.dumps({"schema": record(WITHOUT_DEFAULT).schema_str}).encode()
    url = f"{registry_url}/compatibility/subjects/{subject}/versions/latest?verbose=true"
    with urllib.request.urlopen(urllib.request.Request(url, body, method="POST")) as rsp:
        answer = json.loads(rsp.read())
    assert answer["is_compatible"] is False
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in answer["messages"][0]


def _post(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, json.dumps(payload).encode(), method="POST")
    try:
        with urllib.request.urlopen(request) as rsp:
            return rsp.status, json.loads(rsp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_register_answers_only_the_id(registry_url: str, subject: str) -> None:
    body = {"schema": text(record(BASE))}
    status, answer = _post(f"{registry_url}/subjects/{subject}/versions", body)
    assert status == 200 and list(answer) == ["id"]
    # Re-registering is idempotent and answers the same shape.
    assert _post(f"{registry_url}/subjects/{subject}/versions", body) == (200, answer)


def test_compatibility_answer_has_messages_only_when_verbose(
    registry_url: str, subject: str
) -> None:
    SchemaRegistryClient({"url": registry_url}).register_schema(subject, record(BASE))
    url = f"{registry_url}/compatibility/subjects/{subject}/versions"
    for path in ("/latest", "/1", ""):
        bad = {"schema": text(record(WITHOUT_DEFAULT))}
        assert _post(url + path, bad) == (200, {"is_compatible": False})
        status, verbose = _post(url + path + "?verbose=true", bad)
        assert status == 200 and verbose["is_compatible"] is False and verbose["messages"]
        good = {"schema": text(record(WITH_DEFAULT))}
        assert _post(url + path, good) == (200, {"is_compatible": True})


def test_compatibility_of_a_missing_subject_is_not_found(
    client: SchemaRegistryClient, registry_url: str, subject: str
) -> None:
    body = {"schema": text(record(BASE))}
    url = f"{registry_url}/compatibility/subjects/{subject}/versions"
    for path in ("/latest", "/1", ""):
        status, answer = _post(url + path, body)
        assert (status, answer["error_code"]) == (404, 40401), path
    with pytest.raises(SchemaRegistryError) as caught:
        client.test_compatibility(subject, record(BASE))
    assert caught.value.error_code == 40401
    # Soft-deleting every version makes the subject missing again.
    client.register_schema(subject, record(BASE))
    client.delete_subject(subject)
    assert _post(url + "/latest", body)[1]["error_code"] == 40401
    # An existing subject: an absent version is 40402, a malformed one 42202.
    # (Posted directly: the client's cache would skip re-registering.)
    assert _post(f"{registry_url}/subjects/{subject}/versions", body)[0] == 200
    assert _post(url + "/7", body)[1]["error_code"] == 40402
    assert _post(url + "/seven", body)[1]["error_code"] == 42202


def test_none_accepts_anything(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, record(BASE))
    client.set_compatibility(subject, "NONE")
    assert client.get_compatibility(subject) == "NONE"
    client.register_schema(subject, record(QTY_AS_STRING))
    assert client.get_versions(subject) == [1, 2]


def test_forward_and_full(client: SchemaRegistryClient, subject: str) -> None:
    client.set_compatibility(subject, "FORWARD")
    client.register_schema(subject, record(BASE))
    # FORWARD: old readers must read new data; a dropped field without a
    # default on the old side breaks them, an added field does not.
    assert not client.test_compatibility(subject, record(ONLY_ID))
    client.register_schema(subject, record(WITHOUT_DEFAULT))

    full = f"full-{uuid.uuid4().hex}"
    client.set_compatibility(full, "FULL")
    client.register_schema(full, record(BASE))
    assert not client.test_compatibility(full, record(WITHOUT_DEFAULT))  # breaks backward
    assert not client.test_compatibility(full, record(ONLY_ID))  # breaks forward
    client.register_schema(full, record(WITH_DEFAULT))


def test_transitive_checks_every_version(client: SchemaRegistryClient, subject: str) -> None:
    client.set_compatibility(subject, "NONE")
    client.register_schema(subject, record(BASE))
    client.register_schema(subject, record(ONLY_ID))
    # qty back without default: fine against v2 (reader has fewer needs)...
    candidate = record([{"name": "id", "type": "string"}, {"name": "qty", "type": "string"}])
    client.set_compatibility(subject, "FORWARD")
    assert client.test_compatibility(subject, candidate)
    # ...but FORWARD_TRANSITIVE also asks v1 (qty: long) to read it.
    client.set_compatibility(subject, "FORWARD_TRANSITIVE")
    with pytest.raises(SchemaRegistryError) as caught:
        client.register_schema(subject, candidate)
    assert caught.value.http_status_code == 409


def test_errors_use_confluent_codes(client: SchemaRegistryClient, subject: str,
                                    registry_url: str) -> None:
    with pytest.raises(SchemaRegistryError) as caught:
        client.get_latest_version(subject)
    assert caught.value.error_code == 40401
    client.register_schema(subject, record(BASE))
    with pytest.raises(SchemaRegistryError) as caught:
        client.get_version(subject, 7)
    assert caught.value.error_code == 40402
    with pytest.raises(SchemaRegistryError) as caught:
        client.get_schema(987654)
    assert caught.value.error_code == 40403
    with pytest.raises(urllib.error.HTTPError) as not_an_id:
        urllib.request.urlopen(f"{registry_url}/schemas/ids/abc")
    assert (not_an_id.value.code, json.loads(not_an_id.value.read())["error_code"]) == (404, 404)
    with pytest.raises(SchemaRegistryError) as caught:
        client.register_schema(subject, Schema('{"type": "recrd"}', "AVRO"))
    assert caught.value.error_code == 42201
    with pytest.raises(SchemaRegistryError) as caught:
        client.register_schema(subject, Schema('{"type": "object"}', "JSON"))
    assert caught.value.error_code == 42201
    with pytest.raises(SchemaRegistryError) as caught:
        client.get_compatibility(f"never-{uuid.uuid4().hex}")
    assert caught.value.error_code == 40408


def test_delete_subject_soft_then_permanent(client: SchemaRegistryClient, subject: str,
                                            registry_url: str) -> None:
    schema_id = client.register_schema(subject, record(BASE))
    client.register_schema(subject, record(WITH_DEFAULT))
    assert client.delete_version(subject, 2) == 2
    assert client.get_versions(subject) == [1]
    assert client.delete_subject(subject) == [1]
    assert subject not in client.get_subjects()
    assert subject in client.get_subjects(deleted=True)
    assert client.delete_subject(subject, permanent=True) == [1, 2]
    assert subject not in client.get_subjects(deleted=True)
    # Ids stay resolvable: records already written must stay readable.
    fresh = SchemaRegistryClient({"url": registry_url})
    assert fresh.get_schema(schema_id).schema_str
    # A re-created subject starts again at version 1.
    client.register_schema(subject, record(BASE))
    assert client.get_versions(subject) == [1]


def test_mode_and_root(registry_url: str) -> None:
    client = SchemaRegistryClient({"url": registry_url})
    assert client.get_global_mode() == "READWRITE"
    with urllib.request.urlopen(f"{registry_url}/") as rsp:
        assert json.loads(rsp.read()) == {}
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{registry_url}/associations/resources/-/topic")
    assert caught.value.code == 404
    assert json.loads(caught.value.read())["error_code"] == 404


TRADE_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Fill",
        "namespace": "test",
        "fields": [
            {"name": "id", "type": "string"},
            {
                "name": "price",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 18},
            },
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    }
)


def test_serializer_round_trip_with_topic_name_strategy(registry_url: str) -> None:
    client = SchemaRegistryClient({"url": registry_url})
    topic = f"fills-{uuid.uuid4().hex}"
    serializer = AvroSerializer(client, TRADE_SCHEMA)
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    value = {
        "id": "f-1",
        "price": Decimal("12345.678901234567890123"),
        "ts": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "note": None,
    }
    ctx = SerializationContext(topic, MessageField.VALUE)
    payload = serializer(value, ctx)
    assert payload is not None and payload[0] == 0
    assert client.get_subjects_by_schema_id(int.from_bytes(payload[1:5], "big")) == [
        f"{topic}-value"
    ]
    assert deserializer(payload, ctx) == value
