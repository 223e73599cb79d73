"""Wires the stages together and owns the tasks and the shutdown.

sources (sockets, SSE) -> bounded hand-off -> bridge (decode ... encode)
-> idempotent producer. A fatal error anywhere (bad credentials, a delivery
that failed for good) stops everything and surfaces as the exit status;
``stop()`` (SIGTERM/SIGINT) stops intake, drains what was accepted, flushes
with a deadline and returns normally, unless Kafka refused a record for good
during the drain: that is raised too.

Start-up waits for its dependencies (schema registry, Kafka, Sequence) with
one log line per retry and ``/readyz`` naming what it waits for, forever or
until ``connector.startup_timeout_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from connector.bridge import Bridge
from connector.config import Settings
from connector.control.backfill import Backfiller
from connector.control.resnapshot import Resnapshotter
from connector.dedupe.rebuild import rebuild_dedupe
from connector.dedupe.window import dedupe_capacity
from connector.errors import (
    ConnectorError,
    FatalError,
    RecordTooLargeError,
    StartupTimeoutError,
)
from connector.gc_tuning import tune_gc
from connector.handoff import BoundedHandoff, ControlRequest, RestKind, RestRecord
from connector.normalize.records import ControlKind
from connector.observe.http import OpsServer
from connector.observe.logs import without_userinfo
from connector.observe.metrics import FreshnessCollector, Metrics
from connector.protocol.channels import families_of
from connector.protocol.families import ACCOUNT_CHANNELS, Family
from connector.protocol.frames import parse_ack_topics
from connector.protocol.keys import dedupe_key
from connector.serde.registry import registry_client
from connector.serde.topics import topic_names, topic_plan
from connector.serde.wire import WireEncoder
from connector.sink.admin import ensure_topics
from connector.sink.errors import kafka_call
from connector.sink.producer import (
    DeliveryError,
    KafkaSink,
    QueueFull,
    RefusedError,
    kafka_conf,
)
from connector.sink.transactional import open_sink
from connector.source.rest import SequenceRest
from connector.source.sse import SseReader
from connector.source.websocket import WebSocketReader, ws_url
from connector.startup import StartupWaiter, StoppedDuringStart

log = logging.getLogger(__name__)

LIFECYCLE_PATHS = {"new_markets": "/v1/ws/new_markets",
                   "market_resolved": "/v1/ws/market_resolved"}


class Connector:
    def __init__(self, settings: Settings, metrics: Metrics | None = None,
                 *, tune_gc: bool = False, transactional_id: str | None = None) -> None:
        self.settings = settings
        # exactly-once delivery of one shard (connector/replicas.py): its producer's id
        self.transactional_id = transactional_id
        self._tune_gc = tune_gc
        self.metrics = metrics or Metrics()
        self.topics = topic_names(settings)
        self.encoder = WireEncoder()
        c = settings.connector
        self.handoff = BoundedHandoff(c.queue_max_records, c.queue_max_bytes)
        self.bridge = Bridge(
            topics=self.topics, encoder=self.encoder, metrics=self.metrics,
            instance=c.instance_id, max_frame_bytes=settings.sequence.max_frame_bytes,
            carry_unknown=c.carry_unknown_fields,
            dedupe_capacity=dedupe_capacity(settings))
        self.sink: KafkaSink | None = None
        self.readers: list[WebSocketReader | SseReader] = []
        self.ops: OpsServer | None = None
        self.rest: SequenceRest | None = None
        self.resnap: Resnapshotter | None = None
        self.backfiller: Backfiller | None = None
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self.started = asyncio.Event()
        self._started_ns = time.time_ns()
        # the dependency start-up waits for, and its last error (for /readyz)
        self.startup = StartupWaiter(settings.connector.startup_timeout_s, self._stop)
        self._per_topic: dict[str, tuple[Any, Any, Any]] = {}
        self.metrics.registry.register(FreshnessCollector(self.freshness))

    # -- lifecycle -------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        try:
            try:
                await self._prepare()
            except StoppedDuringStart:
                log.info("stopped while waiting for a dependency at start")
                return
            await self._run_tasks()
        finally:
            if self.rest is not None:
                await self.rest.close()
            if self.ops is not None:
                await self.ops.stop()

    async def _run_tasks(self) -> None:
        # for mypy: _prepare() built them
        assert self.sink is not None and self.resnap is not None and self.backfiller is not None  # noqa: S101
        if self._tune_gc:
            tune_gc()
        tasks = [asyncio.create_task(r.run(), name=f"source:{r.name}") for r in self.readers]
        tasks.append(asyncio.create_task(self.resnap.run(), name="resnapshot"))
        tasks.append(asyncio.create_task(self.backfiller.run(), name="backfill"))
        worker = asyncio.create_task(self._work(), name="bridge")
        reports = asyncio.create_task(self.sink.serve_delivery_reports(), name="reports")
        stopper = asyncio.create_task(self._stop.wait(), name="stop")
        watch = asyncio.create_task(self._watch_sequence_start(), name="startup-deadline")
        self.started.set()
        done, _ = await asyncio.wait([*tasks, worker, stopper, watch],
                                     return_when=asyncio.FIRST_COMPLETED)
        error = next((t.exception() for t in done
                      if not t.cancelled() and t.exception() is not None), None)
        try:
            refused = await self._shutdown(tasks, worker, failed=error is not None)
        finally:
            reports.cancel()
            stopper.cancel()
            watch.cancel()
        if error is not None:
            raise error
        if refused is not None:
            raise refused

    async def _watch_sequence_start(self) -> None:
        """With a start-up deadline, Sequence must be connected within it too
        (its readers retry forever on their own, logging each attempt)."""
        limit = self.settings.connector.startup_timeout_s
        if limit > 0:
            while not self._sequence_connected():
                waited = time.monotonic() - self.startup.started_at
                if waited >= limit:
                    waiting = sorted(name for name, up in self._connections().items() if not up)
                    raise StartupTimeoutError(
                        "sequence", waited, f"{self.settings.sequence.base_url}: "
                        f"{', '.join(waiting)} not connected (see the 'reconnecting' lines)")
                await asyncio.sleep(min(0.2, limit - waited))
        await self._stop.wait()  # done: only stop ends this task

    async def _prepare(self) -> None:
        s = self.settings
        if s.sequence.api_key is None:
            raise FatalError("no Sequence API key: set SEQUENCE_API_KEY or SEQUENCE_API_KEY_FILE")
        if s.observe.metrics_port:
            # up first, so liveness answers during start-up (readiness says not yet)
            self.ops = OpsServer(s.observe.metrics_host, s.observe.metrics_port,
                                 self.metrics.registry, self.readiness)
            await self.ops.start()
        # one attempt per call: the client's own silent retries (3, up to 7 s)
        # would only delay the next log line; until_up retries and says so
        client = registry_client(s, {"max.retries": 0})
        ids = await self.startup.until_up("schema-registry", "register schemas",
                                   lambda: self.encoder.register_all(client, self.topics),
                                   without_userinfo(s.schema_registry.url))
        log.info("schemas registered", extra={"ids": {str(k): v for k, v in ids.items()}})
        conf = kafka_conf(s)
        if s.kafka.create_topics:
            created = await self.startup.until_up(
                "kafka", "create topics",
                lambda: kafka_call("create topics", lambda: self._ensure_topics(conf)),
                s.kafka.bootstrap_servers)
            log.info("topics ready", extra={"topics": created})
        c = s.connector
        # only what this process can write: a market-data worker reads no fills
        in_scope = families_of(s.sequence.stream_topics, s.sequence.lifecycle, s.sequence.sse)
        stores = {f: store for f, store in self.bridge.dedupe.items() if f in in_scope}
        # a retry after a partial read only adds keys already known: harmless
        await self.startup.until_up("kafka", "rebuild dedupe state", lambda: kafka_call(
            "rebuild dedupe state", lambda: rebuild_dedupe(
                stores, self.topics, conf, c.dedupe_rebuild_per_partition,
                c.dedupe_rebuild_max_age_s)), s.kafka.bootstrap_servers)
        self.sink = await open_sink(
            conf, self.transactional_id, c.transaction_ms / 1000, c.transaction_max_records,
            on_rebuild=self._producer_rebuilt, on_acked=self._acked,
            on_failed=self._delivery_failed)
        self.startup.done()
        self._build_recovery()
        self.readers = self._build_readers()

    def _build_recovery(self) -> None:
        """REST re-snapshots after gaps and reconnects; backfill of trading data."""
        s = self.settings.sequence
        assert s.api_key is not None  # noqa: S101 - for mypy: _prepare() refuses no key
        self.rest = SequenceRest(s.base_url, s.api_key.reveal())
        dedupe = self.bridge.dedupe

        def known(family: str, data: dict[str, Any]) -> bool:
            store = dedupe.get(Family(family))
            if store is None:
                return False
            identity = dedupe_key(Family(family), data)
            return identity is not None and identity in store

        self.backfiller = Backfiller(self.rest, self.handoff, self.metrics, known=known,
                                     page_size=s.backfill_page_size,
                                     max_pages=s.backfill_max_pages)
        self.resnap = Resnapshotter(self.rest, self.handoff, self.metrics,
                                    min_interval_s=s.resnapshot_min_interval_s,
                                    backfill=self.backfiller.request)
        resnap = self.resnap
        self.bridge.gap_listener = lambda channel, dropped, epoch: resnap.request(
            channel, epoch, f"gap: {dropped if dropped is not None else 'unknown'} dropped")

    def _build_readers(self) -> list[WebSocketReader | SseReader]:
        s = self.settings.sequence
        assert s.api_key is not None  # noqa: S101 - for mypy: _prepare() refuses no key
        key = s.api_key.reveal()
        readers: list[WebSocketReader | SseReader] = []
        if s.stream_topics:
            readers.append(WebSocketReader(
                name="stream", url=ws_url(s.base_url, "/v1/stream"), api_key=key,
                handoff=self.handoff, subscribe=s.stream_topics, parse_ack=parse_ack_topics,
                on_session=self._stream_session, max_frame_bytes=s.max_frame_bytes,
                open_timeout=s.open_timeout_s, ping_interval=s.ping_interval_s,
                backoff_initial=s.backoff_initial_s, backoff_cap=s.backoff_cap_s,
                stale_after_s=s.stale_after_s,
                on_reconnect=lambda: self.metrics.reconnects.labels("stream").inc()))
        for name in s.lifecycle:
            readers.append(WebSocketReader(
                name=name, url=ws_url(s.base_url, LIFECYCLE_PATHS[name]), api_key=key,
                handoff=self.handoff, subscribe=None, parse_ack=None,
                on_session=self._lifecycle_session(name), max_frame_bytes=s.max_frame_bytes,
                open_timeout=s.open_timeout_s, ping_interval=s.ping_interval_s,
                backoff_initial=s.backoff_initial_s, backoff_cap=s.backoff_cap_s,
                on_reconnect=self.metrics.reconnects.labels(name).inc))
        for name in s.sse:
            readers.append(SseReader(
                name=name, base_url=s.base_url, api_key=key, handoff=self.handoff,
                max_frame_bytes=s.max_frame_bytes, on_session=self._sse_session(name),
                backoff_initial=s.backoff_initial_s, backoff_cap=s.backoff_cap_s))
        return readers

    # -- session events ---------------------------------------------------------
    async def _control(self, kind: ControlKind, topic: str, epoch: int, **kw: Any) -> None:
        await self.handoff.put(ControlRequest(kind=kind, topic=topic, fields=kw,
                                              recv_ns=time.time_ns(), epoch=epoch))

    async def _stream_session(
        self, epoch: int, subscribed: Sequence[str], rejected: Sequence[tuple[str, str]]
    ) -> None:
        self.metrics.connected.labels("stream").set(1)
        log.info("subscribed", extra={"epoch": epoch, "subscribed": list(subscribed),
                                      "rejected": [t for t, _ in rejected]})
        for topic, reason in rejected:
            self.metrics.rejected_topics.labels(topic).inc()
            log.error("topic rejected by Sequence", extra={"topic": topic, "reason": reason})
            await self._control(ControlKind.subscribe_rejected, topic, epoch, reason=reason)
        # for mypy: built in _prepare(), before any reader starts
        assert self.resnap is not None and self.backfiller is not None  # noqa: S101
        if epoch > 1:
            for topic in subscribed:
                await self._control(ControlKind.reconnect, topic, epoch,
                                    reason="stream reconnected and resubscribed")
                # what was missed while disconnected: market data is re-snapshotted,
                # orders/fills/tca are backfilled (the resnapshotter forwards them)
                self.resnap.request(topic, epoch, "reconnect")
        elif self.settings.sequence.backfill_on_start:
            # after a restart (even kill -9) whatever happened while we were down
            # is paged back from REST; dedupe rebuilt from Kafka keeps it once
            for topic in subscribed:
                if topic in ACCOUNT_CHANNELS:
                    self.backfiller.request(topic, epoch, "start")

    def _lifecycle_session(self, name: str) -> Any:
        async def session(epoch: int, *_: object) -> None:
            self.metrics.connected.labels(name).set(1)
            if epoch > 1:
                await self._control(ControlKind.reconnect, name, epoch,
                                    reason="lifecycle socket reconnected; replay is deduped")
        return session

    def _sse_session(self, name: str) -> Any:
        async def session(epoch: int) -> None:
            self.metrics.connected.labels(f"sse:{name}").set(1)
            if epoch > 1:
                await self._control(ControlKind.reconnect, f"sse:{name}", epoch,
                                    reason="SSE stream reconnected")
                if name == "tca" and self.backfiller is not None:
                    self.backfiller.request("tca", epoch, "sse reconnect")
        return session

    async def _producer_rebuilt(self, reason: str) -> None:
        """Before resending: a broker that lost its state lost our topics too."""
        self.metrics.producer_rebuilds.inc()
        log.warning("producer rebuilt; resending unacknowledged records",
                    extra={"reason": reason})
        if self.settings.kafka.create_topics:
            try:
                await asyncio.to_thread(self._ensure_topics, kafka_conf(self.settings))
            except ConnectorError as exc:
                log.warning("could not re-create topics", extra={"error": str(exc)})

    def _ensure_topics(self, conf: dict[str, Any]) -> dict[str, str]:
        return ensure_topics(conf, topic_plan(self.settings),
                             self.settings.kafka.replication_factor, timeout_s=10.0)

    # -- the bridge worker -------------------------------------------------------
    async def _work(self) -> None:
        assert self.sink is not None  # noqa: S101 - for mypy: _prepare() built it
        sink = self.sink
        while True:
            self._idle.set()
            batch = await self.handoff.get_batch(1000)
            self._idle.clear()
            self.metrics.queue_depth.set(len(self.handoff))
            backfiller = self.backfiller
            for item in batch:
                if (type(item) is RestRecord and item.kind is RestKind.backfill
                        and backfiller is not None
                        and backfiller.is_stale(item.family, item.data)):
                    continue  # an order state older than one already written
                for out in self.bridge.process(item):
                    if out.source_data is not None and backfiller is not None:
                        # for mypy: only a family's records carry source data
                        assert out.family is not None  # noqa: S101
                        backfiller.observe(out.family.value, out.source_data)
                    try:
                        try:
                            # no coroutine per record: await only when the queue is full
                            sink.produce(out.topic, out.value, out.key, out.headers,
                                         out.recv_ns, out.event_ts_ns or 0)
                        except QueueFull:
                            await sink.send(out.topic, out.value, out.key, out.headers,
                                            out.recv_ns, out.event_ts_ns or 0)
                    except RecordTooLargeError as exc:
                        dead = self.bridge.dead_letter(item, exc)
                        await sink.send(dead.topic, dead.value, dead.key, dead.headers,
                                        dead.recv_ns)
            sink.poll(0)
            self.metrics.producer_queue.set(sink.queue_length())

    def _topic_metrics(self, topic: str) -> tuple[Any, Any, Any]:
        m = self.metrics
        cached = (m.records_produced.labels(topic), m.added_latency.labels(topic),
                  m.event_age.labels(topic))
        self._per_topic[topic] = cached
        return cached

    def _acked(self, topic: str, recv_ns: int, event_ns: int) -> None:
        """One record acknowledged by Kafka (the sink's listener; once per record)."""
        per_topic = self._per_topic.get(topic) or self._topic_metrics(topic)
        produced, latency, age = per_topic
        produced.value += 1
        now = time.time_ns()
        latency.observe((now - recv_ns) / 1e9)
        if event_ns:
            age.observe(max(0, now - event_ns) / 1e9)

    def _delivery_failed(self, topic: str, _err: object) -> None:
        self.metrics.delivery_errors.labels(topic).inc()

    @property
    def produced(self) -> dict[str, int]:
        """Records acknowledged per Kafka topic, since start."""
        return {topic: per_topic[0].value for topic, per_topic in self._per_topic.items()
                if per_topic[0].value}

    # -- shutdown ----------------------------------------------------------------
    async def _shutdown(self, sources: list[asyncio.Task[None]], worker: asyncio.Task[None],
                        failed: bool) -> DeliveryError | None:
        """Stop intake, drain, flush; the delivery error Kafka answered with
        for good, if any (the caller raises it: the exit status says so)."""
        for task in sources:
            task.cancel()
        await asyncio.gather(*sources, return_exceptions=True)
        deadline = self.settings.connector.drain_timeout_s
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        if not failed and not worker.done():
            # let the worker hand everything already accepted to the producer
            while (len(self.handoff) or not self._idle.is_set()) and loop.time() < end:
                if worker.done():
                    break
                await asyncio.sleep(0.01)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        if self.sink is None:
            return None
        refused: DeliveryError | None = None
        try:
            left = await self.sink.flush(max(0.1, end - loop.time()))
        except DeliveryError as exc:
            refused, left = exc, self.sink.pending
        if isinstance(refused, RefusedError):
            # no deadline passed and no record was refused: the exit line says
            # why nothing was delivered, this one what it cost
            log.warning("not delivered: Kafka refused the producer",
                        extra={"unacknowledged": left})
            return refused
        if left:
            log.error("shutdown deadline passed with records unacknowledged",
                      extra={"unacknowledged": left})
        if refused is not None:
            log.error("drained, but Kafka refused records for good",
                      extra={"produced": dict(self.produced), "refused": self.sink.failed,
                             "topic": refused.topic, "error": str(refused)})
        elif not left:
            log.info("drained", extra={"produced": dict(self.produced)})
        return refused

    # -- health --------------------------------------------------------------------
    def freshness(self) -> dict[str, int]:
        return {f.value: ns for f, ns in self.bridge.last_event_ns.items()}

    def _connections(self) -> dict[str, bool]:
        return {r.name: (r.connected.is_set() if isinstance(r, WebSocketReader)
                         else r.epoch > 0) for r in self.readers}

    def _sequence_connected(self) -> bool:
        connected = self._connections()
        return bool(connected) and all(connected.values())

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Connected and subscribed, producer healthy, no family staler than its limit."""
        if self.startup.waiting_for is not None:
            starting: dict[str, object] = {"starting": True,
                                           "waiting_for": self.startup.waiting_for}
            if self.startup.waiting_error is not None:
                starting["error"] = self.startup.waiting_error
            return False, starting
        connected = self._connections()
        sink = self.sink
        unacked_age = sink.oldest_unacked_age() if sink is not None else 0.0
        producer_ok = (sink is not None and sink.first_error is None
                       and not sink.needs_rebuild
                       and unacked_age <= self.settings.observe.max_unacked_age_s)
        now = time.time_ns()
        subscribed = {f.value for f in families_of(self.settings.sequence.stream_topics)}
        stale = {}
        for family, limit in self.settings.observe.stale_limits_s.items():
            if family not in subscribed:
                continue
            last = self.bridge.last_event_ns.get(Family(family), self._started_ns)
            age = (now - last) / 1e9
            if age > limit:
                stale[family] = round(age, 1)
        ready = bool(connected) and all(connected.values()) and producer_ok and not stale
        detail: dict[str, object] = {"connected": connected, "producer_ok": producer_ok,
                                     "oldest_unacked_s": round(unacked_age, 1), "stale": stale}
        if not all(connected.values()):
            detail["waiting_for"] = "sequence"
        return ready, detail
