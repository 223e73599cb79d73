"""Confluent wire format: magic byte 0, 4-byte big-endian schema id, then the
schemaless Avro body. This is the hot path: everything per family is
prepared once, and encoding is one fastavro call plus a concatenation.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import schemaless_writer

from connector.errors import EncodeError, FatalError
from connector.protocol.families import Family
from connector.serde.registry import register_schemas
from connector.serde.schemas import SchemaSet
from connector.serde.topics import TopicNames

MAGIC_BYTE = 0


def wire_header(schema_id: int) -> bytes:
    return bytes([MAGIC_BYTE]) + schema_id.to_bytes(4, "big")


class WireEncoder:
    """Encodes normalised values of each family with its registered schema id."""

    def __init__(
        self, schemas: SchemaSet | None = None, schema_ids: Mapping[Family, int] | None = None
    ) -> None:
        self._schemas = schemas or SchemaSet.load()
        self._parsed: dict[Family, Any] = {f: s.parsed for f, s in self._schemas.schemas.items()}
        self._headers: dict[Family, bytes] = {}
        self._ids: dict[Family, int] = {}
        if schema_ids:
            self.set_schema_ids(schema_ids)

    @property
    def schemas(self) -> SchemaSet:
        return self._schemas

    @property
    def schema_ids(self) -> Mapping[Family, int]:
        return dict(self._ids)

    def set_schema_ids(self, schema_ids: Mapping[Family, int]) -> None:
        for family, schema_id in schema_ids.items():
            self._ids[family] = schema_id
            self._headers[family] = wire_header(schema_id)

    def register_all(self, client: SchemaRegistryClient, topics: TopicNames) -> dict[Family, int]:
        """Register every schema (blocking; run it in a thread) and use the ids."""
        ids = register_schemas(client, topics, self._schemas)
        self.set_schema_ids(ids)
        return ids

    def encode(self, family: Family, value: Mapping[str, Any]) -> bytes:
        """One record in Confluent wire format; EncodeError if it does not fit."""
        header = self._headers.get(family)
        if header is None:
            # A wiring bug, not a bad record: dead-lettering every record would hide it.
            raise FatalError(f"no schema id registered for family {family}")
        buffer = io.BytesIO()
        buffer.write(header)
        try:
            schemaless_writer(buffer, self._parsed[family], value)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise EncodeError(f"value does not fit schema {family}: {exc}") from exc
        return buffer.getvalue()
