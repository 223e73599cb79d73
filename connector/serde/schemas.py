"""The Avro schemas of every family, loaded from the repository's avro/ dir.

avro/ is the single source of truth (reviewed, versioned, history kept in
avro/history/). It is found, in order: the ``avro_dir`` argument;
``SEQCONN_AVRO_DIR``; ``<repo>/avro`` beside the package. A non-editable
install (site-packages has no avro/ beside it) must set ``SEQCONN_AVRO_DIR``,
e.g. the container image copies avro/ and sets it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import fastavro
import orjson

from connector.errors import FatalError
from connector.protocol.families import Family

AVRO_DIR_ENV = "SEQCONN_AVRO_DIR"
NAMESPACE = "com.sequencemkts.connector.v1"

# File stem per family. It equals the default topic name, but the file name
# does not change when a deployment renames its topics.
SCHEMA_FILE_STEMS: Mapping[Family, str] = MappingProxyType(
    {
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
)


def default_avro_dir() -> Path:
    override = os.environ.get(AVRO_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "avro"


@dataclass(frozen=True, slots=True)
class FamilySchema:
    """One family's schema: the text we register and fastavro's parsed form."""

    family: Family
    path: Path
    text: str
    parsed: Any  # fastavro's parsed schema (an untyped dict)


@dataclass(frozen=True, slots=True)
class SchemaSet:
    schemas: Mapping[Family, FamilySchema]

    @classmethod
    def load(cls, avro_dir: Path | None = None) -> SchemaSet:
        """Read and parse one .avsc per family; raise FatalError if any is
        missing or invalid (the connector cannot produce without them)."""
        directory = avro_dir or default_avro_dir()
        schemas: dict[Family, FamilySchema] = {}
        for family, stem in SCHEMA_FILE_STEMS.items():
            path = directory / f"{stem}.avsc"
            try:
                text = path.read_text(encoding="utf-8")
                parsed = fastavro.parse_schema(orjson.loads(text))
                if not isinstance(parsed, dict) or parsed.get("type") != "record":
                    raise ValueError("a topic value schema must be a record")
            except Exception as exc:  # fastavro raises several unrelated types
                hint = (
                    f" (set {AVRO_DIR_ENV} to the avro/ directory)"
                    if isinstance(exc, OSError)
                    else ""
                )
                raise FatalError(f"cannot load Avro schema {path}: {exc}{hint}") from exc
            schemas[family] = FamilySchema(family, path, text, parsed)
        return cls(MappingProxyType(schemas))

    def __getitem__(self, family: Family) -> FamilySchema:
        return self.schemas[family]
