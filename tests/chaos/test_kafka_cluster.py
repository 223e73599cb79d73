"""A three-broker Apache Kafka cluster: replication factor 3, min.insync.replicas 2.

(a) The leader of a ``sequence.fills`` partition is killed (-9) mid-stream:
the partition moves to another replica, librdkafka's idempotent producer
retries there, and Kafka must hold every fill once, nothing lost.
(b) A second broker is stopped while the first is still down: one broker of
three is left, below the minimum ISR (and the KRaft quorum), so Kafka
refuses every write. The connector must hold: memory bounded, /readyz 503,
the same process alive (no crash loop), nothing dropped. When a broker
returns it resumes, and once all are back every fill since the start is in
Kafka exactly once.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.demo import SimulatorThread
from connector.protocol.families import Family
from connector.sandbox.broker import free_port
from connector.sandbox.kafka import ClusterOptions, KafkaCluster
from connector.sandbox.simulator import SimulatorConfig
from connector.serde.topics import TopicNames
from tests.support.chaos import (
    RSS_GROWTH_CEILING_MB,
    ConnectorProcess,
    RssSampler,
    connector_env,
    new_prefix,
    read_family,
    settled_fills,
    wait_subscribed,
    wait_until,
)
from tests.support.e2e import KEY
from tests.support.http import http_get

pytestmark = pytest.mark.kafka_only("replication needs a real multi-broker cluster")

TOPICS = ("orders", "fills", "tca", "prices:BTC-USD", "prices:ETH-USD", "book:BTC-USD")
RATE = 800.0
BELOW_ISR_S = 30.0


def _readyz(port: int) -> int:
    return http_get(f"http://127.0.0.1:{port}/readyz")[0]


@pytest.fixture(scope="module")
def cluster_run(registry_url: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[dict[str, Any]]:
    tmp = Path(tmp_path_factory.mktemp("cluster"))
    cluster = KafkaCluster(3, workdir=tmp / "kafka", options=ClusterOptions(
        heap_mb=384, properties={"default.replication.factor": "3",
                                 "min.insync.replicas": "2"})).start()
    sim = SimulatorThread(SimulatorConfig(seed=23, rate=RATE, api_keys=(KEY,))).start()
    prefix = new_prefix("cluster")
    fills_topic = TopicNames(prefix=prefix).topic(Family.fills)
    port = free_port()
    env = connector_env(prefix, sim.base_url, cluster.bootstrap, registry_url, TOPICS,
                        KAFKA__REPLICATION_FACTOR="3", OBSERVE__METRICS_PORT=str(port),
                        OBSERVE__MAX_UNACKED_AGE_S="5")
    proc = ConnectorProcess(env, tmp / "connector.log")
    rss = RssSampler(proc)
    out: dict[str, Any] = {"prefix": prefix, "bootstrap": cluster.bootstrap}
    try:
        proc.start()
        wait_subscribed(sim, 0, proc=proc)
        pid = proc.pid
        rss.start()
        time.sleep(6.0)
        now = time.monotonic()
        baseline = statistics.median(kb for t, kb in rss.samples if t > now - 4.0)

        # (a) kill -9 the leader of fills partition 0 mid-stream
        leader = cluster.node(cluster.leader(fills_topic, 0))
        leader.kill()
        killed_ns = time.time_ns()
        wait_until(lambda: cluster.leader(fills_topic, 0) not in (-1, leader.node_id), 30,
                   "a new leader for fills-0", 0.5)
        out["new_leader_s"] = (time.time_ns() - killed_ns) / 1e9
        fills_a = settled_fills(sim, proc, cluster.running_bootstrap(), prefix, registry_url,
                                 0, killed_ns + 5_000_000_000, 90.0)
        out.update(fills_a=fills_a, killed_leader=leader.node_id)
        print(f"\n[cluster] (a) leader node {leader.node_id} of {fills_topic}-0 killed; new "
              f"leader after {out['new_leader_s']:.1f}s; {fills_a.line()}")

        # (b) a second broker stopped: one left, below min.insync.replicas=2
        second = next(n for n in cluster.nodes if n.running)
        second.stop()
        below_at, below_ns = time.monotonic(), time.time_ns()
        statuses: list[int] = []
        while time.monotonic() - below_at < BELOW_ISR_S:
            statuses.append(_readyz(port))
            time.sleep(1.0)
        out.update(statuses=statuses, alive_below_isr=proc.alive() and proc.pid == pid,
                   below_peak_kb=rss.peak_kb(below_at), baseline_kb=baseline)
        produced_while_below = len(read_family(cluster.running_bootstrap(), prefix,
                                               registry_url, Family.fills, missing_ok=True))
        # a broker returns: two in sync again, writes resume
        cluster.start_node(second)
        back_ns = time.time_ns()
        fills_b = settled_fills(sim, proc, cluster.running_bootstrap(), prefix, registry_url,
                                 0, back_ns + 5_000_000_000, 120.0)
        wait_until(lambda: _readyz(port) == 200, 60, "/readyz 200 again", 1.0)
        out["ready_after"] = _readyz(port)
        cluster.start_node(leader)  # all three back before the final read
        fills_all = settled_fills(sim, proc, cluster.bootstrap, prefix, registry_url, 0,
                                   time.time_ns() + 3_000_000_000, 90.0)
        out.update(fills_b=fills_b, fills_all=fills_all, same_process=proc.pid == pid,
                   below_ns=below_ns, peak_kb=rss.peak_kb())
        out["rc"] = proc.terminate()
        out["log_tail"] = proc.log_tail(4000)
        print(f"[cluster] (b) below min ISR for {BELOW_ISR_S:.0f}s: readyz "
              f"{sorted(set(statuses))} (503 x{statuses.count(503)}), process alive and same: "
              f"{out['alive_below_isr']}, RSS baseline {baseline / 1024:.0f} MB peak "
              f"{out['below_peak_kb'] / 1024:.0f} MB; fills readable meanwhile "
              f"{produced_while_below}; after a broker returned: {fills_b.line()}; all three "
              f"back: {fills_all.line()}; rc={out['rc']}")
        yield out
    finally:
        rss.stop()
        proc.cleanup()
        sim.stop()
        cluster.stop()


def test_leader_kill_9_loses_and_doubles_no_fill(cluster_run: dict[str, Any]) -> None:
    tally = cluster_run["fills_a"]
    assert tally.sent > 50
    assert tally.duplicates == 0, "a fill written twice across the leader change"
    assert not tally.missing, f"{len(tally.missing)} fills missing, e.g. {tally.missing[:3]}"


def test_below_min_isr_the_connector_holds_and_says_not_ready(
    cluster_run: dict[str, Any]
) -> None:
    assert cluster_run["alive_below_isr"], "the connector exited or restarted below min ISR"
    assert 503 in cluster_run["statuses"], cluster_run["statuses"]
    growth_mb = (cluster_run["below_peak_kb"] - cluster_run["baseline_kb"]) / 1024
    assert growth_mb < RSS_GROWTH_CEILING_MB, f"RSS grew by {growth_mb:.0f} MB"


def test_writes_resume_and_nothing_is_lost_when_a_broker_returns(
    cluster_run: dict[str, Any]
) -> None:
    for name in ("fills_b", "fills_all"):
        tally = cluster_run[name]
        assert tally.duplicates == 0, f"{name}: a fill written twice: {tally.line()}"
        assert not tally.missing, f"{name}: {len(tally.missing)} fills missing"
    assert cluster_run["fills_all"].sent > cluster_run["fills_a"].sent
    assert cluster_run["same_process"]
    assert cluster_run["ready_after"] == 200
    assert cluster_run["rc"] == 0, cluster_run["log_tail"]
