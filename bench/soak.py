"""``python -m bench.soak``: does the connector's memory stay flat under steady load?

Starts the embedded broker (tansu), the dev schema registry and the Sequence
simulator (a child process, at ``--rate`` market events/s, trading events on
top), then ``sequence-connector run`` as a child process with the example
config (deploy/config.example.yaml: its subscriptions, its defaults), and
samples the connector's resident set every ``--interval`` seconds. The
verdict is the least-squares slope of RSS after ``--warmup`` seconds, in
MB/hour: a leak shows as a straight climb there, a bounded structure as a
plateau. Results: bench/results/soak.json and soak.md.

``--tracemalloc DIR`` runs the connector with a probe thread that writes,
every ``--snapshot-every`` seconds, a line to DIR/gc.jsonl (RSS, pymalloc
blocks, glibc's heap, gc counts, the most numerous gc-tracked types) and a
tracemalloc snapshot (diagnosis only: tracing slows the connector and costs
memory of its own, so its RSS is not the verdict; ``--trace-frames 0`` keeps
only the cheap gc line). ``python -m bench.soak --diff DIR`` then lists what
grew between the first snapshot after warm-up and the last one.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
CONFIG = ROOT / "deploy" / "config.example.yaml"
API_KEY = "seq_soak_key"
STOP_TIMEOUT_S = 60.0  # the connector's drain_timeout_s (30 s) plus its own shutdown


# -- measuring ------------------------------------------------------------------------
def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (connector.workers > 1 forks workers)."""
    found = [pid]
    for parent in found:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    found.extend(int(c) for c in f.read().split())
    return found


def rss_mb(pid: int) -> float | None:
    """Resident set of ``pid`` and its descendants, in MiB (None once it is gone)."""
    total_kb = 0
    seen = False
    for proc in _descendants(pid):
        with contextlib.suppress(OSError), open(f"/proc/{proc}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    seen = True
                    break
    return total_kb / 1024 if seen else None


# From /metrics: events received (summed over families), and the two queues
# whose depth is memory (a backlog raises RSS without anything leaking).
SCRAPED = {"events": "sequence_connector_events_received_total{",
           "handoff": "sequence_connector_handoff_queue_records ",
           "producer_queue": "sequence_connector_producer_queue_records "}


def scrape(port: int) -> dict[str, int | None]:
    """The connector's own counts (``SCRAPED``); None each when /metrics does not answer."""
    found: dict[str, int | None] = dict.fromkeys(SCRAPED)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return found
    for line in text.splitlines():
        for name, prefix in SCRAPED.items():
            if line.startswith(prefix):
                found[name] = (found[name] or 0) + int(float(line.rsplit(" ", 1)[1]))
    return found


def slope_mb_per_hour(samples: Sequence[dict[str, Any]], after_s: float) -> float | None:
    """Least-squares slope of ``rss_mb`` over ``t_s`` for samples at or after ``after_s``."""
    pts = [(float(s["t_s"]), float(s["rss_mb"])) for s in samples
           if s["t_s"] >= after_s and s["rss_mb"] is not None]
    if len(pts) < 3:
        return None
    n = len(pts)
    mean_t = sum(t for t, _ in pts) / n
    mean_r = sum(r for _, r in pts) / n
    var = sum((t - mean_t) ** 2 for t, _ in pts)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (r - mean_r) for t, r in pts)
    return cov / var * 3600.0


# -- the processes ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it listened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout_s:.0f}s")


def _stop(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    """SIGTERM, then SIGKILL after ``timeout_s``; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


@contextlib.contextmanager
def _child(argv: list[str], log: Path, env: dict[str, str] | None = None
           ) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
    try:
        yield proc
    finally:
        _stop(proc, STOP_TIMEOUT_S)


def _connector_env(sim_port: int, bootstrap: str, registry: str, metrics_port: int
                   ) -> dict[str, str]:
    # Only what points the example config at the sandbox; everything else is
    # the example's (subscriptions, dedupe window, queue bounds ...).
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCONN__")}
    env.update({
        "SEQUENCE_API_KEY": API_KEY,
        "SEQCONN__SEQUENCE__BASE_URL": f"http://127.0.0.1:{sim_port}",
        "SEQCONN__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "SEQCONN__SCHEMA_REGISTRY__URL": registry,
        "SEQCONN__OBSERVE__METRICS_PORT": str(metrics_port),
        "SEQCONN__OBSERVE__METRICS_HOST": "127.0.0.1",
        "SEQCONN__CONNECTOR__INSTANCE_ID": "soak",
    })
    return env


def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    from connector.sandbox.broker import EmbeddedBroker
    from connector.sandbox.registry import RegistryThread

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    sim_port, metrics_port = _free_port(), _free_port()
    py = sys.executable
    run = ["run", "--config", str(args.config)]
    connector_argv = [py, "-m", "connector", *run]
    if args.tracemalloc is not None:
        args.tracemalloc.mkdir(parents=True, exist_ok=True)
        connector_argv = [py, "-m", "bench.soak", "_traced", str(args.tracemalloc),
                          str(args.snapshot_every), str(args.trace_frames), *run]
    samples: list[dict[str, Any]] = []
    exit_code: int | None = None
    machine = _machine()  # the commit measured is the one checked out at the start
    print(f"soak: {args.duration:.0f}s at {args.rate:.0f} events/s; logs in {work}", flush=True)
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(EmbeddedBroker(log_dir=work))
        registry = stack.enter_context(RegistryThread())
        sim = stack.enter_context(_child(
            [py, "-m", "bench.soak", "_simulator", str(sim_port), str(args.rate)],
            work / "simulator.log"))
        _wait_port(sim_port, sim, "simulator", 30)
        env = _connector_env(sim_port, broker.bootstrap, registry.url, metrics_port)
        env.update(kv.split("=", 1) for kv in args.env)
        conn = stack.enter_context(_child(connector_argv, work / "connector.log", env))
        _wait_port(metrics_port, conn, "connector", 180)
        started = time.monotonic()
        last_events: int | None = None
        while True:
            t = time.monotonic() - started
            counts = scrape(metrics_port)
            events = counts["events"]
            rate = (None if events is None or last_events is None
                    else (events - last_events) / args.interval)
            last_events = events
            sample = {"t_s": round(t, 1), "rss_mb": rss_mb(conn.pid), "events": events,
                      "events_per_s": rate, "handoff": counts["handoff"],
                      "producer_queue": counts["producer_queue"]}
            samples.append(sample)
            print(f"[{t:6.0f}s] rss {sample['rss_mb'] or 0:6.1f} MB  events {events}  "
                  f"{'' if rate is None else f'{rate:.0f}/s'}  hand-off {counts['handoff']}  "
                  f"producer queue {counts['producer_queue']}", flush=True)
            if conn.poll() is not None:
                print(f"soak: the connector exited early with {conn.returncode}", flush=True)
                break
            if t >= args.duration:
                break
            try:
                time.sleep(max(0.0, started + len(samples) * args.interval - time.monotonic()))
            except KeyboardInterrupt:
                print("soak: interrupted; writing what was sampled", flush=True)
                break
        exit_code = _stop(conn, STOP_TIMEOUT_S)
    return _verdict(args, samples, exit_code, work, machine)


def _verdict(args: argparse.Namespace, samples: list[dict[str, Any]], exit_code: int | None,
             work: Path, machine: dict[str, Any]) -> dict[str, Any]:
    duration = samples[-1]["t_s"] if samples else 0.0
    # A run no longer than the warm-up (make soak DURATION=60) still gets a
    # slope: over its second half.
    warmup = args.warmup if args.warmup < duration else duration / 2
    after = [s for s in samples if s["t_s"] >= warmup and s["rss_mb"] is not None]
    rates = [s["events_per_s"] for s in after if s["events_per_s"] is not None]
    slope = slope_mb_per_hour(samples, warmup)
    flat = slope is not None and slope <= args.max_slope
    return {
        "settings": {"duration_s": args.duration, "ran_s": duration, "rate": args.rate,
                     "interval_s": args.interval,
                     "warmup_s": warmup, "max_slope_mb_per_hour": args.max_slope,
                     "config": str(args.config.relative_to(ROOT) if args.config.is_relative_to(
                         ROOT) else args.config), "tracemalloc": args.tracemalloc is not None,
                     "env": args.env},
        "machine": machine,
        "verdict": {
            "flat": flat,
            "slope_mb_per_hour": None if slope is None else round(slope, 2),
            "rss_at_warmup_mb": round(after[0]["rss_mb"], 1) if after else None,
            "rss_last_mb": round(after[-1]["rss_mb"], 1) if after else None,
            "rss_max_after_warmup_mb": round(max(s["rss_mb"] for s in after), 1) if after
            else None,
            "events_per_s_after_warmup": round(sum(rates) / len(rates)) if rates else None,
            "connector_exit_code": exit_code,
            # from every 5 minutes on: how the slope settles as bounded state fills
            "slope_from_s": {str(t): None if (v := slope_mb_per_hour(samples, t)) is None
                             else round(v, 2) for t in range(300, int(duration) - 200, 300)},
        },
        "samples": samples,
        "logs": str(work),
    }


def _machine() -> dict[str, Any]:
    import platform

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False, timeout=5, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "commit": commit or None, "load_avg": os.getloadavg()}


def markdown(result: dict[str, Any]) -> str:
    v, s = result["verdict"], result["settings"]
    lines = [
        "# Soak: connector RSS under steady load",
        "",
        (f"`make soak DURATION={s['duration_s']:.0f} RATE={s['rate']:.0f}` "
        f"(config {s['config']}, commit {result['machine']['commit']}, "
        f"{result['machine']['cores']} cores; ran {s['ran_s']:.0f} s)"),
        "",
        (f"- verdict: **{'flat' if v['flat'] else 'NOT flat'}** (slope after "
        f"{s['warmup_s']:.0f} s warm-up {v['slope_mb_per_hour']} MB/hour; "
        f"limit {s['max_slope_mb_per_hour']} MB/hour)"),
        (f"- RSS after warm-up: {v['rss_at_warmup_mb']} MB -> {v['rss_last_mb']} MB, "
        f"max {v['rss_max_after_warmup_mb']} MB"),
        f"- events received after warm-up: {v['events_per_s_after_warmup']}/s",
        f"- connector exit code after SIGTERM: {v['connector_exit_code']}",
        *(["- judged again from this run's samples (`python -m bench.soak --rejudge`)"]
          if result.get("rejudged") else []),
        "- slope from t on (MB/hour): " + ", ".join(
            f"{t} s: {m}" for t, m in v["slope_from_s"].items()),
        "",
        "| t (s) | RSS (MB) | events/s | hand-off | producer queue |",
        "|---:|---:|---:|---:|---:|",
    ]
    for smp in result["samples"]:
        rate = "" if smp["events_per_s"] is None else f"{smp['events_per_s']:.0f}"
        rss = "" if smp["rss_mb"] is None else f"{smp['rss_mb']:.1f}"
        lines.append(f"| {smp['t_s']:.0f} | {rss} | {rate} | {smp.get('handoff', '')} | "
                     f"{smp.get('producer_queue', '')} |")
    return "\n".join(lines) + "\n"


# -- child modes ----------------------------------------------------------------------------
def _simulator(port: int, rate: float) -> None:
    from connector.sandbox.simulator import SimulatorConfig, run_simulator

    # No ledger: it records every frame sent, which would grow the simulator
    # (not the connector) for the whole soak.
    run_simulator(SimulatorConfig(port=port, rate=rate, api_keys=(API_KEY,), ledger=False))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (  # noqa: RUF012 - ctypes' own protocol
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _mallinfo() -> dict[str, int] | None:
    """glibc's main heap in MiB: in use, free inside it (fragmentation), mmapped."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    mib = 1024 * 1024
    return {"arena": info.arena // mib, "in_use": info.uordblks // mib,
            "free": info.fordblks // mib, "mmapped": info.hblkhd // mib}


def _traced(directory: Path, every_s: float, frames: int, argv: list[str]) -> int:
    """The connector with a probe thread: every ``every_s`` one line of gc state
    and the most numerous gc-tracked types (gc.jsonl), and with ``frames`` > 0
    a tracemalloc snapshot."""
    if frames > 0:
        tracemalloc.start(frames)

    def probe() -> None:
        n = 0
        started = time.monotonic()
        while True:
            time.sleep(every_s)
            counts: dict[str, int] = {}
            for obj in gc.get_objects():
                name = type(obj).__qualname__
                counts[name] = counts.get(name, 0) + 1
            top = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:40])
            line = {"t_s": round(time.monotonic() - started), "rss_mb": rss_mb(os.getpid()),
                    "pymalloc_blocks": sys.getallocatedblocks(), "malloc": _mallinfo(),
                    "gc_count": gc.get_count(), "gc_stats": gc.get_stats(),
                    "frozen": gc.get_freeze_count(), "tracked": sum(counts.values()),
                    "types": top}
            with open(directory / "gc.jsonl", "ab") as out:
                out.write(orjson.dumps(line) + b"\n")
            if frames > 0:
                snap = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)])
                snap.dump(str(directory / f"snap-{n:04d}-{int(time.time())}.pickle"))
            n += 1

    threading.Thread(target=probe, name="soak-probe", daemon=True).start()
    from connector.cli import main

    return main(argv)


def diff(directory: Path, warmup_s: float, top: int) -> str:
    """What grew between the first snapshot after warm-up and the last one."""
    snaps = sorted(directory.glob("snap-*.pickle"))
    if len(snaps) < 2:
        return f"need two snapshots in {directory}, found {len(snaps)}"
    t0 = int(snaps[0].stem.rsplit("-", 1)[1]) - 1
    base = next((p for p in snaps if int(p.stem.rsplit("-", 1)[1]) - t0 >= warmup_s), snaps[0])
    first, last = tracemalloc.Snapshot.load(str(base)), tracemalloc.Snapshot.load(str(snaps[-1]))
    out = [f"{base.name} -> {snaps[-1].name}",
           (f"traced total {sum(s.size for s in first.statistics('filename')) / 1e6:.1f} MB -> "
           f"{sum(s.size for s in last.statistics('filename')) / 1e6:.1f} MB"), "",
           "top growth by line:"]
    for stat in last.compare_to(first, "lineno")[:top]:
        out.append(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks  "
                   f"{stat.traceback[0]}")
    out += ["", "top growth by call stack (innermost last):"]
    for stat in last.compare_to(first, "traceback")[:top]:
        out.append(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks")
        out += [f"      {frame}" for frame in list(stat.traceback)[-6:]]
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=1800.0, help="seconds (default 1800)")
    p.add_argument("--rate", type=float, default=3000.0, help="simulated market events/s")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between RSS samples")
    # At 3,000 events/s (about 90 fills/s and 36 TCA reports/s reach the
    # connector) the fills window fills in ~3.5 minutes, the backfill's order
    # memory in ~8 and the TCA window in ~12, and each store's dict then
    # reaches its final table once churn has used up its free slots (CPython
    # sizes a churned dict at 3x its entries): the TCA one, a 2.6 MB step, at
    # ~18.5 minutes in three runs. Growth before that is bounded state
    # settling, not a leak.
    p.add_argument("--warmup", type=float, default=1200.0,
                   help="seconds left out of the slope (default 1200)")
    p.add_argument("--max-slope", type=float, default=2.0,
                   help="largest RSS slope after warm-up still called flat, MB/hour")
    p.add_argument("--config", type=Path, default=CONFIG)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--tracemalloc", type=Path, default=None, metavar="DIR",
                   help="run the connector under tracemalloc, snapshots into DIR")
    p.add_argument("--snapshot-every", type=float, default=60.0)
    p.add_argument("--trace-frames", type=int, default=4,
                   help="frames kept per traced allocation (more: slower, bigger snapshots); "
                        "0: no tracemalloc, only the gc probe (gc.jsonl)")
    p.add_argument("--env", action="append", default=[], metavar="SEQCONN__S__K=V",
                   help="a setting for the connector (diagnosis: e.g. a small dedupe window)")
    p.add_argument("--diff", type=Path, default=None, metavar="DIR",
                   help="only print what grew between the snapshots in DIR")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--rejudge", type=Path, default=None, metavar="SOAK_JSON",
                   help="judge the samples of an earlier run again (no processes started)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_simulator"]:
        _simulator(int(argv[1]), float(argv[2]))
        return 0
    if argv[:1] == ["_traced"]:
        return _traced(Path(argv[1]), float(argv[2]), int(argv[3]), argv[4:])
    args = parse_args(argv)
    if args.diff is not None:
        print(diff(args.diff, args.warmup, args.top))
        return 0
    if args.rejudge is not None:
        # the samples of an earlier run, judged again by these rules and knobs
        old = orjson.loads(args.rejudge.read_bytes())
        args.duration, args.rate = old["settings"]["duration_s"], old["settings"]["rate"]
        args.interval, args.env = old["settings"]["interval_s"], old["settings"].get("env", [])
        result = _verdict(args, old["samples"], old["verdict"]["connector_exit_code"],
                          Path(old["logs"]), old["machine"])
        result["rejudged"] = True
    else:
        result = run_soak(args)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "soak-traced" if args.tracemalloc is not None else "soak"
    (args.out / f"{stem}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    md = markdown(result)
    (args.out / f"{stem}.md").write_text(md)
    print("\n".join(md.splitlines()[:10]))
    ok = result["verdict"]["flat"] and result["verdict"]["connector_exit_code"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
