"""Ceilings: each stage of the connector's path alone, on the same feed.

receive  the aiohttp WebSocket client (the connector's socket library, with
         its settings) reading N frames from the feed server, doing nothing
         else. (The ``websockets`` client, which the peers use, reads the
         same feed at about a fifth of that rate.)
parse    ``orjson.loads`` of each frame's text, in memory.
encode   the connector's own normalise + Avro encode (``normalize_for_wire`` +
         ``WireEncoder.encode``) of pre-parsed payloads, in memory.
produce  confluent-kafka with the connector's producer settings
         (``producer_config``) sending pre-encoded records, with the same
         key and headers the connector adds, to the real broker; first
         produce -> last delivery report.

The in-memory limits repeat their pass until at least ``MIN_SECONDS`` have
gone by, so a small N still gives a stable figure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from confluent_kafka import Producer

from bench.connector_worker import warmup_topic
from bench.feed import iter_payloads, read_frames
from bench.peers import ws_endpoint
from bench.procs import Result, cpu_s
from bench.stats import latency_ms
from connector.bridge import H_CHANNEL, H_INSTANCE, H_RECEIVED, H_SOURCE
from connector.normalize.records import normalize_for_wire
from connector.protocol.channels import family_of_channel
from connector.protocol.families import Family
from connector.serde.topics import TopicNames
from connector.serde.wire import WireEncoder
from connector.sink.producer import producer_config

MIN_SECONDS = 0.5


def _repeat(step: Any, items: list[Any], min_seconds: float = MIN_SECONDS) -> Result:
    done = 0
    cpu0 = cpu_s()
    started = time.perf_counter()
    while True:
        for item in items:
            step(item)
        done += len(items)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return {"events": done, "seconds": elapsed, "events_per_s": done / elapsed,
                    "cpu_s": cpu_s() - cpu0}


def limit_receive(*, base_url: str, topics: list[str], api_key: str, events: int) -> Result:
    async def main() -> Result:
        async with aiohttp.ClientSession() as session, session.ws_connect(
                ws_endpoint(base_url), headers={"Authorization": f"Bearer {api_key}"},
                compress=0, max_msg_size=4 << 20, heartbeat=20.0,
                decode_text=False) as ws:
            await ws.send_str(orjson.dumps({"subscribe": topics}).decode())
            await ws.receive()  # the ack
            cpu0 = cpu_s()
            first_ns = 0
            n = 0
            receive = ws.receive
            while n < events:
                msg = await receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"feed ended after {n} frames: {msg.type}")
                if not first_ns:
                    first_ns = time.time_ns()
                n += 1
            seconds = (time.time_ns() - first_ns) / 1e9
            return {"events": events, "seconds": seconds, "events_per_s": events / seconds,
                    "cpu_s": cpu_s() - cpu0}

    return asyncio.run(main())


def limit_parse(*, frames_path: str, events: int, min_seconds: float = MIN_SECONDS) -> Result:
    texts = read_frames(Path(frames_path), events)  # bytes, as the socket client hands them
    return _repeat(orjson.loads, texts, min_seconds)


def _encoder() -> WireEncoder:
    return WireEncoder(schema_ids=dict.fromkeys(Family, 1))


def limit_encode(*, frames_path: str, events: int, min_seconds: float = MIN_SECONDS) -> Result:
    encoder = _encoder()
    payloads = list(iter_payloads(read_frames(Path(frames_path), events)))

    def step(item: tuple[str, dict[str, Any]]) -> None:
        # as the bridge does: the fused step, else normalise then encode
        channel, data = item
        family = family_of_channel(channel)
        if encoder.encode_payload(family, data) is None:
            norm = normalize_for_wire(family, data, carry_unknown=True, channel=channel)
            encoder.encode(family, norm.value)

    return _repeat(step, payloads, min_seconds)


def encoded_records(frames_path: str, events: int, prefix: str
                    ) -> list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]]:
    """(topic, key, value, headers) as the connector would produce them."""
    encoder = _encoder()
    topics = TopicNames(prefix=prefix)
    out = []
    recv = str(time.time_ns()).encode()
    for channel, data in iter_payloads(read_frames(Path(frames_path), events)):
        family = family_of_channel(channel)
        norm = normalize_for_wire(family, data, carry_unknown=True, channel=channel)
        headers = [(H_CHANNEL, channel.encode()), (H_RECEIVED, recv), (H_SOURCE, b"ws"),
                   (H_INSTANCE, b"bench")]
        out.append((topics.topic(family), norm.key.encode(), encoder.encode(family, norm.value),
                    headers))
    return out


def limit_produce(*, frames_path: str, events: int, bootstrap: str, prefix: str) -> Result:
    logging.basicConfig(level=logging.WARNING)
    records = encoded_records(frames_path, events, prefix)
    state = {"delivered": 0, "failed": 0}

    def on_delivery(err: Any, _msg: Any) -> None:
        state["failed" if err is not None else "delivered"] += 1

    conf = producer_config({"bootstrap.servers": bootstrap, "client.id": "bench-produce-limit"})
    conf["on_delivery"] = on_delivery
    producer = Producer(conf)
    producer.produce(warmup_topic(prefix), b"warm-up")  # see connector_worker
    producer.flush(30)
    state["delivered"] = 0
    cpu0 = cpu_s()
    started = time.perf_counter()
    for i, (topic, key, value, headers) in enumerate(records):
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)  # type: ignore[arg-type]
                break
            except BufferError:
                producer.poll(0.005)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - started
    if state["delivered"] != len(records):
        raise RuntimeError(f"produce limit: {state} of {len(records)} delivered")
    return {"events": len(records), "seconds": elapsed, "events_per_s": len(records) / elapsed,
            "cpu_s": cpu_s() - cpu0}


def warm_producer(bootstrap: str, prefix: str, client_id: str,
                  overrides: dict[str, Any] | None = None) -> Producer:
    """A producer with the connector's settings, its first (slow) delivery
    done on the run's warm-up topic (see connector_worker)."""
    producer = Producer(producer_config({"bootstrap.servers": bootstrap, "client.id": client_id,
                                         **(overrides or {})}))
    producer.produce(warmup_topic(prefix), b"warm-up")
    producer.flush(30)
    return producer


def limit_produce_latency(*, frames_path: str, events: int, bootstrap: str, prefix: str,
                          rate: float, overrides: dict[str, Any] | None = None,
                          tick_s: float = 0.001) -> Result:
    """The latency floor: the same records produced at ``rate`` with the
    connector's producer settings, produce() -> delivery report, nothing
    else. The connector's added latency cannot be lower than this on the
    same broker; the difference is what the connector itself adds.

    ``overrides`` changes producer properties (``bench.floor`` tries several
    linger.ms); ``tick_s`` is the pacing step: every tick the records that
    are due are produced and delivery reports served."""
    logging.basicConfig(level=logging.WARNING)
    records = encoded_records(frames_path, events, prefix)
    latencies: list[int] = []
    failed = [0]

    def delivered(err: Any, _msg: Any, sent_ns: int) -> None:
        if err is not None:
            failed[0] += 1
        else:
            latencies.append(time.perf_counter_ns() - sent_ns)

    producer = warm_producer(bootstrap, prefix, "bench-produce-latency", overrides)
    # paced as the feed server paces the connector: every ~1 ms the records
    # that are due, then sleep (a spin-wait would take a core from the broker)
    started = time.perf_counter()
    sent_count = 0
    while sent_count < len(records):
        due = min(len(records), int((time.perf_counter() - started) * rate) + 1)
        for topic, key, value, headers in records[sent_count:due]:
            producer.produce(topic, value, key, headers=headers,  # type: ignore[arg-type]
                             on_delivery=partial(delivered, sent_ns=time.perf_counter_ns()))
        sent_count = max(sent_count, due)
        producer.poll(0)
        time.sleep(tick_s)
    producer.flush(120)
    elapsed = time.perf_counter() - started
    if failed[0] or len(latencies) != len(records):
        raise RuntimeError(f"produce latency: {len(latencies)} of {len(records)} delivered")
    return {"events": len(records), "seconds": elapsed, "events_per_s": len(records) / elapsed,
            "latency_ms": latency_ms(latencies)}


def _bridge_and_frames(frames_path: str, events: int) -> tuple[Any, list[Any]]:
    """A bridge as the connector builds it, and the feed's frames as it receives them."""
    from connector.bridge import Bridge
    from connector.handoff import StreamFrame
    from connector.observe.metrics import Metrics

    bridge = Bridge(topics=TopicNames(prefix="bench"), encoder=_encoder(), metrics=Metrics(),
                    instance="bench", max_frame_bytes=1 << 20, carry_unknown=True,
                    dedupe_capacity=1_000_000)
    now = time.time_ns()
    items = [StreamFrame(raw=f, recv_ns=now, epoch=1)
             for f in read_frames(Path(frames_path), events)]
    return bridge, items


def limit_bridge(*, frames_path: str, events: int, min_seconds: float = MIN_SECONDS) -> Result:
    """Extra (report only): the connector's whole in-memory path, ``Bridge.process``
    (decode, route, normalise, dedupe, encode, headers, metrics)."""
    from connector.dedupe.store import DedupeStore

    bridge, items = _bridge_and_frames(frames_path, events)
    done, elapsed, cpu = 0, 0.0, 0.0
    while elapsed < min_seconds:
        # fresh dedupe stores per pass, or the second pass would drop fills/tca
        bridge.dedupe = {f: DedupeStore(1_000_000) for f in bridge.dedupe}
        cpu0 = cpu_s()
        started = time.perf_counter()
        for item in items:
            bridge.process(item)
        elapsed += time.perf_counter() - started
        cpu += cpu_s() - cpu0
        done += len(items)
    return {"events": done, "seconds": elapsed, "events_per_s": done / elapsed, "cpu_s": cpu}


def limit_pipeline(*, frames_path: str, events: int, min_seconds: float = MIN_SECONDS
                   ) -> Result:
    """Extra (report only): the event loop's per-record work without the
    socket and the delivery reports: ``Bridge.process`` then
    ``KafkaSink.produce`` (pending table, librdkafka enqueue) into a producer
    that never connects, in batches of 1,000, with the connector's GC
    settings. What is left of one core for socket and acks is 1 - this."""
    import gc

    from connector.dedupe.store import DedupeStore
    from connector.gc_tuning import GC_THRESHOLDS
    from connector.sink.producer import KafkaSink

    bridge, items = _bridge_and_frames(frames_path, events)
    # nothing listens on port 1: records stay queued, no delivery report comes
    conf = producer_config({"bootstrap.servers": "127.0.0.1:1", "client.id": "bench-pipeline",
        "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 2_000_000,
        "log_level": 0})
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    done, elapsed, cpu = 0, 0.0, 0.0
    try:
        while elapsed < min_seconds:
            bridge.dedupe = {f: DedupeStore(1_000_000) for f in bridge.dedupe}
            sink = KafkaSink(conf)
            produce = sink.produce
            cpu0 = cpu_s()
            started = time.perf_counter()
            for at in range(0, len(items), 1000):
                for item in items[at:at + 1000]:
                    for out in bridge.process(item):
                        produce(out.topic, out.value, out.key, out.headers, out.recv_ns,
                                out.event_ts_ns or 0)
            elapsed += time.perf_counter() - started
            cpu += cpu_s() - cpu0
            done += len(items)
            # the sink has no public purge: the connector never drops what it queued
            sink._producer.purge()  # noqa: SLF001 - drop the queued records now
            del sink, produce
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    return {"events": done, "seconds": elapsed, "events_per_s": done / elapsed, "cpu_s": cpu,
            "us_per_event": elapsed / done * 1e6}


def limits_in_memory(*, frames_path: str, events: int, min_seconds: float = MIN_SECONDS
                     ) -> Result:
    """parse, encode and (extra) bridge and pipeline in one child: CPU-bound,
    no I/O to share."""
    return {name: fn(frames_path=frames_path, events=events, min_seconds=min_seconds)
            for name, fn in (("parse", limit_parse), ("encode", limit_encode),
                             ("bridge", limit_bridge), ("pipeline", limit_pipeline))}
