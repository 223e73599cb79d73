"""What counts as Kafka refusing us (fatal at start) rather than being down (retried)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from connector.errors import FatalError, TransientError
from connector.sink.errors import RefusalWatch, is_refusal, kafka_error

UNTRUSTED = ("ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: error:0A000086:SSL "
             "routines::certificate verify failed: broker certificate could not be verified")
BAD_LOGIN = ("sasl_plaintext://127.0.0.1:9094/bootstrap: SASL authentication error: "
             "Authentication failed during authentication due to invalid credentials with "
             "SASL mechanism SCRAM-SHA-512")


@pytest.mark.parametrize(("code", "text", "refusal"), [
    (KafkaError._AUTHENTICATION, BAD_LOGIN, True),
    (KafkaError.SASL_AUTHENTICATION_FAILED, "bad credentials", True),
    (KafkaError._SSL, UNTRUSTED, True),
    # TLS spoken to a listener that is not TLS
    (KafkaError._SSL, "ssl://h:9092/bootstrap: SSL handshake failed: wrong version number", True),
    # a handshake cut short by a broker going away: worth waiting for
    (KafkaError._SSL, "ssl://h:9093/bootstrap: SSL handshake failed: Disconnected", False),
    (KafkaError._TRANSPORT, "Connection refused", False),
    (KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down", False),
])
def test_refusal_or_down(code: int, text: str, refusal: bool) -> None:
    assert is_refusal(KafkaError(code, text)) is refusal


def test_watch_keeps_the_first_refusal_and_raises_it_as_fatal() -> None:
    watch = RefusalWatch()
    watch.raise_if_refused("cannot list topics")  # nothing seen: nothing raised
    watch(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    watch(KafkaError(KafkaError._AUTHENTICATION, BAD_LOGIN))
    watch(KafkaError(KafkaError._SSL, UNTRUSTED))
    with pytest.raises(FatalError) as raised:
        watch.raise_if_refused("cannot list topics")
    message = str(raised.value)
    assert message.startswith("cannot list topics: Kafka refused the connection: ")
    assert "SCRAM-SHA-512" in message and message.endswith("(_AUTHENTICATION)")


@pytest.mark.parametrize(("code", "transient"), [
    # a topic just created, not yet known to the broker asked (fresh cluster)
    (KafkaError.UNKNOWN_TOPIC_OR_PART, True),
    (KafkaError.LEADER_NOT_AVAILABLE, True),
    (KafkaError._TRANSPORT, True),
    (KafkaError.TOPIC_AUTHORIZATION_FAILED, False),
    (KafkaError.INVALID_CONFIG, False),
])
def test_kafka_error_waits_for_what_a_starting_cluster_answers(code: int,
                                                                 transient: bool) -> None:
    error = kafka_error("rebuild dedupe state", KafkaException(KafkaError(code, "x")))
    assert isinstance(error, TransientError if transient else FatalError), error
