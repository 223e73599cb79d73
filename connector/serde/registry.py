"""Schema Registry calls: register every family's schema, test compatibility.

Synchronous on purpose: they run once at startup (in a worker thread) or
from the CLI, never on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from connector.config import ConfigError, Settings
from connector.errors import FatalError, TransientError
from connector.protocol.families import Family
from connector.serde.schemas import SchemaSet
from connector.serde.topics import TopicNames

T = TypeVar("T")

_SUBJECT_NOT_FOUND = 40401
_VERSION_NOT_FOUND = 40402


def registry_client(settings: Settings,
                    defaults: Mapping[str, Any] | None = None) -> SchemaRegistryClient:
    """The registry client of these settings; ``defaults`` go under the user's
    ``schema_registry.client`` properties."""
    try:
        return SchemaRegistryClient(settings.schema_registry.client_config(defaults))
    except (TypeError, ValueError) as exc:  # an unknown or mistyped client property
        raise ConfigError(f"config: schema_registry.client: {exc}") from None


def _call(what: str, call: Callable[[], T]) -> T:
    """Run one registry call, mapping failures onto our error classes: 5xx
    and network failures are worth retrying; 4xx (incompatible schema, bad
    credentials) are not."""
    try:
        return call()
    except SchemaRegistryError as exc:
        error = TransientError if exc.http_status_code >= 500 else FatalError
        raise error(
            f"{what}: registry said {exc.http_status_code}/{exc.error_code}: {exc.error_message}"
        ) from exc
    except Exception as exc:  # the client's HTTP library raises its own types
        raise TransientError(f"{what}: {exc}") from exc


def register_schemas(
    client: SchemaRegistryClient, topics: TopicNames, schemas: SchemaSet
) -> dict[Family, int]:
    """Register each family's schema under ``<topic>-value``; return the ids.

    Registering an already registered schema is idempotent and returns the
    existing id, so this runs on every start.
    """
    ids: dict[Family, int] = {}
    for family, schema in schemas.schemas.items():
        subject = topics.subject(family)
        register = partial(client.register_schema, subject, Schema(schema.text, "AVRO"))
        ids[family] = _call(f"register {subject}", register)
    return ids


def _is_compatible(client: SchemaRegistryClient, subject: str, schema: Schema) -> bool:
    try:
        return bool(client.test_compatibility(subject, schema))
    except SchemaRegistryError as exc:
        # No versions yet: the first registration always succeeds.
        if exc.error_code in (_SUBJECT_NOT_FOUND, _VERSION_NOT_FOUND):
            return True
        raise


def check_compatibility(
    client: SchemaRegistryClient, topics: TopicNames, schemas: SchemaSet | None = None
) -> dict[Family, bool]:
    """Would each current schema be accepted under its subject's compatibility
    rule? ``schemas`` defaults to ``SchemaSet.load()``."""
    schemas = schemas or SchemaSet.load()
    result: dict[Family, bool] = {}
    for family, schema in schemas.schemas.items():
        subject = topics.subject(family)
        test = partial(_is_compatible, client, subject, Schema(schema.text, "AVRO"))
        result[family] = _call(f"compatibility of {subject}", test)
    return result


@dataclass(frozen=True)
class SubjectVersion:
    """What the registry holds under one family's subject."""

    subject: str
    version: int | None = None  # None: not registered
    schema_id: int | None = None
    error: str | None = None  # the registry's answer when it was neither


def latest_versions(client: SchemaRegistryClient, topics: TopicNames) -> list[SubjectVersion]:
    """The latest registered version of every family's subject."""
    out: list[SubjectVersion] = []
    for family in Family:
        subject = topics.subject(family)
        try:
            latest = client.get_latest_version(subject)
        except SchemaRegistryError as exc:
            out.append(SubjectVersion(subject) if exc.http_status_code == 404 else
                       SubjectVersion(subject, error=str(exc.error_message)))
            continue
        out.append(SubjectVersion(subject, latest.version, latest.schema_id))
    return out


def subjects(client: SchemaRegistryClient) -> list[str]:
    """Every subject the registry holds (a reachability and credentials check too)."""
    return _call("list subjects", client.get_subjects)

