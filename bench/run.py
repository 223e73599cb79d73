"""``python -m bench.run``: the connector, its peers and its limits, one feed at a time.

One dev registry for the whole run; per feed, a fresh tansu broker and one
feed server process (frames pre-encoded once), and another fresh broker for
the latency runs; per run and per measured client a fresh child process and
fresh uuid topics. Results: bench/results/latest.json
and latest.md (``--quick`` writes to bench/results/quick/ unless ``--out``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka.admin import AdminClient

from bench import limits, peers
from bench.connector_worker import run_connector, run_connector_workers, warmup_topic
from bench.feed import FEEDS, channels, generate, write_frames
from bench.feed_server import FeedServerProcess
from bench.procs import Result, WorkerFailed, run_in_child
from bench.report import feed_summary, latency_summary, machine_info, markdown, summarise
from connector.sandbox.brokers import BROKER_KINDS, start_broker
from connector.sandbox.registry import RegistryThread
from connector.sink.admin import ensure_topics

API_KEY = "seq_bench_key"
RESULTS = Path(__file__).resolve().parent / "results"
# connector.workers: 2, as shipped and with a throughput-leaning linger
WORKER_VARIANTS: dict[str, dict[str, Any]] = {
    "connector_2_workers": {},
    "connector_2_workers_linger20": {"linger.ms": 20},
}
PARTITIONS = 6  # the connector's default kafka.partitions; peers get the same


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--events", type=int, default=None,
                   help="events per run for the connector, standard peer and limits "
                        "(default 60000; quick: 2000)")
    p.add_argument("--naive-events", type=int, default=None,
                   help="events per run for the naive peer (default min(events, 15000); "
                        "it is ~5k/s, its rate is scaled from its own count)")
    p.add_argument("--latency-events", type=int, default=None,
                   help="events per latency run (default 60000 = 6 s at 10k/s; quick: 2000)")
    p.add_argument("--rate", type=float, default=10_000.0,
                   help="paced rate of the latency runs, events/s (default 10000)")
    p.add_argument("--latency-feed", default="mix", choices=FEEDS)
    p.add_argument("--sweep-rates", default=None,
                   help="more paced rates for the connector alone, events/s, comma-separated "
                        "(default 2000,25000; quick: 5000); each run lasts ~4 s")
    p.add_argument("--runs", type=int, default=None, help="runs per feed (default 3; quick: 1)")
    p.add_argument("--feeds", default=",".join(FEEDS),
                   help=f"comma-separated subset of {','.join(FEEDS)}")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--broker", choices=BROKER_KINDS, default="tansu",
                   help="the embedded broker to measure on (results go to a folder named "
                        "after it when it is not tansu)")
    p.add_argument("--quick", action="store_true",
                   help="small N and one run: a smoke test of the harness, not a measurement")
    p.add_argument("--out", type=Path, default=None,
                   help="directory for latest.json / latest.md (default bench/results, "
                        "quick: bench/results/quick)")
    args = p.parse_args(argv)
    quick = args.quick
    args.events = args.events or (2_000 if quick else 60_000)
    args.naive_events = args.naive_events or min(args.events, 1_000 if quick else 15_000)
    args.latency_events = args.latency_events or (2_000 if quick else 60_000)
    args.runs = args.runs or (1 if quick else 3)
    sweep = args.sweep_rates if args.sweep_rates is not None else (
        "5000" if quick else "2000,25000")
    args.sweep = sorted({float(r) for r in sweep.split(",") if r.strip()} - {args.rate})
    home = RESULTS if args.broker == "tansu" else RESULTS / args.broker
    args.out = args.out or (home / "quick" if quick else home)
    args.feed_list = [f.strip() for f in args.feeds.split(",") if f.strip()]
    bad = set(args.feed_list) - set(FEEDS)
    if bad or not args.feed_list:
        p.error(f"--feeds: unknown {sorted(bad)} (choose from {', '.join(FEEDS)})")
    return args


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, registry: RegistryThread,
                 workdir: Path) -> None:
        self.args = args
        self.registry_url = registry.url
        self.workdir = workdir
        self.bootstrap = ""
        self.admin_conf: dict[str, Any] = {}
        self.admin: AdminClient | None = None
        self.failures: list[str] = []
        self.latency_floor: list[Result] = []
        self.sweep: dict[float, list[Result]] = {}  # rate -> connector runs

    # -- plumbing -------------------------------------------------------------------
    def measure(self, label: str, target: Callable[..., Result], size: int,
                **kwargs: Any) -> Result | None:
        limit_s = 90 + size / 400
        try:
            result = run_in_child(target, kwargs, limit_s=limit_s)
        except WorkerFailed as exc:
            first = str(exc).strip().splitlines()
            self.failures.append(f"{label}: {first[0] if first else exc}")
            log(f"  {label}: FAILED {str(exc)[:2000]}")
            return None
        if "events_per_s" not in result:  # several figures from one child
            for name, part in result.items():
                if isinstance(part, dict) and "events_per_s" in part:
                    log(f"  {label + ': ' + name:<28} {part['events_per_s']:>12,.0f} events/s")
            return result
        log(f"  {label:<28} {result['events_per_s']:>12,.0f} events/s"
            + (f"  cpu {result['cpu_s_per_million']:.1f} s/M  rss {result['peak_rss_mb']:.0f} MB"
               if "cpu_s_per_million" in result else "")
            + (f"  latency {result['latency_ms']}" if "latency_ms" in result else ""))
        return result

    def measure_here(self, label: str, target: Callable[..., Result], **kwargs: Any
                     ) -> Result | None:
        """Like ``measure`` for a target that starts its own worker processes
        (a daemonic child may not have children of its own)."""
        try:
            result = target(**kwargs)
        except Exception as exc:  # noqa: BLE001 - a failed measurement is reported, not fatal
            self.failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:300]}")
            log(f"  {label}: FAILED {exc}")
            return None
        log(f"  {label:<28} {result['events_per_s']:>12,.0f} events/s  cpu "
            f"{result['cpu_s_per_million']:.1f} s/M  rss {result['peak_rss_mb']:.0f} MB "
            f"(workers {result['per_worker_events_per_s']} events/s)")
        return result

    @contextmanager
    def fresh_broker(self, name: str) -> Iterator[None]:
        """Measure on a broker started for this part of the run.

        tansu keeps every record in memory and answers more slowly the more
        it holds (deleting topics does not give it back): after a full run's
        throughput tests its bare produce -> ack p99 at 10k events/s was
        12-16 ms against 7.5-9 ms fresh, and later feeds ran slower than
        the same feed alone. Kafka does not age like that, so each feed, and
        the latency runs, get a broker of their own.
        """
        log_dir = self.workdir / f"broker-{name}"
        log_dir.mkdir(exist_ok=True)
        broker = start_broker(self.args.broker, log_dir)
        try:
            log(f"broker {self.args.broker} {broker.bootstrap} (fresh, for {name})")
            self.bootstrap = broker.bootstrap
            # log_level 3: no notices about the broker closing idle admin connections
            self.admin_conf = {"bootstrap.servers": broker.bootstrap, "log_level": 3}
            self.admin = AdminClient(self.admin_conf)
            yield
        finally:
            self.admin = None
            broker.stop()

    def fresh_prefix(self, who: str) -> str:
        return f"bench.{who}.{uuid.uuid4().hex[:10]}"

    def create_topics(self, prefix: str, families: Sequence[str]) -> None:
        """The run's topics (the connector creates its own) plus its warm-up topic."""
        wanted: list[tuple[str, int, dict[str, str]]] = [
            (f"{prefix}.{f}", PARTITIONS, {}) for f in families]
        ensure_topics(self.admin_conf, [*wanted, (warmup_topic(prefix), 1, {})])

    def drop_topics(self, prefix: str) -> None:
        """Free the broker's memory (tansu keeps every record otherwise); best effort."""
        if self.admin is None:
            return
        try:
            names = [t for t in self.admin.list_topics(timeout=10).topics
                     if t.startswith(prefix + ".")]
            if names:
                for fut in self.admin.delete_topics(names, operation_timeout=30).values():
                    fut.result(30)
        except Exception as exc:  # noqa: BLE001 - cleanup must not fail the run
            log(f"  (could not delete topics {prefix}.*: {exc})")

    # -- one feed ---------------------------------------------------------------------
    def feed(self, name: str, throughput: bool = True
             ) -> tuple[list[Result], dict[str, Any], list[Result]]:
        a = self.args
        count = max(a.events if throughput else 0, a.naive_events if throughput else 0,
                    a.latency_events if name == a.latency_feed else 0)
        started = time.monotonic()
        frames = generate(name, count, a.seed)
        path = self.workdir / f"{name}.frames"
        write_frames(path, frames)
        subs = channels(frames)
        families = sorted({c.split(":", 1)[0] for c in subs})
        log(f"feed {name}: {count:,} frames, {len(subs)} channels, "
            f"{sum(map(len, frames)) / len(frames):.0f} B avg, generated in "
            f"{time.monotonic() - started:.1f}s")
        del frames
        runs: list[Result] = []
        bridge: list[float | None] = []
        pipeline: list[float | None] = []
        receive_cpu: list[float | None] = []
        latency: list[Result] = []
        with FeedServerProcess(path, API_KEY) as server:
            if throughput:
                with self.fresh_broker(name):
                    for i in range(a.runs):
                        log(f"feed {name}, run {i + 1}/{a.runs}")
                        run = self.one_run(server, path, subs, families)
                        runs.append(run)
                        extra = run.pop("_extra")
                        bridge.append(extra.get("bridge"))
                        pipeline.append(extra.get("pipeline"))
                        receive_cpu.append(extra.get("receive_cpu"))
            if name == a.latency_feed:
                latency = self.latency_runs(server, path, subs, families)
        extras = {**summarise(bridge, "bridge", 0), **summarise(pipeline, "pipeline", 0),
                  **summarise(receive_cpu, "receive_cpu_s_per_million", 1)}
        return runs, extras, latency

    def latency_runs(self, server: FeedServerProcess, path: Path, subs: list[str],
                     families: list[str]) -> list[Result]:
        """The paced runs and the broker's floor, on a broker of their own."""
        a = self.args
        latency: list[Result] = []
        with self.fresh_broker("latency"):
            for i in range(a.runs):
                log(f"latency at {a.rate:,.0f} events/s, run {i + 1}/{a.runs}")
                latency.append(self.paced_connector(server, subs, a.rate, a.latency_events,
                                                    "connector@rate", "latency"))
                prefix = self.fresh_prefix("floor")
                self.create_topics(prefix, families)
                floor = self.measure(
                    "produce@rate (floor)", limits.limit_produce_latency, a.latency_events,
                    frames_path=str(path), events=a.latency_events,
                    bootstrap=self.bootstrap, prefix=prefix, rate=a.rate)
                self.drop_topics(prefix)
                self.latency_floor.append(floor or {})
            for rate in a.sweep:
                # ~4 s per run, within the frames the feed file holds
                events = min(a.latency_events, max(1_000 if a.quick else 8_000, int(rate * 4)))
                for i in range(a.runs):
                    log(f"latency at {rate:,.0f} events/s (sweep), run {i + 1}/{a.runs}")
                    self.sweep.setdefault(rate, []).append(self.paced_connector(
                        server, subs, rate, events, f"connector@{rate:,.0f}/s", "sweep"))
        return latency

    def paced_connector(self, server: FeedServerProcess, subs: list[str], rate: float,
                        events: int, label: str, who: str) -> Result:
        """One connector run fed at ``rate``, recording per-record latency."""
        prefix = self.fresh_prefix(who)
        self.create_topics(prefix, [])
        result = self.measure(
            label, run_connector, events,
            base_url=server.base_url(events, rate), topics=subs, api_key=API_KEY,
            bootstrap=self.bootstrap, registry_url=self.registry_url, prefix=prefix,
            partitions=PARTITIONS, events=events, record_latency=True,
            timeout_s=60 + events / 400)
        self.drop_topics(prefix)
        return result or {}

    def one_run(self, server: FeedServerProcess, path: Path, subs: list[str],
                families: list[str]) -> Result:
        a = self.args
        n, nn = a.events, a.naive_events
        common = {"topics": subs, "api_key": API_KEY, "bootstrap": self.bootstrap}
        run: Result = {"limits": {}, "_extra": {}}

        prefix = self.fresh_prefix("connector")
        self.create_topics(prefix, [])
        run["connector"] = self.measure(
            "connector", run_connector, n, base_url=server.base_url(n), **common,
            registry_url=self.registry_url, prefix=prefix, partitions=PARTITIONS, events=n,
            record_latency=False, timeout_s=60 + n / 400)
        self.drop_topics(prefix)

        # the same connector with connector.workers: 2 (the data path of a
        # multi-worker connector; see run_connector_workers), with the default
        # producer settings and with linger.ms 20 (fewer, larger batches)
        for key, producer in WORKER_VARIANTS.items():
            prefix = self.fresh_prefix("workers")
            self.create_topics(prefix, [])
            run[key] = self.measure_here(
                key, run_connector_workers, workers=2, frames_path=str(path),
                base_url=server.base_url(n), **common, registry_url=self.registry_url,
                prefix=prefix, partitions=PARTITIONS, events=n, timeout_s=60 + n / 400,
                producer=producer)
            self.drop_topics(prefix)

        prefix = self.fresh_prefix("naive")
        self.create_topics(prefix, families)
        run["naive"] = self.measure("naive", peers.run_naive, nn,
                                    base_url=server.base_url(nn), **common, prefix=prefix,
                                    events=nn)
        self.drop_topics(prefix)

        prefix = self.fresh_prefix("standard")
        self.create_topics(prefix, families)
        run["standard"] = self.measure("standard", peers.run_standard, n,
                                       base_url=server.base_url(n), **common,
                                       registry_url=self.registry_url, prefix=prefix, events=n)
        self.drop_topics(prefix)

        receive = self.measure("limit receive", limits.limit_receive, n,
                               base_url=server.base_url(n), topics=subs, api_key=API_KEY,
                               events=n)
        run["limits"]["receive"] = receive
        if receive:
            run["_extra"]["receive_cpu"] = receive["cpu_s"] / receive["events"] * 1e6
        memory = self.measure("limits in memory", limits.limits_in_memory, n,
                              frames_path=str(path), events=n,
                              min_seconds=0.1 if a.quick else limits.MIN_SECONDS)
        for name in ("parse", "encode"):
            run["limits"][name] = memory[name] if memory else None
        run["_extra"]["bridge"] = memory["bridge"]["events_per_s"] if memory else None
        run["_extra"]["pipeline"] = memory["pipeline"]["events_per_s"] if memory else None
        prefix = self.fresh_prefix("produce")
        self.create_topics(prefix, families)
        run["limits"]["produce"] = self.measure("limit produce", limits.limit_produce, n,
                                                frames_path=str(path), events=n,
                                                bootstrap=self.bootstrap, prefix=prefix)
        self.drop_topics(prefix)
        return run


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = {"events": args.events, "naive_events": args.naive_events,
                "latency_events": args.latency_events, "rate": args.rate,
                "latency_feed": args.latency_feed, "runs": args.runs, "seed": args.seed,
                "feeds": args.feed_list, "quick": args.quick, "partitions": PARTITIONS,
                "broker": args.broker}
    log(f"settings {settings}")
    began = time.monotonic()
    load_start = list(os.getloadavg())  # other work on the machine skews every figure
    feeds_out: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    latency_runs: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="seqbench-") as tmp, \
            RegistryThread() as registry:
        log(f"registry {registry.url}")
        bench = Bench(args, registry, Path(tmp))
        order = list(args.feed_list)
        if args.latency_feed not in order:
            order.append(args.latency_feed)  # latency needs its feed even if not listed
        for name in order:
            runs, feed_extras, latency = bench.feed(name, throughput=name in args.feed_list)
            if name in args.feed_list:
                feeds_out[name] = feed_summary(runs)
                extras[name] = feed_extras
            latency_runs.extend(latency)
        failures = bench.failures
        floor_runs = bench.latency_floor
        headline = latency_summary(latency_runs, args.rate)
        sweep = sorted([*(latency_summary(runs, rate) for rate, runs in bench.sweep.items()),
                        headline], key=lambda summary: summary["rate"])
    result = {
        "machine": machine_info({**settings, "seconds": round(time.monotonic() - began, 1),
                                 "load_average_start": load_start,
                                 "load_average_end": list(os.getloadavg()),
                                 "failures": failures}),
        "feeds": feeds_out,
        "latency_ms": {**headline,
                       # extra: this broker's own floor at that rate (produce -> ack only)
                       "floor": latency_summary(floor_runs, args.rate),
                       # extra: the connector at other paced rates (the headline included)
                       "by_rate": sweep},
    }
    table = markdown(result, extras)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2)
                                           + b"\n")
    (args.out / "latest.md").write_text(table)
    print(table)
    log(f"done in {time.monotonic() - began:.0f}s; wrote {args.out}/latest.json and latest.md"
        + (f"; {len(failures)} measurement(s) FAILED" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
