"""Exactly-once delivery for one shard: a transactional producer.

``connector.delivery: exactly_once`` gives each shard a producer with a
stable ``transactional.id`` (``<prefix>-shard-<n>``). Its
``init_transactions`` at shard start fences every earlier producer with that
id: a replica that was paused or cut off (a zombie) and comes back can no
longer commit, so nothing it writes after that is visible to a
``read_committed`` consumer (Kafka Connect's exactly-once source design,
KIP-618).

Records go into a transaction committed every ``transaction_ms`` or
``transaction_max_records``; they count as acknowledged (metrics, pending
table) only when their transaction commits. While a commit runs, ``produce``
answers :class:`QueueFull` and the caller waits, as it does for a full queue.
An abortable error (a record timed out, the broker lost the partition
leader) aborts the transaction and produces its pending records again, in
order, in a new one. A fenced or otherwise fatal producer is never rebuilt
(a new ``init_transactions`` would fence the shard's new owner): the error
is latched, the shard stops, and its new owner's backfill and dedupe cover
the account streams (market data not written is a handover window).

``read_uncommitted`` consumers see records as they are written, aborted
ones included: after an abort, the same records again (in the new
transaction), and a zombie's writes until it is fenced. Use
``isolation.level=read_committed`` (librdkafka's default, not the Java
client's) for exactly-once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from connector.errors import FatalError, TransientError
from connector.sink.errors import kafka_call
from connector.sink.producer import (
    P_EVENT,
    P_RECV,
    P_TOPIC,
    RESEND,
    AckListener,
    DeliveryError,
    FailListener,
    Headers,
    KafkaSink,
    QueueFull,
)

log = logging.getLogger(__name__)

TXN_TIMEOUT_MS = 60_000  # the broker aborts an owner's open transaction after this
CALL_TIMEOUT_S = 30.0
COMMIT_RETRIES = 5


class TransactionFailed(DeliveryError):
    """The shard's producer cannot go on: fenced by a newer owner, or fatal."""

    def __init__(self, reason: str, code: int = KafkaError._FATAL) -> None:
        FatalError.__init__(self, reason)
        self.topic = "*"
        self.code = code

    @property
    def fenced(self) -> bool:
        return self.code in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                             KafkaError.INVALID_PRODUCER_EPOCH)


def _error_of(exc: KafkaException) -> KafkaError | None:
    err = exc.args[0] if exc.args else None
    return err if isinstance(err, KafkaError) else None


class TransactionalSink(KafkaSink):
    def __init__(self, conf: Mapping[str, Any], transactional_id: str,
                 commit_interval_s: float, max_records: int,
                 on_rebuild: Callable[[str], Awaitable[None]] | None = None,
                 on_acked: AckListener | None = None,
                 on_failed: FailListener | None = None) -> None:
        # librdkafka wants a record's timeout within its transaction's
        conf = {**conf, "transactional.id": transactional_id,
                "transaction.timeout.ms": TXN_TIMEOUT_MS,
                "message.timeout.ms": min(int(conf.get("message.timeout.ms", TXN_TIMEOUT_MS)),
                                          TXN_TIMEOUT_MS)}
        # no stall probe: its remedy (a rebuild) is not open to a transactional producer
        super().__init__(conf, on_rebuild=on_rebuild, stall_after_s=0.0,
                         on_acked=on_acked, on_failed=on_failed)
        self.transactional_id = transactional_id
        self._commit_every = commit_interval_s
        self._max_records = max_records
        self._committing = False
        self._txn_open = False
        self._in_txn = 0
        self._last_commit = time.monotonic()
        self._abort_reason: str | None = None
        self.commits = 0
        self.aborts = 0

    async def start(self, timeout_s: float = CALL_TIMEOUT_S) -> None:
        """init_transactions (fences the previous owner; aborts its open
        transaction), then open the first transaction."""
        try:
            await asyncio.to_thread(self._producer.init_transactions, timeout_s)
            self._producer.begin_transaction()
        except KafkaException as exc:
            err = _error_of(exc)
            if err is not None and err.retriable():
                raise TransientError(f"init_transactions: {err.str()}") from exc
            raise FatalError(f"init_transactions ({self.transactional_id}): {exc}") from exc
        self._txn_open = True
        self._last_commit = time.monotonic()
        log.info("transactional producer ready", extra={"transactional_id": self.transactional_id})

    # -- producing ---------------------------------------------------------------
    def produce(self, topic: str, value: bytes | None, key: bytes | None = None,
                headers: Headers | None = None, recv_ns: int = 0, event_ns: int = 0) -> None:
        if self._first_error is not None:
            raise self._first_error
        if self._committing or not self._txn_open or self._in_txn >= self._max_records:
            raise QueueFull("transaction committing")
        super().produce(topic, value, key, headers, recv_ns, event_ns)
        self._in_txn += 1

    def mark(self, topic: str, partition: int, key: bytes, value: bytes) -> bool:
        if self._committing or not self._txn_open or self._first_error is not None:
            return False
        if super().mark(topic, partition, key, value):
            self._in_txn += 1
            return True
        return False

    def _delivered(self, seq: int, generation: int, err: KafkaError | None,
                   msg: Message) -> None:
        if generation != self._generation:
            return  # a record of an aborted transaction: produced again since
        if err is None:
            self._last_ack = time.monotonic()  # acknowledged when its transaction commits
            return
        if err.fatal():
            self._latch(TransactionFailed(f"{err.name()}: {err.str()}", err.code()))
        elif err.code() in RESEND or err.retriable() or err.txn_requires_abort():
            if self._abort_reason is None:
                self._abort_reason = f"{err.name()}: {err.str()}"
        else:
            super()._delivered(seq, generation, err, msg)  # refused for good: latched

    def _on_error(self, err: KafkaError, generation: int) -> None:
        # every generation: an abort bumps it without a new producer
        self._latch_refusal(err)
        if err.fatal():
            self._latch(TransactionFailed(f"fatal producer error {err.name()}: {err.str()}",
                                          err.code()))
        else:
            log.warning("kafka client error", extra={"error": err.str(), "code": err.name()})

    def request_abort(self, reason: str) -> None:
        """Abort the open transaction at the next commit point and produce its
        records again (what an abortable delivery error does)."""
        if self._abort_reason is None:
            self._abort_reason = reason

    def request_rebuild(self, reason: str) -> None:
        self._latch(TransactionFailed(f"transactional producer failed: {reason}"))

    def _latch(self, error: TransactionFailed) -> None:
        if self._first_error is None:
            log.error("transactional producer stopped", extra={
                "transactional_id": self.transactional_id, "error": str(error),
                "fenced": error.fenced})
            self._first_error = error

    def poll(self, timeout: float = 0.0) -> int:
        """poll, which raises once the producer is fenced: latched instead."""
        try:
            return int(self._producer.poll(timeout))
        except KafkaException as exc:
            err = _error_of(exc)
            self._latch(TransactionFailed(str(exc), err.code() if err else KafkaError._FATAL))
            return 0

    async def _make_room(self) -> None:
        self.poll(0)
        self.raise_if_failed()
        await asyncio.sleep(0.005)

    # -- transactions ------------------------------------------------------------
    async def serve_delivery_reports(self, interval: float = 0.002) -> None:
        while self._first_error is None:
            self.poll(0)
            due = self._in_txn and (
                self._in_txn >= self._max_records
                or time.monotonic() - self._last_commit >= self._commit_every)
            if due or self._abort_reason is not None:
                await self.end_transaction()
            await asyncio.sleep(interval)

    async def end_transaction(self) -> None:
        """Commit the open transaction (or abort it and produce its records
        again in a new one) and open the next."""
        if self._first_error is not None or not self._txn_open or self._committing:
            return
        self._committing = True
        try:
            await self._settle()
            if self._abort_reason is None:
                last = self._seq
                if await self._commit():
                    self._acknowledge(last)
                    self._begin()
                    return
            if self._first_error is None and self._abort_reason is not None:
                await self._abort_and_resend()
        finally:
            self._committing = False

    async def _settle(self) -> None:
        """Deliver what is queued from this thread, so delivery reports run on
        the event loop's thread and not in the commit call's."""
        end = time.monotonic() + CALL_TIMEOUT_S
        while (len(self._producer) and self._abort_reason is None
               and self._first_error is None and time.monotonic() < end):
            self.poll(0)
            await asyncio.sleep(0.001)

    async def _commit(self) -> bool:
        for _ in range(COMMIT_RETRIES):
            try:
                await asyncio.to_thread(self._producer.commit_transaction, CALL_TIMEOUT_S)
                self.commits += 1
                return True
            except KafkaException as exc:
                err = _error_of(exc)
                if err is not None and err.txn_requires_abort():
                    self._abort_reason = err.str()
                    return False
                if err is not None and err.retriable():
                    await asyncio.sleep(0.1)
                    continue
                code = err.code() if err is not None else KafkaError._FATAL
                self._latch(TransactionFailed(f"commit failed: {exc}", code))
                return False
        self._latch(TransactionFailed(f"commit did not succeed in {COMMIT_RETRIES} tries"))
        return False

    def _acknowledge(self, last: int) -> None:
        acked = [seq for seq in self._pending if seq <= last]
        for seq in acked:
            record = self._pending.pop(seq)
            self.delivered += 1
            if self._on_acked is not None:
                self._on_acked(record[P_TOPIC], record[P_RECV], record[P_EVENT])

    def _begin(self) -> None:
        try:
            self._producer.begin_transaction()
        except KafkaException as exc:
            self._latch(TransactionFailed(f"begin_transaction: {exc}"))
            return
        self._in_txn = 0
        self._last_commit = time.monotonic()

    async def _abort_and_resend(self) -> None:
        reason = self._abort_reason
        try:
            await asyncio.to_thread(self._producer.abort_transaction, CALL_TIMEOUT_S)
        except KafkaException as exc:
            err = _error_of(exc)
            self._latch(TransactionFailed(f"abort failed: {exc}",
                                          err.code() if err else KafkaError._FATAL))
            return
        self.aborts += 1
        self._generation += 1  # reports of the aborted records are ignored
        self._abort_reason = None
        self._begin()
        if self._first_error is not None:
            return
        if not await self._resend_pending(lambda: self._first_error is not None):
            return
        self._in_txn = len(self._pending)
        log.warning("transaction aborted; its records are produced again",
                    extra={"reason": reason, "resent": len(self._pending)})

    # -- shutdown ----------------------------------------------------------------
    async def flush(self, timeout: float) -> int:
        """Commit what is open (again after an abort) until nothing is pending
        or the deadline passes; raises when the producer failed for good."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._first_error is None and loop.time() < deadline:
            while self._committing and loop.time() < deadline:
                await asyncio.sleep(0.005)
            if not self._pending and not self._in_txn:
                break
            await self.end_transaction()
        self.raise_if_failed()
        return len(self._pending)


async def open_sink(conf: Mapping[str, Any], transactional_id: str | None,
                    commit_interval_s: float, max_records: int,
                    on_rebuild: Callable[[str], Awaitable[None]] | None = None,
                    on_acked: AckListener | None = None,
                    on_failed: FailListener | None = None) -> KafkaSink:
    """The idempotent sink, or with a ``transactional_id`` a transactional one
    whose transactions are initialised (the previous owner fenced)."""
    if transactional_id is None:
        return kafka_call("create the producer", lambda: KafkaSink(
            conf, on_rebuild=on_rebuild, on_acked=on_acked, on_failed=on_failed))
    sink = kafka_call("create the producer", lambda: TransactionalSink(
        conf, transactional_id, commit_interval_s, max_records,
        on_rebuild=on_rebuild, on_acked=on_acked, on_failed=on_failed))
    await sink.start()
    return sink
