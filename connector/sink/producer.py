"""The only place that touches ``confluent_kafka.Producer``.

One idempotent producer (``acks=all``) for every topic. ``produce`` never
blocks the event loop: when librdkafka's bounded queue is full it raises
:class:`QueueFull` and :meth:`KafkaSink.send` awaits room instead. Delivery
reports are served by ``poll(0)`` on the event loop's own thread, so callbacks
need no locks.

Nothing accepted is lost: every record stays in an ordered pending table
until Kafka acknowledges it. When the producer hits a fatal error (an
idempotent producer stuck on UNKNOWN_PRODUCER_ID after a broker lost its
state, say) or a record times out, the producer is rebuilt and every pending
record is produced again, in its original order, before anything new. A
permanent error for one record (too large, not authorised) is latched and
raised on the next ``send``/``flush``: a failed delivery is never silently
dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connector.config import Settings
from connector.errors import FatalError, RecordTooLargeError, TransientError
from connector.sink.errors import is_refusal

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]

# Defaults chosen for a feed that must not fall behind: small linger keeps
# added latency low while still batching; lz4 is cheap on CPU. The queue
# bound (records and bytes) is part of the connector's memory bound.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 5,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 50_000,
    "queue.buffering.max.kbytes": 32_768,
    # Long: a record that times out is resent on a new producer, and if the
    # broker had in fact stored it, that resend is a duplicate. A producer
    # stuck after a broker restart is caught sooner by the stall probe.
    "message.timeout.ms": 300_000,
    "socket.keepalive.enable": True,
    # The connector creates its topics with the right layout (partitions,
    # compaction); a broker's auto-create would pick its own defaults.
    "allow.auto.create.topics": False,
}

# Properties the connector owns: overriding them would break the delivery
# guarantees the README promises.
PINNED = {"enable.idempotence": True, "acks": "all"}

# A record's Kafka timestamp is the vendor's event time, so sinks that
# partition or retain by record time place backfilled history where it
# happened. An event time this far ahead of our clock is a clock fault, not
# an event: it gets the producer's time instead, because Kafka 4 refuses
# CreateTime more than message.timestamp.after.max.ms (1 h by default) ahead,
# and a refused record would stop the connector.
MAX_EVENT_TIME_AHEAD_MS = 5 * 60 * 1000

# Errors after which the same records are produced again on a new producer.
RESEND = {
    KafkaError._FATAL,
    KafkaError._MSG_TIMED_OUT,
    KafkaError.UNKNOWN_PRODUCER_ID,
    KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
    KafkaError.INVALID_PRODUCER_EPOCH,
    # After a broker freeze (seen with tansu after a 60 s SIGSTOP) the rebuilt
    # idempotent producer's records came back PRODUCER_FENCED, a per-record
    # error librdkafka does not mark fatal: a new producer (new producer id)
    # delivers them, latching it as permanent stopped the connector.
    KafkaError.PRODUCER_FENCED,
    KafkaError._PURGE_QUEUE,
    KafkaError._PURGE_INFLIGHT,
    # the broker lost the topic (tansu restarted): re-created before the resend
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}
REBUILD_MIN_INTERVAL_S = 2.0  # a rebuild that keeps failing must not spin
QUIESCE_S = 3.0  # how long in-flight requests of a replaced producer are awaited


class DeliveryError(FatalError):
    """A record could not be delivered; carries librdkafka's error code."""

    def __init__(self, topic: str, error: KafkaError) -> None:
        super().__init__(f"delivery to {topic} failed: {error.str()} ({error.name()})")
        self.topic = topic
        self.code = error.code()


class RefusedError(DeliveryError):
    """Kafka refused the producer's login, or the producer does not trust the
    broker's certificate: no record can be delivered until the config changes."""

    def __init__(self, error: KafkaError) -> None:
        FatalError.__init__(
            self, f"producer: Kafka refused the connection: {error.str()} ({error.name()})")
        self.topic = "*"
        self.code = error.code()


class QueueFull(TransientError):
    """librdkafka's local queue is full; wait for deliveries and try again."""


def producer_config(client: Mapping[str, Any]) -> dict[str, Any]:
    """A client config (``Settings.kafka_client_config()``) with the producer's
    defaults under it and the properties the guarantees rest on pinned over it."""
    return {**PRODUCER_DEFAULTS, **client, **PINNED}


def kafka_conf(settings: Settings) -> dict[str, Any]:
    """The producer config of a connector with these settings (also what its
    admin and reader clients connect with: librdkafka ignores the rest)."""
    return producer_config(settings.kafka_client_config())


# A pending record: (topic, value, key, headers, recv_ns, event_ts_ns, accepted_at).
# A plain tuple, not an object: one is made per record on the hot path.
Pending = tuple[str, bytes | None, bytes | None, Headers | None, int, int, float]
# field indexes of a Pending tuple (Final: mypy types each field by its index)
P_TOPIC: Final = 0
P_VALUE: Final = 1
P_KEY: Final = 2
P_HEADERS: Final = 3
P_RECV: Final = 4
P_EVENT: Final = 5
P_ACCEPTED: Final = 6

AckListener = Callable[[str, int, int], None]  # topic, recv_ns, event_ts_ns (0: none)
FailListener = Callable[[str, KafkaError], None]


class KafkaSink:
    """Typed wrapper: pending table, resend on a rebuilt producer, error latch."""

    def __init__(
        self,
        conf: Mapping[str, Any],
        on_rebuild: Callable[[str], Awaitable[None]] | None = None,
        stall_after_s: float = 20.0,
        on_acked: AckListener | None = None,
        on_failed: FailListener | None = None,
    ) -> None:
        self._conf = dict(conf)
        self._generation = 0
        self._producer = self._new_producer()
        self._pending: dict[int, Pending] = {}
        self._seq = 0
        self._first_error: DeliveryError | None = None
        self._rebuild_reason: str | None = None
        self._on_rebuild = on_rebuild
        self._on_acked = on_acked
        self._on_failed = on_failed
        self._stall_after = stall_after_s
        self._last_ack = time.monotonic()
        self._probing = False
        self._last_rebuild = 0.0
        self._rebuild_lock = asyncio.Lock()
        # set while a rebuilt producer takes the pending records again: nothing
        # new may be produced (or taken for a resend) until they are all in
        self._resending = False
        self.delivered = 0
        self.failed = 0
        self.rebuilds = 0
        self.resent = 0

    def _new_producer(self) -> Producer:
        self._generation += 1
        generation = self._generation
        conf = dict(self._conf)
        conf["error_cb"] = lambda err: self._on_error(err, generation)
        return Producer(conf, logger=log)

    # -- producing -------------------------------------------------------
    @property
    def pending(self) -> int:
        """Records accepted and not yet acknowledged by Kafka."""
        return len(self._pending)

    def oldest_unacked_age(self) -> float:
        """Seconds the oldest unacknowledged record has waited (0 when none)."""
        return time.monotonic() - self.oldest_accepted()

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
        recv_ns: int = 0,
        event_ns: int = 0,
    ) -> None:
        """Enqueue one record without blocking; QueueFull when there is no room.

        ``recv_ns`` (socket receive) and ``event_ns`` (vendor time) are handed
        back to ``on_acked`` with the acknowledgement, for the latency metrics;
        ``event_ns`` is also the record's Kafka timestamp (0: the producer's time).
        """
        if self._first_error is not None:
            raise self._first_error
        if self._rebuild_reason is not None or self._resending:
            raise QueueFull("producer is being rebuilt")
        self._seq = seq = self._seq + 1
        record: Pending = (topic, value, key, headers, recv_ns, event_ns, time.monotonic())
        self._enqueue(seq, record)
        self._pending[seq] = record

    def _enqueue(self, seq: int, record: Pending) -> None:
        # 0 lets librdkafka stamp the producer's time (no event time, or a bad one)
        timestamp_ms = record[P_EVENT] // 1_000_000
        if timestamp_ms < 0 or timestamp_ms > time.time() * 1000 + MAX_EVENT_TIME_AHEAD_MS:
            timestamp_ms = 0
        try:
            self._producer.produce(
                record[P_TOPIC], value=record[P_VALUE], key=record[P_KEY],
                headers=record[P_HEADERS],  # type: ignore[arg-type]  # a list at run time
                on_delivery=partial(self._delivered, seq, self._generation),
                timestamp=timestamp_ms,
            )
        except BufferError:
            raise QueueFull("producer queue full") from None
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and (err.fatal() or err.code() in RESEND):
                self.request_rebuild(f"produce failed: {err.str()}")
                raise QueueFull("producer needs a rebuild") from None
            if isinstance(err, KafkaError) and err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                raise RecordTooLargeError(
                    f"record of {len(record[P_VALUE] or b'')} bytes is over the producer's "
                    "message.max.bytes") from None
            raise FatalError(f"produce to {record[P_TOPIC]!s} failed: {exc}") from exc

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
        recv_ns: int = 0,
        event_ns: int = 0,
    ) -> None:
        """Produce, awaiting room in the queue (backpressure) rather than dropping."""
        while True:
            try:
                self.produce(topic, value, key, headers, recv_ns, event_ns)
                return
            except QueueFull:
                await self._make_room()

    async def _make_room(self) -> None:
        if self._rebuild_reason is not None:
            await self.rebuild()
            return
        self._producer.poll(0)
        await asyncio.sleep(0.005)

    def _delivered(self, seq: int, generation: int, err: KafkaError | None,
                   _msg: Message) -> None:
        """librdkafka's delivery report for one record (served by ``poll``)."""
        if generation != self._generation:
            return  # a report from a producer we replaced: the record was resent
        if err is None:
            record = self._pending.pop(seq, None)
            if record is None:
                return
            self.delivered += 1
            self._last_ack = time.monotonic()
            if self._on_acked is not None:
                self._on_acked(record[P_TOPIC], record[P_RECV], record[P_EVENT])
            return
        record = self._pending.get(seq)
        if record is None:
            return
        if err.fatal() or err.code() in RESEND:
            self.request_rebuild(f"{err.name()}: {err.str()}")
            return  # stays pending; resent after the rebuild
        del self._pending[seq]
        self.failed += 1
        if self._first_error is None:
            self._first_error = DeliveryError(record[P_TOPIC], err)
            log.error("delivery failed", extra={"topic": record[P_TOPIC], "error": err.str()})
        if self._on_failed is not None:
            self._on_failed(record[P_TOPIC], err)

    def _latch_refusal(self, err: KafkaError) -> None:
        """Keep a refused login or certificate as the first error. It is heard
        only in the error callback: the records would wait out message.timeout.ms
        and be resent on a new producer, forever. Start-up's own clients meet a
        refusal first, unless the topics were made beforehand and no dedupe
        state is read back (a market-data worker)."""
        if is_refusal(err) and self._first_error is None:
            self._first_error = RefusedError(err)

    def _on_error(self, err: KafkaError, generation: int) -> None:
        if generation != self._generation:
            return
        self._latch_refusal(err)
        if err.fatal():
            self.request_rebuild(f"fatal producer error {err.name()}: {err.str()}")
        else:
            log.warning("kafka client error", extra={"error": err.str(), "code": err.name()})

    def request_rebuild(self, reason: str) -> None:
        if self._rebuild_reason is None:
            log.error("producer must be rebuilt", extra={"reason": reason})
            self._rebuild_reason = reason

    @property
    def needs_rebuild(self) -> bool:
        return self._rebuild_reason is not None

    async def rebuild(self) -> None:
        """Replace the producer and produce every pending record again, in order.

        One rebuild at a time: the delivery-report task and a sender waiting
        for room can both ask; the second finds the work done.
        """
        generation = self._generation
        async with self._rebuild_lock:
            if self._generation != generation:
                return  # rebuilt while we waited for the lock
            await self._rebuild()

    async def _rebuild(self) -> None:
        reason = self._rebuild_reason or "requested"
        wait = self._last_rebuild + REBUILD_MIN_INTERVAL_S - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_rebuild = time.monotonic()
        old = self._producer
        await self._quiesce(old)
        self._producer = self._new_producer()  # bumps the generation: old reports ignored
        self._rebuild_reason = None
        self.rebuilds += 1
        # purge, then close the old handle off the loop (it may block on a dead broker)
        with contextlib.suppress(KafkaException):
            old.purge(in_queue=True, in_flight=True, blocking=False)
        asyncio.get_running_loop().run_in_executor(None, old.flush, 0)
        # Until every pending record is on the new producer, new records wait
        # (QueueFull): they must neither overtake the resend nor, produced
        # while on_rebuild runs, be taken for a resend and written twice.
        self._resending = True
        try:
            if self._on_rebuild is not None:
                await self._on_rebuild(reason)  # e.g. re-create topics a broker lost
            if not await self._resend_pending(lambda: self._rebuild_reason is not None):
                return  # the new producer failed too: rebuilt again next
        finally:
            self._resending = False
        log.warning("producer rebuilt", extra={"reason": reason, "resent": len(self._pending)})

    async def _quiesce(self, old: Producer) -> None:
        """Settle the old producer before its records are resent.

        Records still queued are purged (never sent, so resending them is
        safe). Requests already in flight may be stored by the broker: their
        outcome is awaited (bounded), with this generation still current, so
        an acknowledged record is taken off the pending table instead of being
        written a second time. Only what is still unanswered after the bound
        (a broker that is gone) is resent and may, rarely, duplicate.
        """
        with contextlib.suppress(KafkaException):
            old.purge(in_queue=True, in_flight=False, blocking=False)
        deadline = time.monotonic() + QUIESCE_S
        while True:
            old.poll(0)
            if len(old) == 0 or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.01)

    def mark(self, topic: str, partition: int, key: bytes, value: bytes) -> bool:
        """A small bookkeeping record to one partition (a shard's last-covered
        time), outside the pending table: one that is lost is replaced by the
        next. False when it could not be queued now."""
        if self._rebuild_reason is not None or self._resending:
            return False
        try:
            self._producer.produce(topic, value=value, key=key, partition=partition)
        except (BufferError, KafkaException):
            return False
        return True

    async def _resend_pending(self, give_up: Callable[[], bool]) -> bool:
        """Enqueue every pending record again, in sequence order, waiting for
        room; False as soon as ``give_up()`` is true while waiting (the producer
        being resent to has failed too)."""
        for seq, record in list(self._pending.items()):
            while True:
                try:
                    self._enqueue(seq, record)
                    self.resent += 1
                    break
                except QueueFull:
                    if give_up():
                        return False
                    self.poll(0)
                    await asyncio.sleep(0.005)
        return True

    # -- delivery reports ---------------------------------------------------
    def poll(self, timeout: float = 0.0) -> int:
        return int(self._producer.poll(timeout))

    async def serve_delivery_reports(self, interval: float = 0.002) -> None:
        """Run forever: serve delivery callbacks on the event loop's thread."""
        while True:
            self._producer.poll(0)
            if self._rebuild_reason is not None:
                await self.rebuild()
            elif self._stalled() and not self._probing:
                asyncio.get_running_loop().create_task(self._probe_stall())
            await asyncio.sleep(interval)

    def _stalled(self) -> bool:
        if not self._pending or self._stall_after <= 0:
            return False
        quiet = time.monotonic() - max(self._last_ack, self.oldest_accepted())
        return quiet > self._stall_after

    def oldest_accepted(self) -> float:
        for record in self._pending.values():
            return record[P_ACCEPTED]
        return time.monotonic()

    async def _probe_stall(self) -> None:
        """Nothing acknowledged for a while: is the broker there at all?

        A broker that does not answer (down, frozen, partitioned) is waited
        for: librdkafka keeps the records and delivers them when it is back,
        without duplicates. A broker that answers metadata while our records
        sit unacknowledged means this producer is stuck (tansu after a
        restart forgets producer ids): rebuild and resend.
        """
        self._probing = True
        try:
            producer = self._producer
            await asyncio.to_thread(producer.list_topics, None, 5.0)
        except KafkaException:
            self._last_ack = time.monotonic()  # unreachable: look again later
            return
        finally:
            self._probing = False
        if self._stalled():
            self.request_rebuild(f"no acknowledgement for {self._stall_after:.0f}s "
                                 "while the broker answers")

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
        """Wait until every pending record is acknowledged or the deadline passes.

        Returns how many are still unacknowledged (lost if the process exits).
        Raises the latched :class:`DeliveryError` when Kafka refused a record
        for good, before or during the flush, once the others had their
        chance: a refusal seen only while draining at shutdown must not end
        in a clean exit.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # nothing pending can be delivered once Kafka refused the producer
        while (self._pending and loop.time() < deadline
               and not isinstance(self._first_error, RefusedError)):
            self._producer.poll(0)
            if self._rebuild_reason is not None:
                await self.rebuild()
            await asyncio.sleep(0.01)
        self._producer.poll(0)
        self.raise_if_failed()
        return len(self._pending)
