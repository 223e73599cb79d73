"""The same end-to-end checks against Apache Kafka and Confluent Schema Registry.

Runs wherever a Docker engine exists (users' CI) via testcontainers; skipped
here with the reason (see ``tests/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connector.protocol.families import Family
from tests.support.e2e import check_every_family_arrived, check_family_exact, run_e2e

pytestmark = pytest.mark.docker

KAFKA_IMAGE = "confluentinc/cp-kafka:7.7.1"
REGISTRY_IMAGE = "confluentinc/cp-schema-registry:7.7.1"


@pytest.fixture(scope="module")
def containers() -> Iterator[tuple[str, str]]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.kafka import KafkaContainer

    with Network() as network:
        kafka = KafkaContainer(KAFKA_IMAGE).with_kraft().with_network(network)
        kafka.with_network_aliases("kafka")
        with kafka:
            registry = (
                DockerContainer(REGISTRY_IMAGE)
                .with_network(network)
                .with_exposed_ports(8081)
                .with_env("SCHEMA_REGISTRY_HOST_NAME", "schema-registry")
                .with_env("SCHEMA_REGISTRY_LISTENERS", "http://0.0.0.0:8081")
                .with_env("SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS", "PLAINTEXT://kafka:9092")
            )
            with registry:
                wait_for_logs(registry, "Server started", timeout=120)
                url = (f"http://{registry.get_container_host_ip()}:"
                       f"{registry.get_exposed_port(8081)}")
                yield kafka.get_bootstrap_server(), url


@pytest.fixture(scope="module")
def docker_run(containers: tuple[str, str]) -> dict[str, Any]:
    return run_e2e(*containers)


def test_every_family_arrived_on_apache_kafka(docker_run: dict[str, Any]) -> None:
    check_every_family_arrived(docker_run)


@pytest.mark.parametrize("family", [f for f in Family if f is not Family.control])
def test_ledger_equals_kafka_on_apache_kafka(docker_run: dict[str, Any], family: Family) -> None:
    check_family_exact(docker_run, family)
