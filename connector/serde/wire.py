"""Confluent wire format: magic byte 0, 4-byte big-endian schema id, then the
schemaless Avro body. This is the hot path: everything per family is
prepared once (the header bytes and an encoder compiled from the schema by
``connector.serde.fastwire``), and encoding is one call.

The compiled encoder writes the same bytes as ``fastavro.schemaless_writer``
for every valid value, refuses values fastavro would refuse (and a few it
would silently mangle), and also takes a decimal field as a plain ``int``
holding the unscaled value, which is how the bridge's fast normaliser emits
``*_1e9`` / ``*_1e8`` decimals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from connector.errors import EncodeError, FatalError
from connector.normalize.record_specs import EVENT_TIME_FIELD, RECORD_SPECS
from connector.protocol.families import Family
from connector.serde.direct import DirectEncoder, compile_direct
from connector.serde.fastwire import compile_encoder
from connector.serde.registry import register_schemas
from connector.serde.schemas import SchemaSet
from connector.serde.topics import TopicNames

MAGIC_BYTE = 0

# What a compiled encoder may raise besides EncodeError on a value that does
# not fit (a missing field is a KeyError, a non-mapping record a TypeError...).
_VALUE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError)


def wire_header(schema_id: int) -> bytes:
    return bytes([MAGIC_BYTE]) + schema_id.to_bytes(4, "big")


class WireEncoder:
    """Encodes normalised values of each family with its registered schema id."""

    def __init__(
        self, schemas: SchemaSet | None = None, schema_ids: Mapping[Family, int] | None = None
    ) -> None:
        self._schemas = schemas or SchemaSet.load()
        self._parsed: dict[Family, Any] = {f: s.parsed for f, s in self._schemas.schemas.items()}
        self._compiled: dict[Family, Callable[..., bytes]] = {
            f: compile_encoder(parsed) for f, parsed in self._parsed.items()
        }
        self._headers: dict[Family, bytes] = {}
        self._ids: dict[Family, int] = {}
        # family -> (compiled encoder, header), one lookup per record
        self._ready: dict[Family, tuple[Callable[..., bytes], bytes]] = {}
        # fused normalise+encode of payloads of the common shape (direct.py)
        self._direct: dict[Family, DirectEncoder] = {}
        for family, parsed in self._parsed.items():
            spec = RECORD_SPECS.get(family)
            direct = None
            # traces key on their channel; control records are ours, not payloads
            if spec is not None and family not in (Family.traces, Family.control):
                direct = compile_direct(spec, parsed, EVENT_TIME_FIELD[family])
            if direct is not None:
                self._direct[family] = direct
        self._direct_ready: dict[Family, tuple[DirectEncoder, bytes]] = {}
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
            self._headers[family] = header = wire_header(schema_id)
            self._ready[family] = (self._compiled[family], header)
            if family in self._direct:
                self._direct_ready[family] = (self._direct[family], header)

    def register_all(self, client: SchemaRegistryClient, topics: TopicNames) -> dict[Family, int]:
        """Register every schema (blocking; run it in a thread) and use the ids."""
        ids = register_schemas(client, topics, self._schemas)
        self.set_schema_ids(ids)
        return ids

    def encode_payload(
        self, family: Family, data: dict[str, Any]
    ) -> tuple[bytes, int | None] | None:
        """A vendor payload (a dict) of the common shape straight to wire
        bytes and its event time; None when it needs the two-step path
        (``normalize_for_wire`` + ``encode``), which then decides exactly."""
        ready = self._direct_ready.get(family)
        if ready is None:
            return None
        try:
            return ready[0](data, ready[1])
        except _VALUE_ERRORS:
            # e.g. a lone surrogate in a string (orjson never yields one):
            # the two-step path turns it into the precise EncodeError
            return None

    def encode(self, family: Family, value: Mapping[str, Any]) -> bytes:
        """One record in Confluent wire format; EncodeError if it does not fit."""
        ready = self._ready.get(family)
        if ready is None:
            # A wiring bug, not a bad record: dead-lettering every record would hide it.
            raise FatalError(f"no schema id registered for family {family}")
        try:
            return ready[0](value, ready[1])
        except EncodeError:
            raise
        except _VALUE_ERRORS as exc:
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise EncodeError(f"value does not fit schema {family}: {reason}") from exc
