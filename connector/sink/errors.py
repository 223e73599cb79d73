"""Kafka client failures onto the connector's error classes.

librdkafka raises ``KafkaException`` for a cluster that is not there yet
(connection refused, no metadata in time) and for one that refuses us (bad
credentials, not authorised, a bad setting). Callers outside ``sink/`` never
see ``confluent_kafka``: they get a ``TransientError`` (wait and try again,
as at start-up while Kafka comes up) or a ``FatalError`` (stop with one line).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from confluent_kafka import KafkaError, KafkaException

from connector.errors import ConnectorError, FatalError, TransientError

T = TypeVar("T")

# Not marked retriable by librdkafka, but what a broker that is down,
# starting or electing looks like from a client.
UNAVAILABLE = frozenset({
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._RESOLVE,
    KafkaError._WAIT_COORD,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.BROKER_NOT_AVAILABLE,
    KafkaError.NOT_CONTROLLER,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.KAFKA_STORAGE_ERROR,
    # A topic just created is not yet known to every broker: on a fresh
    # three-broker cluster the dedupe rebuild's offset query reached a leader
    # that had not applied it yet. Kafka's own clients retry it
    # (UnknownTopicOrPartitionException is a RetriableException).
    KafkaError.UNKNOWN_TOPIC_OR_PART,
})


def kafka_error(what: str, exc: KafkaException) -> ConnectorError:
    """``what`` failed with ``exc``: transient when Kafka is unreachable or
    not ready, fatal otherwise (authentication, authorisation, bad config)."""
    err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    if err is None:
        return FatalError(f"{what}: {exc}")
    if err.retriable() or err.code() in UNAVAILABLE:
        return TransientError(f"{what}: {err.str()}")
    return FatalError(f"{what}: {err.str()} ({err.name()})")


def kafka_call(what: str, call: Callable[[], T]) -> T:
    """Run a blocking Kafka client call with its failures mapped by ``kafka_error``."""
    try:
        return call()
    except KafkaException as exc:
        raise kafka_error(what, exc) from None


# A cluster that refuses us is not a cluster that is down. librdkafka reports
# a refused SCRAM login (_AUTHENTICATION) or a broker certificate the client
# does not trust (_SSL) only to the error callback and its log; the call
# itself then fails exactly as if Kafka were unreachable (_TRANSPORT after
# its timeout, seen on Apache Kafka 4.4 with librdkafka 2.16), which start-up
# would retry forever.
AUTH_REFUSALS = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})


def is_refusal(err: KafkaError) -> bool:
    if err.code() in AUTH_REFUSALS:
        return True
    # _SSL also covers a handshake cut short by a broker going away, which is
    # worth waiting for; an untrusted or mismatched certificate, or TLS spoken
    # to a listener that is not TLS, is not.
    text = err.str()
    return err.code() == KafkaError._SSL and ("certificate" in text
                                             or "wrong version number" in text)


class RefusalWatch:
    """An ``error_cb`` for a Kafka client that keeps the first refusal it sees."""

    def __init__(self) -> None:
        self.refusal: KafkaError | None = None

    def __call__(self, err: KafkaError) -> None:
        if self.refusal is None and is_refusal(err):
            self.refusal = err

    def raise_if_refused(self, what: str) -> None:
        err = self.refusal
        if err is not None:
            # err.str() names the broker and what was refused, never a password
            raise FatalError(f"{what}: Kafka refused the connection: {err.str()} ({err.name()})")


class _MetadataClient(Protocol):
    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...

    def poll(self, timeout: float = -1) -> Any: ...


def watch_refusals(conf: dict[str, Any]) -> RefusalWatch:
    """Install a ``RefusalWatch`` as the client config's error callback."""
    watch = RefusalWatch()
    conf["error_cb"] = watch
    return watch


def list_topics(client: _MetadataClient, watch: RefusalWatch, what: str, timeout_s: float,
                topic: str | None = None) -> Any:
    """``client.list_topics`` that ends as soon as Kafka refuses us.

    Asked in slices of a second, serving the error callback in between (it
    runs only from ``poll``): a refused login is fatal within about a second
    instead of looking like an unreachable cluster after ``timeout_s``. The
    client keeps its connections across slices, so a slow handshake is not
    restarted. An admin client's ``poll`` only serves callbacks; for a
    consumer, call this before anything is assigned (``poll`` would consume).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            return client.list_topics(topic, timeout=max(0.1, min(1.0, remaining)))
        except KafkaException as exc:
            client.poll(0)
            watch.raise_if_refused(what)
            if remaining <= 1.0:
                raise kafka_error(what, exc) from None
