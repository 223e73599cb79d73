"""Failover time of replicas (``connector.shards``), over repeated kill -9.

    python -m bench.failover --kills 10 [--broker kafka] [--session-s 6]

Two replicas (real ``python -m connector run`` processes, exactly-once) share
two shards against the simulator, a development registry and a broker of
the chosen kind. Each round kills -9 the replica owning shard 0 (the account
streams), measures the seconds from the kill to another replica's
``shards assigned`` of shard 0 (its JSON log line: the group handed the shard
over) and to its socket for shard 0 subscribed (streaming again), then
starts the killed replica again and lets the group settle before the next
round. Prints one line per round and
the median and max.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from connector.demo import SimulatorThread
from connector.sandbox.brokers import start_broker
from connector.sandbox.registry import RegistryThread
from connector.sandbox.simulator import SimulatorConfig

KEY = "seq_bench_key"
TOPICS = ("orders", "fills", "tca", "prices:BTC-USD", "prices:ETH-USD", "prices:SOL-USD")


def _events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["ts"]).timestamp()


def _owned(log: Path) -> set[int]:
    owned: set[int] = set()
    for e in _events(log):
        if e.get("event") == "shards assigned":
            owned = set(e["owned"])
        elif e.get("event") in ("shards revoked", "shards lost (session expired)"):
            owned -= set(e["shards"])
        elif e.get("event") == "starting replica":
            owned = set()
    return owned


def _first_after(log: Path, event: str, shard: int, since: float) -> float | None:
    for e in _events(log):
        if e.get("event") == event and _at(e) > since and (
                shard in e.get("shards", []) or e.get("shard") == shard):
            return _at(e)
    return None


def _subscribed_after(log: Path, topic: str, since: float) -> float | None:
    """When the replica's socket for ``topic``'s shard was subscribed (after ``since``)."""
    for e in _events(log):
        if e.get("event") == "subscribed" and _at(e) > since and topic in e.get("subscribed", []):
            return _at(e)
    return None


class Replica:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.env, self.log = name, {**env, "SEQCONN__CONNECTOR__INSTANCE_ID": name}, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
                [sys.executable, "-m", "connector", "run"], env=self.env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=60)


def _wait(predicate: Any, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--broker", default="kafka", choices=("kafka", "tansu"))
    p.add_argument("--session-s", type=float, default=6.0)
    p.add_argument("--delivery", default="exactly_once")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    broker = start_broker(args.broker, work / "broker")
    registry = RegistryThread().start()
    sim = SimulatorThread(SimulatorConfig(seed=7, rate=200.0, api_keys=(KEY,))).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCONN__")}
    env.update({
        "SEQUENCE_API_KEY": KEY,
        "SEQCONN__SEQUENCE__BASE_URL": sim.base_url,
        "SEQCONN__SEQUENCE__STREAM_TOPICS": json.dumps(list(TOPICS)),
        "SEQCONN__SEQUENCE__LIFECYCLE": "[]", "SEQCONN__SEQUENCE__SSE": "[]",
        "SEQCONN__KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "SEQCONN__KAFKA__TOPIC_PREFIX": f"failover{int(time.time())}",
        "SEQCONN__KAFKA__PARTITIONS": "3",
        "SEQCONN__SCHEMA_REGISTRY__URL": registry.url,
        "SEQCONN__OBSERVE__METRICS_PORT": "0",
        "SEQCONN__CONNECTOR__SHARDS": "2",
        "SEQCONN__CONNECTOR__DELIVERY": args.delivery,
        "SEQCONN__CONNECTOR__SESSION_TIMEOUT_S": str(args.session_s),
    })
    replicas = [Replica(n, env, work / f"{n}.log") for n in ("a", "b")]
    owned_s: list[float] = []
    streaming_s: list[float] = []
    try:
        for r in replicas:
            r.start()
        # shard 0: orders, fills, tca, ETH-USD; shard 1: BTC-USD, SOL-USD
        _wait(lambda: all(any(_subscribed_after(r.log, t, 0) for r in replicas)
                          for t in ("orders", "prices:BTC-USD")), 120, "both shards streaming")
        time.sleep(3)
        for round_ in range(1, args.kills + 1):
            owner = next(r for r in replicas if 0 in _owned(r.log))
            other = next(r for r in replicas if r is not owner)
            owner.kill()
            killed = time.time()
            _wait(lambda o=other, k=killed: _subscribed_after(o.log, "orders", k) is not None,
                  args.session_s + 60, "shard 0 subscribed by the other replica")
            assigned = _first_after(other.log, "shards assigned", 0, killed)
            handed = _subscribed_after(other.log, "orders", killed)
            assert assigned is not None and handed is not None  # noqa: S101 - waited for
            owned_s.append(assigned - killed)
            streaming_s.append(handed - killed)
            print(f"round {round_}: {owner.name} killed; shard 0 owned by {other.name} after "
                  f"{owned_s[-1]:.1f} s, streaming (subscribed) after {streaming_s[-1]:.1f} s",
                  flush=True)
            owner.start()
            restarted = time.time()
            _wait(lambda o=owner, t=restarted: any(
                e.get("event") == "subscribed" and _at(e) > t for e in _events(o.log)),
                120, "the restarted replica streaming")
            time.sleep(3)
    finally:
        for r in replicas:
            r.kill(signal.SIGTERM)
        sim.stop()
        registry.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    if owned_s:
        print(f"{len(owned_s)} kills, session timeout {args.session_s} s, {args.broker}, "
              f"{args.delivery}: owned again median {statistics.median(owned_s):.1f} s, "
              f"max {max(owned_s):.1f} s; streaming (subscribed) median "
              f"{statistics.median(streaming_s):.1f} s, max {max(streaming_s):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
