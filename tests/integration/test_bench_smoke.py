"""``python -m bench.run --quick`` end to end: the harness runs and writes its JSON.

No thresholds on speed (this machine's numbers mean nothing in CI); only that
every measurement produced a number and the JSON has the documented shape.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

REPO = Path(__file__).resolve().parents[2]
FEEDS = ("prices", "book", "mix")
# A quick bench took 117 s on this 2-core box under a load of 6-7; the limit
# only guards against a hang, it judges no speed.
LIMIT_S = 300


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <args>``; past the limit it gets SIGINT, so its ``finally``
    blocks stop the brokers it started (SIGKILL would leave them running)."""
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise AssertionError(f"{args[0]} still running after {LIMIT_S}s: {err[-3000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _has_spread(node: dict[str, object], name: str) -> None:
    for key in (name, f"{name}_min", f"{name}_max"):
        value = node.get(key)
        assert isinstance(value, (int, float)) and value > 0, (key, node)
    assert node[f"{name}_min"] <= node[name] <= node[f"{name}_max"]  # type: ignore[operator]


@pytest.mark.timeout(LIMIT_S + 60)
@pytest.mark.slow  # two minutes of the whole harness; the floor tests below stay in make test
def test_quick_bench_writes_json_with_every_figure(tmp_path: Path) -> None:
    done = _bench("bench.run", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "latest.json").read_text())
    assert set(result) == {"machine", "feeds", "latency_ms"}
    machine = result["machine"]
    for key in ("cpu", "cores", "python", "versions"):
        assert machine[key], key
    assert set(result["feeds"]) == set(FEEDS)
    for feed in FEEDS:
        f = result["feeds"][feed]
        assert set(f) >= {"connector", "naive", "standard", "limits", "ratio_vs_naive",
                          "ratio_vs_standard"}
        for name in ("events_per_s", "cpu_s_per_million", "peak_rss_mb"):
            _has_spread(f["connector"], name)
        _has_spread(f["naive"], "events_per_s")
        _has_spread(f["standard"], "events_per_s")
        for name in ("receive", "parse", "encode", "produce"):
            _has_spread(f["limits"], name)
        _has_spread(f, "ratio_vs_naive")
        _has_spread(f, "ratio_vs_standard")
    latency = result["latency_ms"]
    for name in ("p50", "p99", "p999"):
        _has_spread(latency, name)
    assert latency["p50"] <= latency["p99"] <= latency["p999"]
    assert latency["rate"] == 10000
    floor = latency["floor"]  # the broker's own produce -> ack latency at that rate
    for name in ("p50", "p99", "p999"):
        _has_spread(floor, name)
    assert floor["p50"] <= floor["p99"] <= floor["p999"]
    by_rate = latency["by_rate"]  # the connector at other paced rates, headline included
    assert [entry["rate"] for entry in by_rate] == [5000, 10000]
    for entry in by_rate:
        for name in ("p50", "p99", "p999"):
            _has_spread(entry, name)
        assert len(entry["delivered_events_per_s"]) == 1
    table = (tmp_path / "latest.md").read_text()
    assert "| **connector**" in table and "p999" in table and "Latency floor" in table
    assert "| paced events/s |" in table


def _quick_floor(out: Path, *extra: str) -> dict[str, Any]:
    done = _bench("bench.floor", "--quick", "--lingers", "0,5", "--ticks-ms", "1",
                  "--out", str(out), *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["settings"]["rate"] == 10000
    assert [(row["linger_ms"], row["tick_ms"]) for row in result["paced"]] == [(0, 1.0), (5, 1.0)]
    for node in (*result["paced"], result["serial"]):
        for name in ("p50", "p99", "p999"):
            _has_spread(node, name)
        assert node["p50"] <= node["p99"] <= node["p999"]
    assert "| linger.ms |" in out.with_suffix(".md").read_text()
    return result


@pytest.mark.timeout(LIMIT_S + 60)
def test_quick_floor_writes_json_for_every_setting(tmp_path: Path) -> None:
    result = _quick_floor(tmp_path / "floor.json")
    assert result["settings"]["broker"] == "tansu"  # the default without --broker


@pytest.mark.timeout(LIMIT_S + 60)
def test_floor_on_a_given_cluster_leaves_no_topics_behind(tmp_path: Path,
                                                          bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    before = set(admin.list_topics(timeout=10).topics)
    result = _quick_floor(tmp_path / "floor.json", "--bootstrap", bootstrap)
    assert result["settings"]["broker"] == bootstrap
    assert set(admin.list_topics(timeout=10).topics) == before
