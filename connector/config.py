"""Typed, frozen settings: one YAML file, every key overridable by environment.

Precedence (lowest first): built-in defaults, the YAML file, environment
variables named ``SEQCONN__<SECTION>__<KEY>`` (values parsed as YAML scalars,
so ``[a, b]`` is a list and ``true`` a bool). Secrets are never read from the
YAML file: only from the environment or from mounted files, and they are held
in :class:`Secret`, whose ``repr``/``str`` never show the value.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connector.errors import FatalError

ENV_PREFIX = "SEQCONN__"


class ConfigError(FatalError):
    """Invalid configuration: one line naming the key and the reason."""


class Secret:
    """A credential that cannot leak through logs, reprs or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


DEFAULT_STREAM_TOPICS: tuple[str, ...] = (
    "prices:BTC-USD",
    "prices:ETH-USD",
    "book:BTC-USD",
    "book:ETH-USD",
    "orders",
    "fills",
    "tca",
    "funding",
    "fair_price",
)


@dataclass(frozen=True)
class SequenceSettings:
    base_url: str = "http://127.0.0.1:8080"
    stream_topics: tuple[str, ...] = DEFAULT_STREAM_TOPICS
    # lifecycle sockets: new_markets, market_resolved
    lifecycle: tuple[str, ...] = ("new_markets", "market_resolved")
    # SSE streams: alerts, tca (tca is also on the WS; dedupe makes both safe)
    sse: tuple[str, ...] = ("alerts",)
    max_frame_bytes: int = 1_048_576
    open_timeout_s: float = 10.0
    ping_interval_s: float = 20.0
    # reconnect when /v1/stream sends nothing for this long (0 disables);
    # raise it when only quiet topics (orders, fills) are subscribed
    stale_after_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_cap_s: float = 30.0
    # recovery: REST re-snapshot after gaps/reconnects, backfill of trading data
    resnapshot_min_interval_s: float = 5.0
    backfill_on_start: bool = True
    backfill_page_size: int = 100
    backfill_max_pages: int = 50
    api_key: Secret | None = None


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "sequence"
    # per-family topic name overrides, e.g. {"fills": "trading.fills"}
    topics: Mapping[str, str] = field(default_factory=dict)
    # librdkafka properties, passed through as-is (security.protocol, sasl.*, ssl.*)
    producer: Mapping[str, Any] = field(default_factory=dict)
    sasl_password: Secret | None = None
    # create missing topics at start (compact for orders/fills/markets)
    create_topics: bool = True
    partitions: int = 6
    replication_factor: int = -1  # -1: the broker's default

    def client_config(self, client_id: str) -> dict[str, Any]:
        """The librdkafka properties these settings stand for (connection,
        security, pass-through); the one place the SASL password is revealed.
        What a producer adds on top is the sink's business (sink/producer.py)."""
        conf: dict[str, Any] = dict(self.producer)
        conf["bootstrap.servers"] = self.bootstrap_servers
        conf.setdefault("client.id", client_id)
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password.reveal()
        return conf


@dataclass(frozen=True)
class RegistrySettings:
    url: str = "http://127.0.0.1:8081"
    basic_auth: Secret | None = None  # "user:password"
    # extra SchemaRegistryClient config (ssl.ca.location, ...)
    client: Mapping[str, Any] = field(default_factory=dict)

    def client_config(self, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """SchemaRegistryClient's config; ``defaults`` go under the user's ``client``."""
        conf: dict[str, Any] = {"url": self.url, **(defaults or {})}
        conf.update(self.client)
        if self.basic_auth is not None:
            conf["basic.auth.user.info"] = self.basic_auth.reveal()
        return conf


@dataclass(frozen=True)
class ConnectorSettings:
    instance_id: str = field(default_factory=socket.gethostname)
    carry_unknown_fields: bool = True
    queue_max_records: int = 20_000
    queue_max_bytes: int = 64 * 1024 * 1024
    # identities remembered per deduped family; None: the window within which
    # one of its events can repeat, derived per family in
    # connector.dedupe.window (a number overrides it for every family)
    dedupe_capacity: int | None = None
    # restart-safe dedupe: keys read back from the tail of each deduped topic,
    # at most the window per partition; these two only shorten that read
    # (per partition None, and max age 0: no shorter)
    dedupe_rebuild_per_partition: int | None = None
    dedupe_rebuild_max_age_s: float = 0.0
    drain_timeout_s: float = 30.0
    # how long start-up waits for the registry, Kafka and Sequence, retrying
    # with a log line each time; 0 waits forever (Kubernetes: /readyz says 503
    # meanwhile), >0 then exits with status 4
    startup_timeout_s: float = 0.0
    # >1: run that many worker processes, the stream's market-data topics
    # sharded between them (trading, lifecycle and SSE stay on worker 0); with
    # shards >0, that many replicas, each a member of the group
    workers: int = 1
    # >0: more than one replica (connector/replicas.py). The subscriptions split
    # into this many shards, owned through Kafka's consumer-group protocol
    # (one partition of <prefix>.shards per shard); 0: one process owns all
    shards: int = 0
    group_id: str | None = None  # default <topic_prefix>.connector
    session_timeout_s: float = 10.0  # a replica silent this long loses its shards
    revoke_timeout_s: float = 20.0  # a revoked shard's drain and flush deadline
    # at_least_once (idempotent producer) | exactly_once (one transactional
    # producer per shard, transactional.id <prefix>-shard-<n>; Apache Kafka only)
    delivery: str = "at_least_once"
    transaction_ms: int = 100  # commit a shard's transaction this often
    transaction_max_records: int = 20_000  # or after this many records
    covered_interval_s: float = 1.0  # how often a shard records its last-covered time


@dataclass(frozen=True)
class ObserveSettings:
    metrics_port: int = 9108  # 0 disables the HTTP port
    metrics_host: str = "0.0.0.0"  # noqa: S104 - probes and scrapes come from outside
    log_format: str = "json"  # json | text
    log_level: str = "INFO"
    # /readyz turns 503 when a subscribed family has had no event for longer
    # than its limit (seconds); families not listed are not checked
    stale_limits_s: Mapping[str, float] = field(
        default_factory=lambda: {"prices": 30.0, "book": 30.0})
    # /readyz turns 503 when Kafka has not acknowledged a record for this long
    max_unacked_age_s: float = 15.0


@dataclass(frozen=True)
class Settings:
    sequence: SequenceSettings = field(default_factory=SequenceSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    schema_registry: RegistrySettings = field(default_factory=RegistrySettings)
    connector: ConnectorSettings = field(default_factory=ConnectorSettings)
    observe: ObserveSettings = field(default_factory=ObserveSettings)

    def kafka_client_config(self) -> dict[str, Any]:
        """librdkafka properties for this instance's clients (see KafkaSettings)."""
        return self.kafka.client_config(f"sequence-connector-{self.connector.instance_id}")


# (section, key) -> (env var holding the secret, env var naming a file holding it)
SECRET_SOURCES: dict[tuple[str, str], tuple[str, str]] = {
    ("sequence", "api_key"): ("SEQUENCE_API_KEY", "SEQUENCE_API_KEY_FILE"),
    ("kafka", "sasl_password"): ("KAFKA_SASL_PASSWORD", "KAFKA_SASL_PASSWORD_FILE"),
    ("schema_registry", "basic_auth"): (
        "SCHEMA_REGISTRY_BASIC_AUTH",
        "SCHEMA_REGISTRY_BASIC_AUTH_FILE",
    ),
}


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build settings from defaults, an optional YAML file, env and overrides."""
    env = os.environ if env is None else env
    raw: dict[str, dict[str, Any]] = {}
    if path is not None:
        raw = _read_yaml(Path(path))
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"config: env {name}: expected {ENV_PREFIX}<SECTION>__<KEY>")
        section, key = parts
        raw.setdefault(section, {})[key] = yaml.safe_load(value) if value else value
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    return _build(raw, env)


def _read_yaml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config: file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: file {path} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config: file {path} must hold a mapping of sections")
    for section, values in loaded.items():
        if not isinstance(values, dict):
            raise ConfigError(f"config: {section}: must be a mapping")
    return loaded


def _build(raw: dict[str, dict[str, Any]], env: Mapping[str, str]) -> Settings:
    sections: dict[str, Any] = {}
    hints = typing.get_type_hints(Settings)
    for section, values in raw.items():
        if section not in hints:
            raise ConfigError(f"config: {section}: unknown section (one of {sorted(hints)})")
        del values  # validated below, section by section
    for section, cls in hints.items():
        sections[section] = _build_section(section, cls, raw.get(section, {}), env)
    settings = Settings(**sections)
    _validate(settings)
    return settings


def _build_section(
    section: str, cls: type[Any], values: dict[str, Any], env: Mapping[str, str]
) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(f"config: {section}.{key}: unknown key (one of {sorted(hints)})")
        if (section, key) in SECRET_SOURCES:
            var = SECRET_SOURCES[(section, key)][0]
            raise ConfigError(
                f"config: {section}.{key}: secrets are not read from config; set {var} "
                f"or {var}_FILE"
            )
        kwargs[key] = _coerce(f"{section}.{key}", hints[key], value)
    for (sec, key), (var, file_var) in SECRET_SOURCES.items():
        if sec == section:
            secret = _read_secret(f"{section}.{key}", env.get(var), env.get(file_var))
            if secret is not None:
                kwargs[key] = secret
    return cls(**kwargs)


def _read_secret(name: str, value: str | None, file_path: str | None) -> Secret | None:
    if value:
        return Secret(value.strip())
    if file_path:
        try:
            return Secret(Path(file_path).read_text().strip())
        except OSError as exc:
            raise ConfigError(f"config: {name}: cannot read secret file: {exc.strerror}") from None
    return None


def _coerce(name: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        non_none = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _coerce(name, non_none[0], value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config: {name}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config: {name}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config: {name}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config: {name}: expected a string, got {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"config: {name}: expected a list of strings, got {value!r}")
        return tuple(value)
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, dict):
            raise ConfigError(f"config: {name}: expected a mapping, got {value!r}")
        return types.MappingProxyType(dict(value))
    return value


_FAMILIES = (
    "prices", "book", "orders", "fills", "tca", "traces", "funding", "fair_price",
    "markets_new", "markets_resolved", "alerts", "control", "dlq",
)  # fmt: skip


def _validate(s: Settings) -> None:
    if not s.sequence.base_url.startswith(("http://", "https://")):
        raise ConfigError("config: sequence.base_url: must start with http:// or https://")
    if not s.sequence.stream_topics and not s.sequence.lifecycle and not s.sequence.sse:
        raise ConfigError("config: sequence.stream_topics: nothing to subscribe to")
    bad = set(s.sequence.lifecycle) - {"new_markets", "market_resolved"}
    if bad:
        raise ConfigError(f"config: sequence.lifecycle: unknown sockets {sorted(bad)}")
    bad = set(s.sequence.sse) - {"alerts", "tca"}
    if bad:
        raise ConfigError(f"config: sequence.sse: unknown streams {sorted(bad)}")
    if s.sequence.max_frame_bytes < 1024:
        raise ConfigError("config: sequence.max_frame_bytes: must be at least 1024")
    if not s.kafka.bootstrap_servers.strip():
        raise ConfigError("config: kafka.bootstrap_servers: must not be empty")
    bad = set(s.kafka.topics) - set(_FAMILIES)
    if bad:
        raise ConfigError(f"config: kafka.topics: unknown families {sorted(bad)}")
    for key in s.kafka.producer:
        if "password" in key or "secret" in key:
            raise ConfigError(
                f"config: kafka.producer.{key}: secrets are not read from config; "
                "set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE"
            )
    if not s.schema_registry.url.startswith(("http://", "https://")):
        raise ConfigError("config: schema_registry.url: must start with http:// or https://")
    if s.connector.startup_timeout_s < 0:
        raise ConfigError("config: connector.startup_timeout_s: must be >= 0 (0: wait forever)")
    if not 1 <= s.connector.workers <= 64:
        raise ConfigError("config: connector.workers: must be 1..64")
    r = s.connector
    if not 0 <= r.shards <= 256:
        raise ConfigError("config: connector.shards: must be 0..256 (0: no replicas)")
    if r.delivery not in ("at_least_once", "exactly_once"):
        raise ConfigError("config: connector.delivery: must be at_least_once or exactly_once")
    if r.session_timeout_s < 1 or r.revoke_timeout_s <= 0 or r.covered_interval_s <= 0:
        raise ConfigError("config: connector.session/revoke timeouts, covered_interval_s: "
                          "must be positive (session_timeout_s at least 1)")
    if r.transaction_ms < 1 or r.transaction_max_records < 1:
        raise ConfigError("config: connector.transaction_ms/_max_records: must be positive")
    if s.connector.queue_max_records < 1 or s.connector.queue_max_bytes < 1024:
        raise ConfigError("config: connector.queue_max_records/bytes: must be positive")
    c = s.connector
    if c.dedupe_capacity is not None and c.dedupe_capacity < 1:
        raise ConfigError("config: connector.dedupe_capacity: must be positive (or unset)")
    if c.dedupe_rebuild_per_partition is not None and c.dedupe_rebuild_per_partition < 0:
        raise ConfigError("config: connector.dedupe_rebuild_per_partition: must be >= 0")
    if c.dedupe_rebuild_max_age_s < 0:
        raise ConfigError("config: connector.dedupe_rebuild_max_age_s: must be >= 0 (0: any age)")
    if s.observe.log_format not in ("json", "text"):
        raise ConfigError("config: observe.log_format: must be json or text")
    bad = set(s.observe.stale_limits_s) - set(_FAMILIES)
    if bad:
        raise ConfigError(f"config: observe.stale_limits_s: unknown families {sorted(bad)}")
    if not 0 <= s.observe.metrics_port <= 65535:
        raise ConfigError("config: observe.metrics_port: must be 0..65535")


def replace(settings: Settings, **sections: Mapping[str, Any]) -> Settings:
    """Return a copy with some keys of some sections replaced (used by demo/tests)."""
    updated = {
        name: dataclasses.replace(getattr(settings, name), **values)
        for name, values in sections.items()
    }
    return dataclasses.replace(settings, **updated)
