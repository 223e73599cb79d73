"""Connector + simulator + real broker + real registry, checked by an independent reader.

Every event in the simulator's ledger that the connector accepted must be in
Kafka: exactly once for fills, TCA and lifecycle events, and (no faults
here) exactly once for everything else too, with the source's exact values
and per-key order kept. The checks live in ``tests/support/e2e.py`` so the
Docker variant runs the very same ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.protocol.families import Family
from tests.support.e2e import (
    check_every_family_arrived,
    check_family_exact,
    check_fills_complete,
    check_headers,
    run_e2e,
)
from tests.support.metrics import counted

BOGUS = "nonsense:topic"


@pytest.fixture(scope="module")
def e2e_run(bootstrap: str, registry_url: str) -> dict[str, Any]:
    return run_e2e(bootstrap, registry_url, extra_topics=(BOGUS,))


def test_every_family_arrived(e2e_run: dict[str, Any]) -> None:
    check_every_family_arrived(e2e_run)


@pytest.mark.parametrize("family", [f for f in Family if f is not Family.control])
def test_ledger_equals_kafka_exactly_with_per_key_order(
    e2e_run: dict[str, Any], family: Family
) -> None:
    check_family_exact(e2e_run, family)


def test_every_fill_in_rest_history_is_in_kafka_once(e2e_run: dict[str, Any]) -> None:
    check_fills_complete(e2e_run)


def test_headers_name_channel_source_and_instance(e2e_run: dict[str, Any]) -> None:
    check_headers(e2e_run)


def test_rejected_topic_is_reported_in_control_topic_and_metric(e2e_run: dict[str, Any]) -> None:
    rejected = [r.value for r in e2e_run["control"] if r.value["kind"] == "subscribe_rejected"]
    assert [r["sequence_topic"] for r in rejected] == [BOGUS]
    metric = counted(e2e_run["connector"].metrics, "subscribe_rejected", topic=BOGUS)
    assert metric == 1
