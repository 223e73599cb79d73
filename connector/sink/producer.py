"""The only place that touches ``confluent_kafka.Producer``.

One idempotent producer (``acks=all``) for every topic. ``produce`` never
blocks the event loop: when librdkafka's bounded queue is full it raises
:class:`QueueFull` and :meth:`KafkaSink.send` awaits room instead. Delivery
reports are served by ``poll(0)`` on the event loop's own thread, so callbacks
need no locks. The first delivery error is latched and raised on the next
``send``/``flush``: a failed delivery is never silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connector.errors import FatalError, TransientError

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]
DeliveryHook = Callable[[str, bool], None]

# Defaults chosen for a feed that must not fall behind: small linger keeps
# added latency low while still batching; lz4 is cheap on CPU.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 5,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 100_000,
    "queue.buffering.max.kbytes": 65_536,
    "message.timeout.ms": 300_000,
    "socket.keepalive.enable": True,
}

# Properties the connector owns: overriding them would break the delivery
# guarantees the README promises.
PINNED = {"enable.idempotence": True, "acks": "all"}


class DeliveryError(FatalError):
    """A record could not be delivered; carries librdkafka's error code."""

    def __init__(self, topic: str, error: KafkaError) -> None:
        super().__init__(f"delivery to {topic} failed: {error.str()} ({error.name()})")
        self.topic = topic
        self.code = error.code()
        self.retriable = error.retriable()
        self.fatal = error.fatal()


class QueueFull(TransientError):
    """librdkafka's local queue is full; wait for deliveries and try again."""


def producer_config(
    bootstrap_servers: str,
    client_id: str,
    passthrough: Mapping[str, Any],
    sasl_password: str | None = None,
) -> dict[str, Any]:
    conf: dict[str, Any] = dict(PRODUCER_DEFAULTS)
    conf.update(passthrough)
    conf.update(PINNED)
    conf["bootstrap.servers"] = bootstrap_servers
    conf.setdefault("client.id", client_id)
    if sasl_password is not None:
        conf["sasl.password"] = sasl_password
    return conf


class KafkaSink:
    """Thin typed wrapper with a delivery-error latch."""

    def __init__(self, conf: Mapping[str, Any], on_delivery: DeliveryHook | None = None) -> None:
        self._conf = dict(conf)
        self._producer = Producer(self._conf, logger=log)
        self._first_error: DeliveryError | None = None
        self._on_delivery = on_delivery
        self.in_flight = 0
        self.delivered = 0
        self.failed = 0

    # -- producing -------------------------------------------------------
    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
        timestamp_ms: int = 0,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        """Enqueue one record without blocking; QueueFull when there is no room."""
        self.raise_if_failed()
        callback = self._wrap(on_delivery)
        try:
            self._producer.produce(
                topic,
                value=value,
                key=key,
                headers=list(headers) if headers else None,
                timestamp=timestamp_ms,
                on_delivery=callback,
            )
        except BufferError:
            raise QueueFull("producer queue full") from None
        except KafkaException as exc:
            raise FatalError(f"produce to {topic} failed: {exc}") from exc
        self.in_flight += 1

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        """Produce, awaiting room in the queue (backpressure) rather than dropping."""
        while True:
            try:
                self.produce(topic, value, key, headers, on_delivery=on_delivery)
                return
            except QueueFull:
                self._producer.poll(0)
                await asyncio.sleep(0.005)

    def _wrap(
        self, user: Callable[[KafkaError | None, Message], None] | None
    ) -> Callable[[KafkaError | None, Message], None]:
        def _delivered(err: KafkaError | None, msg: Message) -> None:
            self.in_flight -= 1
            topic = msg.topic() or "?"
            if err is not None:
                self.failed += 1
                if self._first_error is None:
                    self._first_error = DeliveryError(topic, err)
                    log.error("delivery failed", extra={"topic": topic, "error": err.str()})
            else:
                self.delivered += 1
            if self._on_delivery is not None:
                self._on_delivery(topic, err is None)
            if user is not None:
                user(err, msg)

        return _delivered

    # -- delivery reports ---------------------------------------------------
    def poll(self, timeout: float = 0.0) -> int:
        return int(self._producer.poll(timeout))

    async def serve_delivery_reports(self, interval: float = 0.02) -> None:
        """Run forever: serve delivery callbacks on the event loop's thread."""
        while True:
            self._producer.poll(0)
            await asyncio.sleep(interval)

    def raise_if_failed(self) -> None:
        if self._first_error is not None:
            raise self._first_error

    @property
    def first_error(self) -> DeliveryError | None:
        return self._first_error

    def queue_length(self) -> int:
        return len(self._producer)

    # -- shutdown -------------------------------------------------------------
    async def flush(self, timeout: float) -> int:
        """Wait for outstanding deliveries without blocking the loop; returns what is left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._producer) > 0 and loop.time() < deadline:
            self._producer.poll(0)
            await asyncio.sleep(0.01)
        self._producer.poll(0)
        return len(self._producer)

    def close(self, timeout: float = 5.0) -> int:
        left = int(self._producer.flush(timeout))
        return left
