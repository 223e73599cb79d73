"""Kafka record keys and dedupe identities: the one place that derives them.

Keys decide partitioning, so they decide ordering: everything about one
symbol, order or market lands in one partition, in order. Both functions
read only string identity fields, which keep the same names before and
after normalisation, so they work on raw payloads and on normalised values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connector.errors import NormalizeError
from connector.protocol.channels import channel_suffix
from connector.protocol.families import Family

KEY_SEPARATOR = "|"


def _field(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if isinstance(value, str) and value:
        return value
    # Identity fields may legitimately be JSON integers (event ids); bool is
    # an int subclass and never an id.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise NormalizeError("key field missing or not a string", field=name)


def _joined(*names: str) -> Callable[[Mapping[str, Any]], str]:
    # one key per record: the one- and two-field shapes (all but none) get
    # a function without a generator, the common str value checked inline
    if len(names) == 1:
        (only,) = names

        def key1(data: Mapping[str, Any]) -> str:
            value = data.get(only)
            return value if type(value) is str and value else _field(data, only)

        return key1
    if len(names) == 2:
        first, second = names

        def key2(data: Mapping[str, Any]) -> str:
            a = data.get(first)
            b = data.get(second)
            if not (type(a) is str and a):
                a = _field(data, first)
            if not (type(b) is str and b):
                b = _field(data, second)
            return a + KEY_SEPARATOR + b

        return key2

    def key(data: Mapping[str, Any]) -> str:
        return KEY_SEPARATOR.join(_field(data, n) for n in names)

    return key


def _alert_key(data: Mapping[str, Any]) -> str:
    # Keying by rule keeps every trigger of one rule in order; a rule-less
    # alert still gets a stable key from its own id.
    for name in ("rule_id", "alert_id"):
        if data.get(name) not in (None, ""):
            return _field(data, name)
    raise NormalizeError("alert has neither rule_id nor alert_id", field="rule_id")


_KEYS: dict[Family, Callable[[Mapping[str, Any]], str]] = {
    Family.prices: _joined("symbol"),
    Family.book: _joined("symbol", "venue"),
    Family.orders: _joined("node_order_id"),
    Family.fills: _joined("venue_execution_id"),
    Family.tca: _joined("node_order_id"),
    Family.funding: _joined("venue", "symbol"),
    Family.fair_price: _joined("underlying"),
    Family.markets_new: _joined("venue", "event_id"),
    Family.markets_resolved: _joined("venue", "event_id"),
    Family.alerts: _alert_key,
    Family.control: _joined("sequence_topic"),
}

_DEDUPE: dict[Family, Callable[[Mapping[str, Any]], str]] = {
    Family.fills: _joined("venue_execution_id"),
    Family.tca: _joined("node_order_id"),
    Family.markets_new: _joined("venue", "event_id"),
    Family.markets_resolved: _joined("venue", "event_id"),
}


def record_key(family: Family, data: Mapping[str, Any], channel: str | None = None) -> str:
    """The Kafka key of one record of ``family``.

    ``channel`` is only consulted for traces, whose deployment id may be
    known from ``traces:<deployment_id>`` alone.
    """
    if family is Family.traces:
        if data.get("deployment_id") not in (None, ""):
            return _field(data, "deployment_id")
        suffix = channel_suffix(channel) if channel else None
        if suffix:
            return suffix
        raise NormalizeError("trace has no deployment_id", field="deployment_id")
    return _KEYS[family](data)


def dedupe_key(family: Family, data: Mapping[str, Any]) -> str | None:
    """Identity under which duplicates of an event are dropped, or None if the
    family is not deduplicated."""
    key = _DEDUPE.get(family)
    return None if key is None else key(data)
