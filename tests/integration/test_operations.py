"""Operator commands against the real broker, registry and simulator."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from connector import operations as ops
from connector.config import Settings, load_settings
from connector.demo import SimulatorThread
from connector.sandbox.simulator import SimulatorConfig

KEY = "seq_test_key"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    running = SimulatorThread(SimulatorConfig(seed=5, rate=20.0, api_keys=(KEY,))).start()
    try:
        yield running
    finally:
        running.stop()


def env_for(sim: SimulatorThread, bootstrap: str, registry_url: str, prefix: str,
            key: str = KEY) -> dict[str, str]:
    return {"SEQUENCE_API_KEY": key, "SEQCONN__SEQUENCE__BASE_URL": sim.base_url,
            "SEQCONN__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "SEQCONN__KAFKA__TOPIC_PREFIX": prefix,
            "SEQCONN__SCHEMA_REGISTRY__URL": registry_url}


def settings_for(*args: str, key: str = KEY) -> Settings:
    return load_settings(env=env_for(*args, key=key))  # type: ignore[arg-type]


def test_check_says_ok_per_component(sim: SimulatorThread, bootstrap: str,
                                     registry_url: str) -> None:
    out = io.StringIO()
    assert ops.check(settings_for(sim, bootstrap, registry_url, "chk"), out) == 0
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()}
    assert set(lines) == {"config", "sequence", "kafka", "schema-registry"}
    assert all(" OK " in line for line in lines.values()), out.getvalue()
    assert "API key accepted" in lines["sequence"]


def test_check_names_the_failing_component_without_the_key(
    sim: SimulatorThread, bootstrap: str, registry_url: str
) -> None:
    env = {**os.environ, **env_for(sim, bootstrap, registry_url, "chk",
                                   key="seq_live_bad_secret_1")}
    done = subprocess.run([sys.executable, "-m", "connector", "check"], env=env, check=False,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    sequence_line = next(line for line in done.stdout.splitlines() if line.startswith("sequence"))
    assert "FAIL" in sequence_line and "refused" in sequence_line
    assert "seq_live_bad_secret_1" not in done.stdout + done.stderr
    kafka_line = next(line for line in done.stdout.splitlines() if line.startswith("kafka"))
    assert " OK " in kafka_line


def test_topics_create_makes_every_topic_with_partitions(
    sim: SimulatorThread, bootstrap: str, registry_url: str
) -> None:
    prefix = f"ops{uuid.uuid4().hex[:6]}"
    out = io.StringIO()
    settings = settings_for(sim, bootstrap, registry_url, prefix)
    assert ops.topics_create(settings, out, partitions=2) == 0
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    ours = {name: len(t.partitions) for name, t in meta.items() if name.startswith(prefix)}
    assert len(ours) == 13 and set(ours.values()) == {2}
    assert "compact" in next(line for line in out.getvalue().splitlines() if ".fills" in line)
    again = io.StringIO()
    ops.topics_create(settings, again)
    assert again.getvalue().count(" exists ") == 13


def test_schemas_register_list_and_check_gate_incompatible_changes(
    sim: SimulatorThread, bootstrap: str, registry_url: str
) -> None:
    prefix = f"sch{uuid.uuid4().hex[:6]}"
    settings = settings_for(sim, bootstrap, registry_url, prefix)
    out = io.StringIO()
    assert ops.schemas_check(settings, out) == 0  # nothing registered yet: compatible
    assert ops.schemas_register(settings, io.StringIO()) == 0
    listing = io.StringIO()
    assert ops.schemas_list(settings, listing) == 0
    assert listing.getvalue().count("version 1") == 12
    # someone registered a version whose data our schema cannot read
    client = SchemaRegistryClient({"url": registry_url})
    other = {"type": "record", "name": "Price", "namespace": "com.sequencemkts.connector.v1",
             "fields": [{"name": "symbol", "type": "long"}]}
    client.set_compatibility(f"{prefix}.prices-value", "NONE")
    client.register_schema(f"{prefix}.prices-value", Schema(json.dumps(other), "AVRO"))
    client.set_compatibility(f"{prefix}.prices-value", "BACKWARD")
    verdict = io.StringIO()
    assert ops.schemas_check(settings, verdict) == 1
    assert f"{prefix}.prices-value" in verdict.getvalue()
    assert "INCOMPATIBLE" in next(line for line in verdict.getvalue().splitlines()
                                  if ".prices-value" in line)
    assert "do not deploy" in verdict.getvalue()
