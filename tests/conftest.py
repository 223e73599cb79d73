"""Session fixtures: one real broker and one real registry, fresh topics per test.

Factories in the quix-streams style: tests ask for ``topic_factory`` and get
a new uuid-named topic each call, so tests share a broker without sharing
state. No mocks: see DESIGN.md, "Real infrastructure in tests".
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from connector.sandbox.broker import EmbeddedBroker
from connector.sandbox.registry import RegistryThread
from tests.support import readback as readback_module

TopicFactory = Callable[..., str]


def docker_available() -> tuple[bool, str]:
    """Whether a Docker engine answers, and if not, why (the skip reason)."""
    if shutil.which("docker") is None:
        return False, "no Docker engine here: the docker CLI is not installed"
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"no Docker engine here: {exc}"
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        return False, f"no Docker engine here: {detail[0]}"
    return True, ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    docker_items = [item for item in items if item.get_closest_marker("docker")]
    if not docker_items:
        return
    ok, reason = docker_available()
    if not ok:
        for item in docker_items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    embedded = EmbeddedBroker(log_dir=tmp_path_factory.mktemp("tansu"))
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def bootstrap(broker: EmbeddedBroker) -> str:
    return broker.bootstrap


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryThread]:
    running = RegistryThread().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def registry_url(registry: RegistryThread) -> str:
    return registry.url


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, num_partitions=partitions)]).values():
        future.result(timeout=15)
    return name


@pytest.fixture
def topic_factory(bootstrap: str) -> TopicFactory:
    """``topic_factory(partitions=1, prefix="t")`` -> a fresh, created topic name."""

    def make(partitions: int = 1, prefix: str = "test") -> str:
        return create_topic(bootstrap, f"{prefix}-{uuid.uuid4().hex}", partitions)

    return make


@pytest.fixture
def readback() -> object:
    """The independent reader module (read_all, read_decoded, decode_confluent_avro)."""
    return readback_module
