"""The cost of exactly-once: the transactional sink against the idempotent one.

    python -m bench.txn_cost [--records 200000] [--rate 10000] [--broker kafka]

The same records (250-byte values, 64 keys, 6 partitions) through
``KafkaSink`` (``delivery: at_least_once``) and ``TransactionalSink``
(``exactly_once``, commit every ``--commit-ms``), on one broker: first as
fast as the sink takes them (records/s), then paced at ``--rate`` records/s
(acknowledgement latency p50/p99: from produce to the acknowledgement, which
for a transaction is its commit). Sink only: no socket, no bridge.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from connector.sandbox.brokers import start_broker
from connector.sink.admin import ensure_topics
from connector.sink.producer import KafkaSink, producer_config
from connector.sink.transactional import TransactionalSink

VALUE = b"x" * 250


async def _run(bootstrap: str, transactional: bool, records: int, rate: float,
               commit_ms: int) -> tuple[float, float, float]:
    topic = f"cost-{uuid.uuid4().hex[:8]}"
    conf = producer_config({"bootstrap.servers": bootstrap, "client.id": "cost"})
    await asyncio.to_thread(ensure_topics, conf, [(topic, 6, {})])
    latencies: list[float] = []

    def acked(_topic: str, sent_ns: int, _event: int) -> None:
        latencies.append((time.time_ns() - sent_ns) / 1e6)

    sink: KafkaSink
    if transactional:
        sink = TransactionalSink(conf, f"{topic}-shard-0", commit_ms / 1000, 20_000,
                                 on_acked=acked)
        await sink.start()
    else:
        sink = KafkaSink(conf, on_acked=acked)
    reports = asyncio.create_task(sink.serve_delivery_reports())
    start = time.perf_counter()
    for i in range(records):
        await sink.send(topic, VALUE, f"k{i % 64}".encode(), None, time.time_ns())
    await sink.flush(60)
    throughput = records / (time.perf_counter() - start)
    latencies.clear()
    paced = int(rate * 5)
    start = time.perf_counter()
    for i in range(paced):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await sink.send(topic, VALUE, f"k{i % 64}".encode(), None, time.time_ns())
    await sink.flush(60)
    reports.cancel()
    cuts = statistics.quantiles(latencies, n=100)
    return throughput, cuts[49], cuts[98]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--rate", type=float, default=10_000.0)
    p.add_argument("--commit-ms", type=int, default=100)
    p.add_argument("--broker", default="kafka", choices=("kafka", "tansu"))
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-txn-"))
    broker = start_broker(args.broker, work)
    try:
        for name, transactional in (("idempotent", False), ("transactional", True),
                                    ("idempotent", False), ("transactional", True)):
            rps, p50, p99 = asyncio.run(_run(broker.bootstrap, transactional, args.records,
                                             args.rate, args.commit_ms))
            print(f"{name:13s} {rps:9,.0f} records/s; at {args.rate:,.0f}/s ack latency "
                  f"p50 {p50:6.1f} ms, p99 {p99:6.1f} ms", flush=True)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
