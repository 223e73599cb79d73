"""Avro schemas from avro/, registry registration, Confluent wire encoding."""

from connector.serde.registry import check_compatibility, register_schemas
from connector.serde.schemas import AVRO_DIR_ENV, SCHEMA_FILE_STEMS, FamilySchema, SchemaSet
from connector.serde.topics import TopicNames
from connector.serde.wire import WireEncoder, wire_header

__all__ = [
    "AVRO_DIR_ENV",
    "SCHEMA_FILE_STEMS",
    "FamilySchema",
    "SchemaSet",
    "TopicNames",
    "WireEncoder",
    "check_compatibility",
    "register_schemas",
    "wire_header",
]
