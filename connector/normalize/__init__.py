"""Pure normalisation: vendor payloads -> exact, Avro-ready records."""

from connector.normalize.layout import decimal_name, timestamp_companion
from connector.normalize.record_specs import EVENT_TIME_FIELD, RECORD_SPECS
from connector.normalize.records import (
    ControlKind,
    NormalizedRecord,
    build_control_record,
    normalize_for_wire,
    normalize_record,
)

__all__ = [
    "EVENT_TIME_FIELD",
    "RECORD_SPECS",
    "ControlKind",
    "NormalizedRecord",
    "build_control_record",
    "decimal_name",
    "normalize_for_wire",
    "normalize_record",
    "timestamp_companion",
]
