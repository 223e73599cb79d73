"""``python -m bench.floor``: the added latency the broker itself allows.

The connector's latency figure runs from socket receive to Kafka's ack, so it
cannot be lower than the broker's own produce -> ack latency at the same rate.
This measures that floor with a bare confluent-kafka producer (the
connector's producer settings, the bench's records with their keys and
headers, no connector) for several ``linger.ms`` and pacing steps, and the
serial round trip (one record in flight at a time: the unloaded broker), all
on one fresh embedded broker (or ``--bootstrap``'s cluster), each measurement
in a fresh interpreter.

Results: a markdown table on stdout and ``bench/results/floor.json``.
Not part of ``make test``; ``--quick`` is its smoke test.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka.admin import AdminClient

from bench.connector_worker import warmup_topic
from bench.feed import FEEDS, generate, write_frames
from bench.limits import encoded_records, limit_produce_latency, warm_producer
from bench.procs import Result, WorkerFailed, run_in_child
from bench.report import cell, latency_quantiles, machine_info
from bench.stats import QUANTILES, latency_ms
from connector.sandbox.brokers import BROKER_KINDS, start_broker
from connector.sink.admin import ensure_topics

RESULTS = Path(__file__).resolve().parent / "results"
PARTITIONS = 6  # as bench.run: the connector's default kafka.partitions


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lingers", default="0,1,2,5",
                   help="linger.ms values to try, comma-separated (default 0,1,2,5; "
                        "the connector ships 5)")
    p.add_argument("--ticks-ms", default="1,0.2",
                   help="pacing steps in ms, comma-separated (default 1,0.2; bench.run's "
                        "floor and feed server use 1)")
    p.add_argument("--rate", type=float, default=10_000.0, help="events/s (default 10000)")
    p.add_argument("--events", type=int, default=None,
                   help="records per paced run (default 40000; quick: 1000)")
    p.add_argument("--serial", type=int, default=None,
                   help="records for the serial round trip (default 2000; quick: 200)")
    p.add_argument("--runs", type=int, default=None, help="runs per setting (default 2; quick 1)")
    p.add_argument("--feed", default="mix", choices=FEEDS)
    p.add_argument("--bootstrap", default=None,
                   help="measure this cluster (host:port, plaintext) instead of a fresh "
                        "embedded broker; its topics get fresh names and are deleted after")
    p.add_argument("--broker", choices=BROKER_KINDS, default="tansu",
                   help="the fresh embedded broker to measure (without --bootstrap)")
    p.add_argument("--quick", action="store_true", help="a smoke test, not a measurement")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file (default bench/results/floor.json; quick: "
                        "bench/results/quick/floor.json)")
    args = p.parse_args(argv)
    args.events = args.events or (1_000 if args.quick else 40_000)
    args.serial = args.serial or (200 if args.quick else 2_000)
    args.runs = args.runs or (1 if args.quick else 2)
    home = RESULTS if args.broker == "tansu" else RESULTS / args.broker
    args.out = args.out or home / ("quick/floor.json" if args.quick else "floor.json")
    try:
        args.linger_list = [int(v) for v in args.lingers.split(",") if v.strip()]
        args.tick_list = [float(v) for v in args.ticks_ms.split(",") if v.strip()]
    except ValueError as exc:
        p.error(f"--lingers / --ticks-ms: {exc}")
    if not args.linger_list or not args.tick_list or min(args.tick_list) <= 0:
        p.error("--lingers and --ticks-ms need at least one value; ticks must be > 0")
    return args


def _drop(admin_conf: dict[str, Any], topics: list[str]) -> None:
    """Delete the topics this run created on ``--bootstrap``'s cluster; best effort."""
    try:
        admin = AdminClient(admin_conf)  # held: a dropped client fails its futures
        for fut in admin.delete_topics(topics, operation_timeout=30).values():
            fut.result(30)
    except Exception as exc:  # noqa: BLE001 - cleanup must not fail the run
        log(f"could not delete {topics}: {exc}")


def log(msg: str) -> None:
    print(f"[floor {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def serial_round_trip(*, frames_path: str, events: int, bootstrap: str, prefix: str,
                      linger_ms: int) -> Result:
    """One record in flight at a time: produce, wait for its delivery report,
    next. What one produce request costs the broker when nothing queues."""
    logging.basicConfig(level=logging.WARNING)
    records = encoded_records(frames_path, events, prefix)
    producer = warm_producer(bootstrap, prefix, "bench-floor-serial", {"linger.ms": linger_ms})
    latencies: list[int] = []
    done: list[int] = []  # the delivery time of the one record in flight

    def delivered(err: Any, _msg: Any) -> None:
        done.append(-1 if err is not None else time.perf_counter_ns())

    for topic, key, value, headers in records:
        done.clear()
        sent = time.perf_counter_ns()
        producer.produce(topic, value, key, headers=headers,  # type: ignore[arg-type]
                         on_delivery=delivered)
        while not done:
            producer.poll(0.0002)
        if done[0] < 0:
            raise RuntimeError("serial round trip: a record was not delivered")
        latencies.append(done[0] - sent)
    return {"events": len(records), "latency_ms": latency_ms(latencies)}


def markdown(result: dict[str, Any]) -> str:
    a = result["settings"]
    lines = [
        (f"Broker floor ({a['broker']}): bare producer, {a['feed']} records, "
         f"{a['events']:,} per run at {a['rate']:,.0f}/s, median (min-max) of {a['runs']}, ms"),
        "",
        "| linger.ms | pacing step ms | p50 | p99 | p999 |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in result["paced"]:
        lines.append(f"| {row['linger_ms']} | {row['tick_ms']:g} | " + " | ".join(
            cell(row, n, 2) for n, _ in QUANTILES) + " |")
    s = result["serial"]
    lines += ["", f"Serial round trip (one record in flight, linger.ms 0, "
                  f"{a['serial']:,} records): " + " / ".join(
                      f"{n} {cell(s, n, 2)}" for n, _ in QUANTILES) + " ms"]
    return "\n".join(lines) + "\n"


@contextmanager
def _broker(args: argparse.Namespace, tmp: Path) -> Iterator[str]:
    """``--bootstrap``'s cluster, or a fresh embedded broker of ``--broker``'s kind."""
    if args.bootstrap:
        yield args.bootstrap
        return
    broker = start_broker(args.broker, tmp)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    paced: list[dict[str, Any]] = []
    serial: list[Result] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp, \
            _broker(args, Path(tmp)) as bootstrap:
        frames = Path(tmp) / f"{args.feed}.frames"
        write_frames(frames, generate(args.feed, max(args.events, args.serial)))
        admin_conf = {"bootstrap.servers": bootstrap, "log_level": 3}
        # fresh names on a cluster of yours, deleted at the end
        prefix = f"bench.floor.{uuid.uuid4().hex[:10]}" if args.bootstrap else "floor"
        topics = sorted({r[0] for r in encoded_records(str(frames), args.events, prefix)})
        topics.append(warmup_topic(prefix))
        ensure_topics(admin_conf, [(t, 1 if t == topics[-1] else PARTITIONS, {})
                                   for t in topics])
        log(f"broker {bootstrap}; topics {topics}")
        common = {"frames_path": str(frames), "bootstrap": bootstrap, "prefix": prefix}
        limit_s = 60 + args.events / max(args.rate, 1.0) * 2

        def measure(label: str, target: Any, **kwargs: Any) -> Result | None:
            try:
                res = run_in_child(target, {**common, **kwargs}, limit_s=limit_s)
            except WorkerFailed as exc:
                failures.append(f"{label}: {str(exc)[:300]}")
                log(f"  {label}: FAILED {exc}")
                return None
            log(f"  {label}: {res['latency_ms']}")
            return res

        try:
            for linger in args.linger_list:
                for tick in args.tick_list:
                    runs = [r for i in range(args.runs) if (r := measure(
                        f"linger {linger} tick {tick:g} ms run {i + 1}", limit_produce_latency,
                        events=args.events, rate=args.rate, overrides={"linger.ms": linger},
                        tick_s=tick / 1000)) is not None]
                    if runs:
                        paced.append({"linger_ms": linger, "tick_ms": tick,
                                      **latency_quantiles(runs)})
            serial = [r for i in range(args.runs) if (r := measure(
                f"serial run {i + 1}", serial_round_trip, events=args.serial,
                linger_ms=0)) is not None]
        finally:
            if args.bootstrap:
                _drop(admin_conf, topics)
    if failures or not serial:
        print("\n".join(["bench.floor: measurements failed:", *failures]), file=sys.stderr)
        return 1
    settings = {"feed": args.feed, "rate": args.rate, "events": args.events,
                "serial": args.serial, "runs": args.runs, "partitions": PARTITIONS,
                "broker": args.bootstrap or args.broker}
    result = {
        "machine": machine_info(settings),
        "settings": settings,
        "paced": paced,
        "serial": latency_quantiles(serial),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    table = markdown(result)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
