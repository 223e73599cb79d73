"""The connector against a secured Apache Kafka: SCRAM, TLS and ACLs.

One broker for the module, with four listeners: PLAINTEXT (the test's own
reads and admin, as the super user ``User:ANONYMOUS``), CONTROLLER,
``SASL`` (SASL_PLAINTEXT with SCRAM-SHA-512) and ``SSL`` (a certificate from
a CA this module makes in a temporary directory). The StandardAuthorizer
runs with ``allow.everyone.if.no.acl.found=false``, so the SCRAM users can
do only what their ACLs allow.

The connector runs as a real process (``python -m connector run``). Where
it writes, the records are read back through the PLAINTEXT listener by the
independent reader. Where it must refuse, it must exit non-zero on its own
(not retry a refused login as if Kafka were down), with one JSON error line
that says what was refused, no traceback, and the password in no output.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from connector.demo import SimulatorThread
from connector.process import EXIT_FATAL
from connector.protocol.families import Family
from connector.sandbox.kafka import (
    ClusterOptions,
    KafkaBroker,
    Listener,
    authorizer_properties,
    scram_listener_properties,
    ssl_listener_properties,
)
from connector.sandbox.simulator import SimulatorConfig
from connector.serde.topics import TopicNames
from tests.support.chaos import connector_env, new_prefix, read_family
from tests.support.connector_process import ConnectorRun, LogLine
from tests.support.e2e import KEY
from tests.support.tls import CertificateAuthority, issue_server_cert, make_ca

pytestmark = pytest.mark.kafka_only("SCRAM, TLS listeners and ACLs: tansu has none of them")

TOPICS = ("prices:BTC-USD", "orders", "fills")
# Made per run: nothing secret is committed, and a distinctive string is
# what the no-leak checks search every output for.
ALICE_PASSWORD = f"alice-pw-{uuid.uuid4().hex}"
BOB_PASSWORD = f"bob-pw-{uuid.uuid4().hex}"
WRONG_PASSWORD = f"not-alice-pw-{uuid.uuid4().hex}"
# A refused login or certificate is not a dependency that is down: the
# connector must give up on its own, not wait this long.
REFUSAL_DEADLINE_S = 30.0


@dataclass
class SecuredKafka:
    broker: KafkaBroker
    ca: CertificateAuthority  # signed the broker's certificate
    stranger_ca: CertificateAuthority  # did not

    @property
    def plain(self) -> str:
        return self.broker.bootstrap

    @property
    def sasl(self) -> str:
        return self.broker.bootstrap_for("SASL")

    @property
    def ssl(self) -> str:
        return self.broker.bootstrap_for("SSL")

    def admin(self) -> AdminClient:
        """A super user's client, through PLAINTEXT. Callers keep it while its
        futures are pending: a client collected early fails them (_DESTROY)."""
        # log_level 0: its lines would go to the test's stderr once the broker stops
        return AdminClient({"bootstrap.servers": self.plain, "log_level": 0})


def _result(futures: Mapping[Any, Future[Any]]) -> None:
    for future in futures.values():
        future.result(timeout=30)


def allow_topics(kafka: SecuredKafka, principal: str, prefix: str) -> None:
    """Everything on the topics named ``<prefix>.*``, and nothing else."""
    admin = kafka.admin()
    _result(admin.create_acls([AclBinding(
        ResourceType.TOPIC, f"{prefix}.", ResourcePatternType.PREFIXED, principal, "*",
        AclOperation.ALL, AclPermissionType.ALLOW)]))


def deny_topic(kafka: SecuredKafka, principal: str, topic: str, operation: AclOperation) -> None:
    admin = kafka.admin()
    _result(admin.create_acls([AclBinding(
        ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal, "*",
        operation, AclPermissionType.DENY)]))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    tls_dir = tmp_path_factory.mktemp("tls")
    ca = make_ca(tls_dir, "test-ca")
    stranger = make_ca(tls_dir, "stranger-ca")
    server = issue_server_cert(ca, tls_dir)
    options = ClusterOptions(
        listeners=(Listener("SASL", "SASL_PLAINTEXT"), Listener("SSL", "SSL")),
        properties={**scram_listener_properties("SASL"),
                    **ssl_listener_properties("SSL", server.pem_path),
                    **authorizer_properties(("User:ANONYMOUS",))},
        # alice is written into the metadata at format time; bob is added
        # through the admin API below, as an operator of a running cluster would
        scram_users=(("SCRAM-SHA-512", "alice", ALICE_PASSWORD),))
    broker = KafkaBroker(log_dir=tmp_path_factory.mktemp("kafka-secured"), options=options)
    broker.start()
    try:
        kafka = SecuredKafka(broker, ca, stranger)
        admin = kafka.admin()
        _result(admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
            "bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
            BOB_PASSWORD.encode())]))
        yield kafka
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    running = SimulatorThread(SimulatorConfig(seed=23, rate=200.0, api_keys=(KEY,))).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Callable[..., ConnectorRun]]:
    """``runs(env)``: a started connector, killed at the end if still running."""
    started: list[ConnectorRun] = []

    def start(env: dict[str, str]) -> ConnectorRun:
        workdir = tmp_path / f"run{len(started)}"
        workdir.mkdir()
        started.append(ConnectorRun(env, workdir).start())
        return started[-1]

    try:
        yield start
    finally:
        for run in started:
            run.cleanup()


def secured_env(sim: SimulatorThread, registry_url: str, bootstrap: str, prefix: str,
                producer: dict[str, str], password: str | None = None) -> dict[str, str]:
    env = connector_env(prefix, sim.base_url, bootstrap, registry_url, TOPICS,
                        KAFKA__PRODUCER=json.dumps(producer))
    env.pop("KAFKA_SASL_PASSWORD", None)
    env.pop("KAFKA_SASL_PASSWORD_FILE", None)
    if password is not None:
        env["KAFKA_SASL_PASSWORD"] = password
    return env


def scram(user: str) -> dict[str, str]:
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": user}


def tls(ca: CertificateAuthority) -> dict[str, str]:
    return {"security.protocol": "SSL", "ssl.ca.location": str(ca.cert_path)}


def check_command(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``sequence-connector check`` with the run's settings."""
    return subprocess.run([sys.executable, "-m", "connector", "check"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def wait_prices(kafka: SecuredKafka, registry_url: str, prefix: str,
                run: ConnectorRun) -> None:
    """Prices read back from Kafka (through PLAINTEXT) with the simulator's symbol."""
    deadline = time.monotonic() + 60
    while True:
        prices = read_family(kafka.plain, prefix, registry_url, Family.prices, timeout_s=10,
                             missing_ok=True)
        if prices:
            break
        assert run.alive(), f"connector exited ({run.proc and run.proc.returncode}):\n" \
                            f"{run.stderr()[-3000:]}"
        assert time.monotonic() < deadline, f"no prices in Kafka:\n{run.stderr()[-3000:]}"
        time.sleep(0.5)
    assert {r.value["symbol"] for r in prices} == {"BTC-USD"}
    assert all(r.raw.headers["connector.instance"] == b"chaos" for r in prices)
    assert all(r.schema_id > 0 for r in prices)


def clean_stop(run: ConnectorRun, *secrets: str) -> None:
    assert run.terminate() == 0, run.stderr()[-3000:]
    run.lines()  # every stderr line is one JSON object
    no_leak([run.stderr(), run.stdout_path.read_text()], *secrets)


def no_leak(outputs: list[str], *secrets: str) -> None:
    for secret in secrets:
        for text in outputs:
            assert secret not in text, "a password appears in the connector's output"


def refused(run: ConnectorRun, *words: str) -> LogLine:
    """The connector exits by itself with EXIT_FATAL and one error line, in
    JSON, naming each of ``words``; no traceback, nothing on stdout."""
    try:
        status = run.wait(REFUSAL_DEADLINE_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {REFUSAL_DEADLINE_S}s after start: a refusal was "
                             f"retried as if Kafka were down:\n{run.stderr()[-3000:]}") from None
    lines = run.lines()
    assert status == EXIT_FATAL, run.stderr()[-3000:]
    assert "Traceback" not in run.stderr()
    assert run.stdout_path.read_text() == ""
    errors = [line for line in lines if line["level"] in ("error", "critical")
              and line["logger"] == "connector"]
    assert len(errors) == 1, errors
    event = errors[0]["event"].lower()
    for word in words:
        assert word.lower() in event, errors[0]
    assert "exc" not in errors[0]
    assert errors[0]["exit_code"] == EXIT_FATAL
    return errors[0]


# -- SCRAM-SHA-512 over SASL_PLAINTEXT ---------------------------------------------------
def test_scram_sha_512_writes_records(secured: SecuredKafka, sim: SimulatorThread,
                                      registry_url: str,
                                      runs: Callable[..., ConnectorRun]) -> None:
    prefix = new_prefix("sasl")
    allow_topics(secured, "User:alice", prefix)
    env = secured_env(sim, registry_url, secured.sasl, prefix, scram("alice"), ALICE_PASSWORD)
    checked = check_command(env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    kafka_line = next(x for x in checked.stdout.splitlines() if x.startswith("kafka "))
    assert " OK " in kafka_line and secured.sasl in kafka_line, checked.stdout
    no_leak([checked.stdout, checked.stderr], ALICE_PASSWORD)

    run = runs(env)
    wait_prices(secured, registry_url, prefix, run)
    # every topic the connector made is there, made over SASL as alice
    names = set(secured.admin().list_topics(timeout=10).topics)
    assert TopicNames(prefix=prefix).topic(Family.fills) in names
    clean_stop(run, ALICE_PASSWORD)


def test_wrong_password_is_refused_at_once(secured: SecuredKafka, sim: SimulatorThread,
                                           registry_url: str,
                                           runs: Callable[..., ConnectorRun]) -> None:
    prefix = new_prefix("saslbad")
    allow_topics(secured, "User:alice", prefix)
    env = secured_env(sim, registry_url, secured.sasl, prefix, scram("alice"), WRONG_PASSWORD)
    run = runs(env)
    refused(run, "kafka", "authentication")
    no_leak([run.stderr(), run.stdout_path.read_text()], WRONG_PASSWORD, ALICE_PASSWORD)

    checked = check_command(env)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    kafka_line = next(x for x in checked.stdout.splitlines() if x.startswith("kafka "))
    assert " FAIL " in kafka_line and "authentication" in kafka_line.lower(), checked.stdout
    no_leak([checked.stdout, checked.stderr], WRONG_PASSWORD, ALICE_PASSWORD)
    # nothing was written: the connector never got in
    assert TopicNames(prefix=prefix).topic(Family.prices) not in \
        secured.admin().list_topics(timeout=10).topics


def test_wrong_password_is_refused_when_the_producer_connects_first(
        secured: SecuredKafka, sim: SimulatorThread, registry_url: str,
        runs: Callable[..., ConnectorRun]) -> None:
    """Topics made beforehand (``create_topics: false``) and only prices
    subscribed (no dedupe state to read back): the producer is the first to
    meet Kafka, and its refusal must end the run too."""
    prefix = new_prefix("saslprod")
    env = secured_env(sim, registry_url, secured.sasl, prefix, scram("alice"), WRONG_PASSWORD)
    env["SEQCONN__KAFKA__CREATE_TOPICS"] = "false"
    env["SEQCONN__SEQUENCE__STREAM_TOPICS"] = '["prices:BTC-USD"]'
    run = runs(env)
    refused(run, "kafka", "authentication")
    no_leak([run.stderr(), run.stdout_path.read_text()], WRONG_PASSWORD, ALICE_PASSWORD)


# -- TLS with the test's own CA ------------------------------------------------------------
def test_tls_with_the_test_ca_writes_records(secured: SecuredKafka, sim: SimulatorThread,
                                             registry_url: str,
                                             runs: Callable[..., ConnectorRun]) -> None:
    prefix = new_prefix("tls")
    # no client certificate: the principal is User:ANONYMOUS, a super user here
    run = runs(secured_env(sim, registry_url, secured.ssl, prefix, tls(secured.ca)))
    wait_prices(secured, registry_url, prefix, run)
    clean_stop(run)


def test_untrusted_certificate_is_refused_at_once(secured: SecuredKafka, sim: SimulatorThread,
                                                  registry_url: str,
                                                  runs: Callable[..., ConnectorRun]) -> None:
    prefix = new_prefix("tlsbad")
    env = secured_env(sim, registry_url, secured.ssl, prefix, tls(secured.stranger_ca))
    run = runs(env)
    refused(run, "kafka", "certificate")
    checked = check_command(env)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    kafka_line = next(x for x in checked.stdout.splitlines() if x.startswith("kafka "))
    assert " FAIL " in kafka_line and "certificate" in kafka_line.lower(), checked.stdout


# -- the authorizer: a principal allowed only some topics ----------------------------------
def test_topic_denied_at_create_is_named(secured: SecuredKafka, sim: SimulatorThread,
                                         registry_url: str,
                                         runs: Callable[..., ConnectorRun]) -> None:
    """bob may do anything on ``<prefix>.*`` except the fills topic: creating
    it is refused, and the connector says which topic and why."""
    prefix = new_prefix("aclcreate")
    fills = TopicNames(prefix=prefix).topic(Family.fills)
    allow_topics(secured, "User:bob", prefix)
    deny_topic(secured, "User:bob", fills, AclOperation.ALL)
    run = runs(secured_env(sim, registry_url, secured.sasl, prefix, scram("bob"), BOB_PASSWORD))
    line = refused(run, fills, "authoriz")
    assert "TOPIC_AUTHORIZATION_FAILED" in line["event"], line
    no_leak([run.stderr(), run.stdout_path.read_text()], BOB_PASSWORD)
    topics = secured.admin().list_topics(timeout=10).topics
    assert fills not in topics
    # the topics bob may create were made
    assert TopicNames(prefix=prefix).topic(Family.prices) in topics


def test_topic_denied_on_write_is_named(secured: SecuredKafka, sim: SimulatorThread,
                                        registry_url: str,
                                        runs: Callable[..., ConnectorRun]) -> None:
    """The fills topic exists (an operator made it) and bob may read it but
    not write it: the first fill delivered is refused and the connector
    stops, naming the topic."""
    prefix = new_prefix("aclwrite")
    fills = TopicNames(prefix=prefix).topic(Family.fills)
    admin = secured.admin()
    _result(admin.create_topics([NewTopic(fills, 3, config={
        "cleanup.policy": "compact"})]))
    allow_topics(secured, "User:bob", prefix)
    deny_topic(secured, "User:bob", fills, AclOperation.WRITE)
    run = runs(secured_env(sim, registry_url, secured.sasl, prefix, scram("bob"), BOB_PASSWORD))
    line = refused(run, fills, "authoriz")
    assert "TOPIC_AUTHORIZATION_FAILED" in line["event"], line
    no_leak([run.stderr(), run.stdout_path.read_text()], BOB_PASSWORD)
    assert read_family(secured.plain, prefix, registry_url, Family.fills) == []
