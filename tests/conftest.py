"""Session fixtures: one real broker and one real registry, fresh topics per test.

Factories in the quix-streams style: tests ask for ``topic_factory`` and get
a new uuid-named topic each call, so tests share a broker without sharing
state. No mocks: see docs/DESIGN.md, "Real infrastructure in tests".

``--broker kafka|tansu`` picks the broker every test runs on: Apache Kafka
(KRaft, jars from Maven Central, connector/sandbox/kafka.py) by default where
``java`` and ``mvn`` are on PATH, else tansu with a one-line notice. Tests
that only make sense on one of them carry ``@pytest.mark.kafka_only(reason)``
or ``@pytest.mark.tansu_only(reason)`` and are skipped on the other.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from connector.sandbox.brokers import Broker, start_broker
from connector.sandbox.kafka import unavailable_reason
from connector.sandbox.registry import RegistryThread
from tests.support import readback as readback_module

TopicFactory = Callable[..., str]
BROKERS = ("kafka", "tansu")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker", choices=BROKERS, default=None,
        help="the broker the suite runs on (default: kafka where java and mvn are on PATH)")


def pytest_configure(config: pytest.Config) -> None:
    chosen = config.getoption("--broker")
    if chosen is None:
        reason = unavailable_reason()
        chosen = "kafka" if reason is None else "tansu"
        if reason is not None:
            config.issue_config_time_warning(pytest.PytestWarning(
                f"running on tansu, not Apache Kafka: {reason}"), stacklevel=2)
    config.broker_kind = chosen  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> str:
    return f"broker: {config.broker_kind}"  # type: ignore[attr-defined]


def broker_kind(config: pytest.Config) -> str:
    return str(config.broker_kind)  # type: ignore[attr-defined]


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
    kind = broker_kind(config)
    for item in items:
        for marker, needs in (("kafka_only", "kafka"), ("tansu_only", "tansu")):
            mark = item.get_closest_marker(marker)
            if mark is not None and kind != needs:
                why = mark.args[0] if mark.args else ""
                item.add_marker(pytest.mark.skip(reason=f"{needs} only: {why}"))
    docker_items = [item for item in items if item.get_closest_marker("docker")]
    if not docker_items:
        return
    ok, reason = docker_available()
    if not ok:
        for item in docker_items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def broker_name(request: pytest.FixtureRequest) -> str:
    """``kafka`` or ``tansu``: what ``broker`` and ``own_broker_factory`` start."""
    return broker_kind(request.config)


@pytest.fixture(scope="session")
def broker(broker_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    started = start_broker(broker_name, tmp_path_factory.mktemp(broker_name))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def own_broker_factory(broker_name: str,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Broker]]:
    """A broker of the session's kind that only this test uses (to kill, pause, restart)."""
    started: list[Broker] = []

    def make() -> Broker:
        started.append(start_broker(broker_name, tmp_path_factory.mktemp(f"own-{broker_name}")))
        return started[-1]

    try:
        yield make
    finally:
        for each in started:
            each.stop()


@pytest.fixture(scope="session")
def bootstrap(broker: Broker) -> str:
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
