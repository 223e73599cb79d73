"""Apache Kafka (KRaft) from Maven Central, on loopback, for tests, demo and bench.

The broker our users run. Nothing is committed: ``kafka_libs()`` has Maven
copy ``org.apache.kafka:kafka_2.13`` and its runtime dependencies (the
descriptor is ``apache_kafka/pom.xml`` beside this file) into a per-user
cache named by version, ``~/.cache/sequence-connector/kafka/<version>/libs``
(``SEQCONN_CACHE_DIR`` or ``XDG_CACHE_HOME`` move it), reused when present.
Nodes are combined broker+controller JVMs started with ``java -cp``.

- ``KafkaCluster(size=1)``: one node, the suite's default broker;
  ``KafkaCluster(size=3)``: three voters for replication and failover tests.
- Each node can be stopped cleanly, killed (SIGKILL), paused (SIGSTOP) and
  resumed, and restarted with its data kept: unlike tansu, nothing is lost
  across a restart, which is what the durability tests are about.
- ``KafkaBroker``: a one-node cluster with the interface of the tansu
  ``EmbeddedBroker`` (``bootstrap``, ``port``, ``kill``, ``restart``, ...), so
  the suite, the demo and the bench take either.

Measured here (2 cores): fetching 4.4.0 takes ~10 s with a warm Maven
repository; formatting ~2 s and a node answers metadata ~4 s after start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

from connector.sandbox.broker import HOST, BrokerStartError, free_port, stop_process

DEFAULT_VERSION = "4.4.0"
# The version Maven Central is known to serve when the default is refused.
FALLBACK_VERSION = "4.3.1"
POM = Path(__file__).with_name("apache_kafka") / "pom.xml"
_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
"""


class KafkaUnavailable(RuntimeError):
    """Java or Maven is missing, or the jars cannot be fetched: the reason says which."""


def cache_root() -> Path:
    explicit = os.environ.get("SEQCONN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sequence-connector"


def kafka_version() -> str:
    return os.environ.get("SEQCONN_KAFKA_VERSION", DEFAULT_VERSION)


def unavailable_reason() -> str | None:
    """Why Apache Kafka cannot run here, or None when it can (jars cached or fetchable)."""
    if shutil.which("java") is None:
        return "no `java` on PATH"
    if _cached_libs(kafka_version()) is None and shutil.which("mvn") is None:
        return "no `mvn` on PATH to fetch the Kafka jars, and none are cached"
    return None


def _cached_libs(version: str) -> Path | None:
    libs = cache_root() / "kafka" / version / "libs"
    return libs if (libs / ".complete").exists() else None


def kafka_libs(version: str | None = None) -> Path:
    """The directory of the broker's jars, fetched once per version and user."""
    wanted = version or kafka_version()
    tried: list[str] = []
    for candidate in dict.fromkeys((wanted, FALLBACK_VERSION)):
        try:
            return _fetch(candidate)
        except KafkaUnavailable as exc:
            tried.append(f"{candidate}: {exc}")
        if version is not None:
            break  # an explicit version gets no silent substitute
    raise KafkaUnavailable("; ".join(tried))


def _fetch(version: str) -> Path:
    cached = _cached_libs(version)
    if cached is not None:
        return cached
    if shutil.which("mvn") is None:
        raise KafkaUnavailable("no `mvn` on PATH")
    home = cache_root() / "kafka" / version
    home.mkdir(parents=True, exist_ok=True)
    # Two test runs (or a test and the demo) may fetch at once: one does, the
    # other waits and then finds the jars.
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = _cached_libs(version)
        if cached is not None:
            return cached
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=home))
        done = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
             f"-Dkafka.version={version}", f"-DoutputDirectory={staging}",
             "-DincludeScope=runtime"],
            capture_output=True, text=True, check=False, timeout=900)
        if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise KafkaUnavailable(f"mvn could not fetch kafka_2.13 {version}: {' | '.join(tail)}")
        (staging / ".complete").write_text(version)
        libs = home / "libs"
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        return libs


@dataclass(frozen=True)
class Listener:
    """An extra listener beside PLAINTEXT, e.g. ``Listener("SASL", "SASL_PLAINTEXT")``."""

    name: str
    protocol: str
    port: int = 0  # 0: a free loopback port is picked at start


@dataclass
class ClusterOptions:
    heap_mb: int = 512
    listeners: tuple[Listener, ...] = ()
    # server.properties added to (or overriding) the test defaults below
    properties: Mapping[str, str] = field(default_factory=dict)
    # SCRAM credentials written at format time: (mechanism, user, password)
    scram_users: tuple[tuple[str, str, str], ...] = ()
    start_timeout_s: float = 60.0


# -- secured listeners and ACLs: server.properties for ClusterOptions.properties --------
# Listener-prefixed (``listener.name.<name lower-cased>.``) so PLAINTEXT and
# CONTROLLER stay as they are: the harness, the readback and the nodes
# themselves keep using them.
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


def scram_listener_properties(listener: str,
                              mechanisms: Iterable[str] = ("SCRAM-SHA-512",)) -> dict[str, str]:
    """SASL/SCRAM on ``listener`` (its protocol SASL_PLAINTEXT or SASL_SSL).

    Users come from ``ClusterOptions.scram_users`` (written at format time)
    or the admin API (AlterUserScramCredentials) once the node runs."""
    prefix = f"listener.name.{listener.lower()}."
    wanted = list(mechanisms)
    props = {f"{prefix}sasl.enabled.mechanisms": ",".join(wanted)}
    for mechanism in wanted:
        props[f"{prefix}{mechanism.lower()}.sasl.jaas.config"] = f"{SCRAM_LOGIN_MODULE} required;"
    return props


def ssl_listener_properties(listener: str, keystore_pem: Path) -> dict[str, str]:
    """TLS on ``listener`` (SSL or SASL_SSL) from one PEM file holding the
    broker's unencrypted PKCS#8 key and its certificate chain; no client
    certificate is asked for."""
    prefix = f"listener.name.{listener.lower()}."
    return {f"{prefix}ssl.keystore.type": "PEM",
            f"{prefix}ssl.keystore.location": str(keystore_pem)}


def authorizer_properties(super_users: Iterable[str] = ("User:ANONYMOUS",)) -> dict[str, str]:
    """KRaft's StandardAuthorizer with nothing allowed without an ACL.

    PLAINTEXT and CONTROLLER clients are ``User:ANONYMOUS``: the nodes talk
    to each other that way, so it stays a super user by default (and the
    PLAINTEXT listener an open door for the test's own reads)."""
    return {"authorizer.class.name": STANDARD_AUTHORIZER,
            "super.users": ";".join(super_users),
            "allow.everyone.if.no.acl.found": "false"}


class KafkaNode:
    """One combined broker+controller JVM of a cluster."""

    def __init__(self, cluster: KafkaCluster, index: int) -> None:
        self.cluster = cluster
        self.node_id = index + 1
        self.home = cluster.workdir / f"node-{self.node_id}"
        self.data = self.home / "data"
        self.log_path = self.home / "server.log"
        self.port = 0
        self.controller_port = 0
        self.extra_ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def address(self, listener: str) -> str:
        return f"{HOST}:{self.extra_ports[listener]}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"node {self.node_id} is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The JVM's exit status once it has exited (and not been reaped), else None."""
        return None if self._proc is None else self._proc.poll()

    def pick_ports(self) -> None:
        self.port = free_port()
        self.controller_port = free_port()
        self.extra_ports = {x.name: x.port or free_port() for x in self.cluster.options.listeners}

    def properties(self) -> dict[str, str]:
        c = self.cluster
        size = len(c.nodes)
        extra = c.options.listeners
        listeners = [f"PLAINTEXT://{HOST}:{self.port}", f"CONTROLLER://{HOST}:{self.controller_port}"]
        listeners += [f"{x.name}://{HOST}:{self.extra_ports[x.name]}" for x in extra]
        advertised = [f"PLAINTEXT://{HOST}:{self.port}"]
        advertised += [f"{x.name}://{HOST}:{self.extra_ports[x.name]}" for x in extra]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        protocols += [f"{x.name}:{x.protocol}" for x in extra]
        replicas = str(min(size, 3))
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": ",".join(
                f"{n.node_id}@{HOST}:{n.controller_port}" for n in c.nodes),
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "listener.security.protocol.map": ",".join(protocols),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": "1",
            # internal topics sized for a test cluster: fewer partitions make the
            # first group join and the first transaction seconds faster
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": str(min(size, 2)),
            "transaction.state.log.num.partitions": "5",
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": str(min(size, 2)),
            "group.initial.rebalance.delay.ms": "0",
            # the compaction tests wait for the cleaner; its default backoff is 15 s
            "log.cleaner.backoff.ms": "500",
            # After a kill -9 the controller keeps the dead broker's registration
            # until its session times out (9 s by default) and refuses the restarted
            # one (DUPLICATE_BROKER_REGISTRATION) until then; a leader that was
            # killed is also only replaced then. 3 s keeps failover tests short.
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "500",
        }
        props.update(c.options.properties)
        return props

    def write_config(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        return path

    def format(self, cluster_id: str) -> None:
        config = self.write_config()
        command = [*self.cluster.java(heap_mb=256), "kafka.tools.StorageTool", "format",
                   f"--cluster-id={cluster_id}", "-c", str(config), "--ignore-formatted"]
        for mechanism, user, password in self.cluster.options.scram_users:
            command += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            # the command line holds SCRAM passwords: report the tool's output only
            raise BrokerStartError(f"formatting node {self.node_id} failed: "
                                   f"{(done.stdout + done.stderr).strip()[-600:]}")

    def launch(self) -> None:
        if self.running:
            return
        config = self.write_config()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in reap
        self._proc = subprocess.Popen(
            [*self.cluster.java(self.cluster.options.heap_mb), "kafka.Kafka", str(config)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    def _signal(self, sig: signal.Signals) -> None:
        if self.running:
            assert self._proc is not None  # noqa: S101 - for mypy: running means a process
            os.kill(self._proc.pid, sig)

    def stop(self, deadline_s: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown), then SIGKILL past the deadline."""
        if self._proc is None:
            return
        stop_process(self._proc, deadline_s, kill_wait_s=10)
        self.reap()

    def kill(self) -> None:
        """SIGKILL, as an OOM kill or a lost machine would: only fsynced data survives."""
        if self._proc is not None:
            self._signal(signal.SIGKILL)
            self._proc.wait(timeout=10)
            self.reap()

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def reap(self) -> None:
        """Forget the exited process and close its log."""
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"


class KafkaCluster:
    """``size`` combined KRaft nodes on loopback; data kept across node restarts."""

    kind = "kafka"

    def __init__(self, size: int = 1, workdir: Path | None = None,
                 options: ClusterOptions | None = None, version: str | None = None) -> None:
        self.options = options or ClusterOptions(heap_mb=512 if size == 1 else 384)
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="kafka-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.version = version
        self.nodes = [KafkaNode(self, i) for i in range(size)]
        self.cluster_id = ""
        self._libs: Path | None = None

    def java(self, heap_mb: int) -> list[str]:
        assert self._libs is not None  # noqa: S101 - for mypy: start() fetches the jars first
        log4j = self.workdir / "log4j2.properties"
        if not log4j.exists():
            log4j.write_text(_LOG4J2)
        return ["java", f"-Xms{min(heap_mb, 256)}m", f"-Xmx{heap_mb}m",
                # Kafka's own start script's collector settings
                "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
                "-cp", f"{self._libs}/*"]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    def bootstrap_for(self, listener: str) -> str:
        return ",".join(n.address(listener) for n in self.nodes)

    def start(self) -> Self:
        self._libs = kafka_libs(self.version)
        self.cluster_id = _random_cluster_id()
        for node in self.nodes:
            node.pick_ports()
        for node in self.nodes:
            node.format(self.cluster_id)
        for node in self.nodes:
            node.launch()
        try:
            self.wait_ready(self.options.start_timeout_s)
        except BrokerStartError:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout_s: float = 60.0, nodes: Iterable[KafkaNode] | None = None) -> None:
        """Until every running node (or ``nodes``) is a registered broker in the metadata."""
        want = {n.node_id for n in (nodes if nodes is not None else self.nodes) if n.running}
        deadline = time.monotonic() + timeout_s
        seen: set[int] = set()
        while time.monotonic() < deadline:
            for node in self.nodes:
                if (code := node.exit_code) is not None:
                    raise BrokerStartError(
                        f"kafka node {node.node_id} exited ({code}); "
                        f"log tail: {node.log_tail()}")
            seen = _registered_brokers(self.running_bootstrap())
            if want <= seen:
                return
            time.sleep(0.25)
        tails = " || ".join(f"node {n.node_id}: {n.log_tail(600)}" for n in self.nodes)
        raise BrokerStartError(f"kafka not ready after {timeout_s}s (brokers {sorted(seen)} of "
                               f"{sorted(want)}); {tails}")

    def running_bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes if n.running) or self.bootstrap

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def restart_node(self, node: KafkaNode, *, kill: bool = False) -> None:
        """Stop (or kill) and start one node on the same ports, its data kept."""
        if kill:
            node.kill()
        else:
            node.stop()
        self.start_node(node)

    def start_node(self, node: KafkaNode, timeout_s: float = 60.0) -> None:
        # the old listener may linger for a moment after a kill; the JVM then
        # exits with a bind error, so try again until the deadline
        deadline = time.monotonic() + timeout_s
        while True:
            node.launch()
            try:
                self.wait_ready(max(1.0, deadline - time.monotonic()), nodes=[node])
                return
            except BrokerStartError:
                if time.monotonic() > deadline or node.running:
                    raise
                node.reap()
                time.sleep(0.5)

    def leader(self, topic: str, partition: int = 0) -> int:
        """The node id leading ``topic``'s ``partition`` right now."""
        from confluent_kafka.admin import AdminClient  # the sandbox may use the client

        admin = AdminClient({"bootstrap.servers": self.running_bootstrap()})
        meta = admin.list_topics(topic, timeout=10)
        return int(meta.topics[topic].partitions[partition].leader)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class KafkaBroker(KafkaCluster):
    """One node, shaped like the tansu ``EmbeddedBroker`` so callers take either."""

    def __init__(self, log_dir: Path | None = None, options: ClusterOptions | None = None,
                 version: str | None = None) -> None:
        super().__init__(1, workdir=log_dir, options=options, version=version)

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    @property
    def log_path(self) -> Path:
        return self.nodes[0].log_path

    def pause(self) -> None:
        self.nodes[0].pause()

    def resume(self) -> None:
        self.nodes[0].resume()

    def kill(self) -> None:
        self.nodes[0].kill()

    def restart(self) -> None:
        """Stop (cleanly, unless killed before) and start again: the data is kept."""
        self.restart_node(self.nodes[0])


def _registered_brokers(bootstrap: str) -> set[int]:
    from confluent_kafka.admin import AdminClient

    # log_level 0: a node that is still starting refuses connections, and
    # librdkafka would print a line for each refused try
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 1000,
                         "socket.connection.setup.timeout.ms": 1000, "log_level": 0})
    with contextlib.suppress(Exception):
        return {int(b) for b in admin.list_topics(timeout=1).brokers}
    return set()


def _random_cluster_id() -> str:
    """What ``kafka-storage random-uuid`` prints: 16 random bytes, base64url, no
    padding, and like Kafka's ``Uuid.randomUuid`` never one starting with '-':
    the storage tool's argument parser takes that for an option (seen here: one
    start in 64 failed with "--cluster-id: expected one argument")."""
    import base64

    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text
