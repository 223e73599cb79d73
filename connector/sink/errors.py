"""Kafka client failures onto the connector's error classes.

librdkafka raises ``KafkaException`` for a cluster that is not there yet
(connection refused, no metadata in time) and for one that refuses us (bad
credentials, not authorised, a bad setting). Callers outside ``sink/`` never
see ``confluent_kafka``: they get a ``TransientError`` (wait and try again,
as at start-up while Kafka comes up) or a ``FatalError`` (stop with one line).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

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
