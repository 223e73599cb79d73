"""The development registry's model: schema identity, compatibility, store.

No HTTP here, so the layer in ``registry.py`` stays thin and Confluent's
rules (ids, versions, soft deletes, levels) can be read in one place. Every
compatibility verdict comes from Apache Avro's own
``ReaderWriterCompatibilityChecker``: the registry only decides *which* pairs
to check (direction and how far back), the way Confluent Schema Registry
documents its levels.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from connector.sandbox import SandboxExtraMissing

try:
    import avro.errors
    import avro.schema
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
except ModuleNotFoundError as exc:  # Apache avro comes with the sandbox extra only
    raise SandboxExtraMissing("the development schema registry", exc) from None

# Confluent's default for a fresh registry.
DEFAULT_LEVEL = "BACKWARD"
LEVELS = frozenset(
    {
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    }
)


class RegistryError(Exception):
    """An error answered to the client in Confluent's shape.

    ``http_status`` is the HTTP status; ``error_code`` is Confluent's finer
    code (40401 subject not found, ...), which clients switch on.
    """

    def __init__(self, http_status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message}


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(version: object) -> RegistryError:
    return RegistryError(404, 40402, f"Version {version} not found.")


def schema_not_found(detail: str = "Schema not found") -> RegistryError:
    return RegistryError(404, 40403, detail)


def invalid_schema(detail: str) -> RegistryError:
    return RegistryError(422, 42201, f"Invalid schema: {detail}")


def invalid_version(raw: str) -> RegistryError:
    return RegistryError(
        422,
        42202,
        f"The specified version '{raw}' is not a valid version id. Allowed values are "
        'between [1, 2^31-1] and the string "latest"',
    )


def invalid_level(raw: object) -> RegistryError:
    return RegistryError(
        422,
        42203,
        f"Invalid compatibility level '{raw}'. Valid values are none, backward, forward, "
        "full, backward_transitive, forward_transitive, and full_transitive",
    )


@dataclass(frozen=True)
class ParsedSchema:
    """A schema accepted by the registry.

    ``text`` is what the registry stores and serves back; ``identity`` is the
    key deciding "is this the same schema", so re-sending the same schema with
    other whitespace or key order maps to the same id and version.
    """

    text: str
    identity: str
    avro: avro.schema.Schema


def parse_schema(body: dict[str, Any], normalize: bool) -> ParsedSchema:
    """Validate a register / lookup / compatibility request body."""
    schema_type = body.get("schemaType") or "AVRO"
    if schema_type != "AVRO":
        # Only Avro is needed by the connector; refuse loudly rather than
        # store a schema we cannot check.
        raise invalid_schema(
            f"schemaType {schema_type!r} is not supported by the development registry (AVRO only)"
        )
    if body.get("references"):
        raise invalid_schema("schema references are not supported by the development registry")
    raw = body.get("schema")
    if not isinstance(raw, str) or not raw.strip():
        raise invalid_schema("request has no 'schema' string")
    try:
        parsed = avro.schema.parse(raw)
    except (avro.errors.AvroException, ValueError, TypeError) as exc:
        raise invalid_schema(str(exc)) from exc
    # to_json() is Avro's own full rendering (docs, defaults, logical types and
    # custom properties kept, names resolved), unlike the Parsing Canonical
    # Form, which drops defaults and would merge schemas that differ in them.
    full = parsed.to_json()
    identity = json.dumps(full, sort_keys=True, separators=(",", ":"))
    if normalize:
        text = json.dumps(full, separators=(",", ":"))
    else:
        text = json.dumps(json.loads(raw), separators=(",", ":"))
    return ParsedSchema(text=text, identity=identity, avro=parsed)


def parse_stored(text: str) -> avro.schema.Schema:
    """Parse a schema the registry already accepted."""
    return avro.schema.parse(text)


def normalize_level(raw: object) -> str:
    if not isinstance(raw, str) or raw.upper() not in LEVELS:
        raise invalid_level(raw)
    return raw.upper()


def _check_pair(reader: avro.schema.Schema, writer: avro.schema.Schema, label: str) -> list[str]:
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted(i.name.upper() for i in result.incompatibilities))
    where = ", ".join(sorted(result.locations))
    detail = ", ".join(sorted(str(m) for m in result.messages))
    return [f"{kinds} at {where} ({detail}); {label}"]


def check_compatibility(
    candidate: avro.schema.Schema,
    existing: list[tuple[int, avro.schema.Schema]],
    level: str,
    transitive_override: bool | None = None,
) -> list[str]:
    """Return the incompatibility messages (empty means compatible).

    ``existing`` is ``(version, schema)`` oldest first, live versions only.
    Non-transitive levels look at the newest entry only, as Confluent does;
    ``transitive_override=False`` forces that (testing one chosen version).
    """
    if level == "NONE" or not existing:
        return []
    transitive = (
        level.endswith("_TRANSITIVE") if transitive_override is None else transitive_override
    )
    targets = existing if transitive else existing[-1:]
    base = level.removesuffix("_TRANSITIVE")
    messages: list[str] = []
    for version, old in reversed(targets):
        if base in ("BACKWARD", "FULL"):
            # BACKWARD: consumers on the new schema must read old data.
            messages += _check_pair(
                candidate, old, f"new schema as reader, version {version} as writer"
            )
        if base in ("FORWARD", "FULL"):
            # FORWARD: consumers still on the old schema must read new data.
            messages += _check_pair(
                old, candidate, f"version {version} as reader, new schema as writer"
            )
    return messages


@dataclass
class StoredSchema:
    id: int
    guid: str
    text: str
    identity: str


@dataclass
class Version:
    version: int
    schema_id: int
    deleted: bool = False


@dataclass
class RegistryState:
    """Everything the registry knows; a plain tree so it persists as JSON."""

    next_id: int = 1
    schemas: dict[int, StoredSchema] = field(default_factory=dict)
    subjects: dict[str, list[Version]] = field(default_factory=dict)
    global_level: str = DEFAULT_LEVEL
    subject_levels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RegistryState:
        return cls(
            next_id=raw["next_id"],
            schemas={int(k): StoredSchema(**v) for k, v in raw["schemas"].items()},
            subjects={s: [Version(**v) for v in vs] for s, vs in raw["subjects"].items()},
            global_level=raw["global_level"],
            subject_levels=raw["subject_levels"],
        )


class SchemaStore:
    """Subjects, versions and ids with Confluent's semantics; no HTTP here."""

    def __init__(self, persist_path: Path | None) -> None:
        self._path = persist_path
        self.state = RegistryState()
        if persist_path is not None and persist_path.exists():
            self.state = RegistryState.from_json(json.loads(persist_path.read_text()))

    def save(self) -> None:
        if self._path is None:
            return
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.state)))
        os.replace(tmp, self._path)  # atomic: a crash never leaves half a file

    def versions(self, subject: str, deleted: bool = False) -> list[Version]:
        return [v for v in self.state.subjects.get(subject, []) if deleted or not v.deleted]

    def live_or_404(self, subject: str) -> list[Version]:
        live = self.versions(subject)
        if not live:
            raise subject_not_found(subject)
        return live

    def resolve(self, subject: str, raw: str, deleted: bool = False) -> Version:
        candidates = self.versions(subject, deleted)
        if not candidates:
            raise subject_not_found(subject)
        if raw in ("latest", "-1"):
            return candidates[-1]
        number = _parse_version(raw)
        for v in candidates:
            if v.version == number:
                return v
        raise version_not_found(number)

    def level(self, subject: str) -> str:
        return self.state.subject_levels.get(subject, self.state.global_level)

    def schema(self, schema_id: int) -> StoredSchema:
        stored = self.state.schemas.get(schema_id)
        if stored is None:
            raise schema_not_found(f"Schema {schema_id} not found")
        return stored

    def history(self, subject: str) -> list[tuple[int, Any]]:
        return [
            (v.version, parse_stored(self.schema(v.schema_id).text)) for v in self.versions(subject)
        ]

    def register(self, subject: str, body: dict[str, Any], normalize: bool) -> dict[str, Any]:
        parsed = parse_schema(body, normalize)
        for v in self.versions(subject):
            if self.schema(v.schema_id).identity == parsed.identity:
                return self.describe(subject, v)  # idempotent re-registration
        problems = check_compatibility(parsed.avro, self.history(subject), self.level(subject))
        if problems:
            raise RegistryError(
                409,
                409,
                "Schema being registered is incompatible with an earlier schema for subject "
                f'"{subject}", details: {problems}',
            )
        # Ids are global: the same schema under another subject shares its id.
        schema_id = next(
            (s.id for s in self.state.schemas.values() if s.identity == parsed.identity), None
        )
        if schema_id is None:
            schema_id = self.state.next_id
            self.state.next_id += 1
            self.state.schemas[schema_id] = StoredSchema(
                schema_id, str(uuid.uuid4()), parsed.text, parsed.identity
            )
        every = self.state.subjects.setdefault(subject, [])
        # Version numbers never reuse a soft-deleted number, as in Confluent.
        entry = Version(max((v.version for v in every), default=0) + 1, schema_id)
        every.append(entry)
        self.save()
        return self.describe(subject, entry)

    def lookup(
        self, subject: str, body: dict[str, Any], normalize: bool, deleted: bool
    ) -> dict[str, Any]:
        parsed = parse_schema(body, normalize)
        candidates = self.versions(subject, deleted)
        if not candidates:
            raise subject_not_found(subject)
        for v in reversed(candidates):
            if self.schema(v.schema_id).identity == parsed.identity:
                return self.describe(subject, v)
        raise schema_not_found()

    def describe(self, subject: str, v: Version) -> dict[str, Any]:
        stored = self.schema(v.schema_id)
        # schemaType is omitted for AVRO, as Confluent does.
        return {
            "subject": subject,
            "version": v.version,
            "id": stored.id,
            "guid": stored.guid,
            "schema": stored.text,
        }

    def delete_subject(self, subject: str, permanent: bool) -> list[int]:
        every = self.state.subjects.get(subject)
        if not every:
            raise subject_not_found(subject)
        if permanent:
            if any(not v.deleted for v in every):
                raise RegistryError(
                    404,
                    40405,
                    f"Subject '{subject}' was not deleted first before being permanently deleted",
                )
            del self.state.subjects[subject]
            self.state.subject_levels.pop(subject, None)
            self.save()
            return [v.version for v in every]
        live = [v for v in every if not v.deleted]
        if not live:
            raise RegistryError(
                404,
                40404,
                f"Subject '{subject}' was soft deleted.Set permanent=true to delete permanently",
            )
        for v in live:
            v.deleted = True
        self.save()
        return [v.version for v in live]

    def delete_version(self, subject: str, raw: str, permanent: bool) -> int:
        target = self.resolve(subject, raw, deleted=True)
        if permanent:
            if not target.deleted:
                raise RegistryError(
                    404,
                    40407,
                    f"Subject '{subject}' Version {target.version} was not deleted first "
                    "before being permanently deleted",
                )
            self.state.subjects[subject].remove(target)
        elif target.deleted:
            raise RegistryError(
                404,
                40406,
                f"Subject '{subject}' Version {target.version} was soft deleted."
                "Set permanent=true to delete permanently",
            )
        else:
            target.deleted = True
        self.save()
        return target.version


def _parse_version(raw: str) -> int:
    try:
        number = int(raw)
    except ValueError:
        raise invalid_version(raw) from None
    if not 1 <= number <= 2**31 - 1:
        raise invalid_version(raw)
    return number
