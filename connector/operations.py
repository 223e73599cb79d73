"""Operator commands: ``schemas``, ``topics`` and ``check``.

Each returns an exit status and prints one line per item, so they can gate a
deploy (the Helm pre-upgrade hook runs ``schemas check``) and be read by a
person at a terminal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from connector.config import Settings
from connector.errors import ConnectorError
from connector.serde.registry import (
    check_compatibility,
    latest_versions,
    register_schemas,
    registry_client,
    subjects,
)
from connector.serde.schemas import SchemaSet
from connector.serde.topics import topic_names, topic_plan
from connector.sink.admin import describe_topics, ensure_topics
from connector.sink.producer import kafka_conf
from connector.source.reconnect import AuthError
from connector.source.rest import SequenceRest

OK, FAIL = 0, 1


def schemas_list(settings: Settings, out: TextIO) -> int:
    status = OK
    for state in latest_versions(registry_client(settings), topic_names(settings)):
        if state.error is not None:
            out.write(f"{state.subject:<36} ERROR {state.error}\n")
            status = FAIL
        elif state.version is None:
            out.write(f"{state.subject:<36} not registered\n")
        else:
            out.write(f"{state.subject:<36} version {state.version:<4} id {state.schema_id}\n")
    return status


def schemas_register(settings: Settings, out: TextIO) -> int:
    ids = register_schemas(registry_client(settings), topic_names(settings), SchemaSet.load())
    topics = topic_names(settings)
    out.writelines(f"{topics.subject(family):<36} id {schema_id}\n"
                   for family, schema_id in ids.items())
    return OK


def schemas_check(settings: Settings, out: TextIO) -> int:
    """Exit non-zero when a schema in avro/ would be refused by the registry."""
    topics = topic_names(settings)
    result = check_compatibility(registry_client(settings), topics)
    for family, compatible in result.items():
        verdict = "compatible" if compatible else "INCOMPATIBLE"
        out.write(f"{topics.subject(family):<36} {verdict}\n")
    bad = [f for f, ok in result.items() if not ok]
    if bad:
        out.write(f"{len(bad)} schema(s) incompatible with the registry's compatibility "
                  "level: do not deploy\n")
        return FAIL
    return OK


def topics_create(settings: Settings, out: TextIO, partitions: int | None = None,
                  replication_factor: int | None = None) -> int:
    rf = replication_factor if replication_factor is not None else (
        settings.kafka.replication_factor)
    wanted = topic_plan(settings, partitions)
    result = ensure_topics(kafka_conf(settings), wanted, rf)
    out.writelines(f"{name:<32} {result[name]:<8} cleanup.policy={config['cleanup.policy']}\n"
                   for name, _, config in wanted)
    return OK


@dataclass
class Verdict:
    component: str
    ok: bool
    detail: str


def _probe(component: str, fn: Callable[[], str]) -> Verdict:
    started = time.monotonic()
    try:
        detail = fn()
        return Verdict(component, True, f"{detail} ({(time.monotonic() - started) * 1000:.0f} ms)")
    except (ConnectorError, OSError) as exc:
        return Verdict(component, False, str(exc) or type(exc).__name__)
    except Exception as exc:  # noqa: BLE001 - a check must report, never crash
        return Verdict(component, False, f"{type(exc).__name__}: {exc}")


def check(settings: Settings, out: TextIO) -> int:
    """Config + connectivity: one verdict line per component."""
    # librdkafka would log every failed connect attempt; the verdict says it once
    quiet = {"connector.sink.admin": logging.CRITICAL, "connector.source.rest": logging.ERROR}
    saved = {name: logging.getLogger(name).level for name in quiet}
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)
    try:
        return _check(settings, out)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _check(settings: Settings, out: TextIO) -> int:
    verdicts = [
        Verdict("config", True, "valid"),
        _probe("sequence", lambda: asyncio.run(_check_sequence(settings))),
        _probe("kafka", lambda: _check_kafka(settings)),
        _probe("schema-registry", lambda: _check_registry(settings)),
    ]
    out.writelines(f"{v.component:<16} {'OK' if v.ok else 'FAIL':<5} {v.detail}\n"
                   for v in verdicts)
    return OK if all(v.ok for v in verdicts) else FAIL


async def _check_sequence(settings: Settings) -> str:
    s = settings.sequence
    if s.api_key is None:
        raise ConnectorError("no API key: set SEQUENCE_API_KEY or SEQUENCE_API_KEY_FILE")
    async with SequenceRest(s.base_url, s.api_key.reveal(), max_attempts=2) as rest:
        try:
            symbols: Any = await rest.get_json("/v1/symbols")
        except AuthError:
            raise ConnectorError(f"{s.base_url}: the API key was refused (401/403)") from None
    count = len(symbols) if isinstance(symbols, list) else len(symbols.get("symbols", []))
    return f"{s.base_url} reachable, API key accepted, {count} symbols"


def _check_kafka(settings: Settings) -> str:
    wanted = topic_plan(settings)
    layout = describe_topics(kafka_conf(settings), [name for name, _, _ in wanted])
    # A fills or orders topic with cleanup.policy=delete loses history the
    # dedupe rebuild and consumers rely on; a different partition count moves
    # keys to other partitions than the ones their history is in.
    wrong = []
    for name, partitions, config in wanted:
        if name not in layout:
            continue
        has_parts, has_policy = layout[name]
        if has_policy != config["cleanup.policy"]:
            wrong.append(f"{name} has cleanup.policy={has_policy}, "
                         f"needs {config['cleanup.policy']}")
        if has_parts != partitions:
            wrong.append(f"{name} has {has_parts} partitions, configured {partitions}")
    if wrong:
        raise ConnectorError("; ".join(wrong))
    return (f"{settings.kafka.bootstrap_servers} reachable, "
            f"{len(layout)}/{len(wanted)} connector topics exist with the right layout")


def _check_registry(settings: Settings) -> str:
    ours = [s for s in subjects(registry_client(settings))
            if s.startswith(settings.kafka.topic_prefix + ".")]
    return f"{settings.schema_registry.url} reachable, {len(ours)} connector subjects"
