"""More than one replica (``connector.shards``): real processes on Apache Kafka.

Three (or two) ``python -m connector run`` replicas share three shards through
Kafka's consumer-group protocol, each shard writing through a transactional
producer (``delivery: exactly_once``). Everything is judged on what an
independent ``read_committed`` reader finds in Kafka, against the simulator's
REST history and its ledger:

- steady state: every market-data symbol written by exactly one replica (the
  ``connector.instance`` header), the three shards on three replicas;
- kill -9 of the replica owning the account shard: the shard is owned again
  within the session timeout + 10 s, fills, orders and TCA exactly once, a
  ``handover`` control record with the window no replica covered;
- zombie: SIGSTOP a replica past the session timeout, its shards move, SIGCONT:
  nothing it writes after being fenced is visible to ``read_committed``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from connector.demo import SimulatorThread
from connector.protocol.families import Family
from connector.sandbox.simulator import SimulatorConfig
from tests.support.chaos import (
    ConnectorProcess,
    connector_env,
    fills_tally,
    new_prefix,
    orders_check,
    read_family,
    rest_truth,
    stream_sessions,
    tca_tally,
    wait_until,
)
from tests.support.e2e import KEY
from tests.support.readback import DecodedRecord

EXACTLY_ONCE = pytest.mark.kafka_only("transactions and read_committed (tansu lacks them)")

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "BTC-USDT")
TOPICS = ("orders", "fills", "tca", *(f"prices:{s}" for s in SYMBOLS))
# connector/sharding.py deals the market data out starting at shard 1:
# BTC-USD -> 1, ETH-USD -> 2, SOL-USD -> 0 (with the account streams), BTC-USDT -> 1
ACCOUNT_SYMBOL = "SOL-USD"
# with two shards: BTC-USD -> 1, ETH-USD -> 0, SOL-USD -> 1, BTC-USDT -> 0
ACCOUNT_SYMBOL_OF_2 = "ETH-USD"
SESSION_S = 6.0


def _replica_env(prefix: str, sim: SimulatorThread, bootstrap: str, registry_url: str,
                 name: str, shards: int) -> dict[str, str]:
    return connector_env(
        prefix, sim.base_url, bootstrap, registry_url, topics=TOPICS,
        CONNECTOR__INSTANCE_ID=name, CONNECTOR__SHARDS=str(shards),
        CONNECTOR__DELIVERY="exactly_once", CONNECTOR__SESSION_TIMEOUT_S=str(SESSION_S),
        CONNECTOR__REVOKE_TIMEOUT_S="10", CONNECTOR__DRAIN_TIMEOUT_S="8",
        OBSERVE__LOG_FORMAT="json")


def _replicas(prefix: str, sim: SimulatorThread, bootstrap: str, registry_url: str,
              names: tuple[str, ...], shards: int, logs: Path) -> list[ConnectorProcess]:
    """One (not yet started) replica process per name, all in one group of ``shards``."""
    return [ConnectorProcess(_replica_env(prefix, sim, bootstrap, registry_url, n, shards),
                             logs / f"{n}.log") for n in names]


def _start_streaming(sim: SimulatorThread, replicas: list[ConnectorProcess],
                     shards: int) -> None:
    """Start every replica; return once each shard streams on its own session."""
    for replica in replicas:
        replica.start()
    wait_until(lambda: _streaming(sim, replicas, shards), 90, f"{shards} shards streaming")


def _streaming(sim: SimulatorThread, replicas: list[ConnectorProcess], sessions: int) -> bool:
    for replica in replicas:
        if not replica.alive():
            raise AssertionError(f"a replica exited:\n{replica.log_tail()}")
    return stream_sessions(sim)[0] >= sessions


def _instance(record: DecodedRecord) -> str:
    return record.raw.headers["connector.instance"].decode()


def _received_ns(record: DecodedRecord) -> int:
    return int(record.raw.headers["sequence.received_at_ns"])


def _controls(bootstrap: str, prefix: str, registry_url: str,
              kind: str) -> list[DecodedRecord]:
    records = read_family(bootstrap, prefix, registry_url, Family.control, read_committed=True)
    return sorted((r for r in records if r.value["kind"] == kind),
                  key=lambda r: r.value["at_ns"])


def _detail(record: DecodedRecord) -> dict[str, object]:
    detail: dict[str, object] = orjson.loads(record.value["detail_json"] or "{}")
    return detail


def _owners_since(prices: list[DecodedRecord], since_ns: int) -> dict[str, set[str]]:
    owners: dict[str, set[str]] = {}
    for record in prices:
        if _received_ns(record) >= since_ns:
            owners.setdefault(record.value["symbol"], set()).add(_instance(record))
    return owners


def _assert_account_exactly_once(bootstrap: str, prefix: str, registry_url: str,
                                 sim: SimulatorThread) -> str:
    truth = rest_truth(sim)
    fills = read_family(bootstrap, prefix, registry_url, Family.fills, read_committed=True)
    tally = fills_tally(truth.fills, fills)
    tca = tca_tally(truth.tca, read_family(bootstrap, prefix, registry_url, Family.tca,
                                           read_committed=True))
    checked, order_records, wrong = orders_check(
        truth.orders, read_family(bootstrap, prefix, registry_url, Family.orders,
                                  read_committed=True))
    assert tally.sent > 0 and tally.duplicates == 0 and not tally.missing, tally.line()
    assert tca.duplicates == 0 and not tca.missing, tca.line()
    assert checked > 0 and not wrong, f"orders differing from REST: {wrong[:5]}"
    return f"{tally.line()}; {tca.line()}; orders checked={checked} records={order_records}"


def _stop_all(replicas: list[ConnectorProcess]) -> None:
    for replica in replicas:
        replica.send(signal.SIGCONT)
        replica.send(signal.SIGTERM)
    for replica in replicas:
        if replica.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                replica.proc.wait(timeout=40)
        replica.cleanup()  # kills what did not stop


@EXACTLY_ONCE
def test_replicas_share_shards_and_failover_after_kill_9_keeps_account_exactly_once(
    bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    prefix = new_prefix("replicas")
    sim = SimulatorThread(SimulatorConfig(seed=13, rate=300.0, api_keys=(KEY,))).start()
    names = ("r0", "r1", "r2")
    replicas = _replicas(prefix, sim, bootstrap, registry_url, names, 3, tmp_path)
    try:
        # three shards, each subscribed on its own /v1/stream session
        _start_streaming(sim, replicas, 3)
        time.sleep(8)  # the group settles (cooperative rebalances as members join)
        steady_ns = time.time_ns()
        time.sleep(5)
        prices = read_family(bootstrap, prefix, registry_url, Family.prices, read_committed=True)
        owners = _owners_since(prices, steady_ns)
        assert set(owners) == set(SYMBOLS), owners
        assert all(len(o) == 1 for o in owners.values()), f"a symbol written twice: {owners}"
        # three shards on three replicas (cooperative-sticky balances them)
        by_shard = {owners["BTC-USD"].pop(), owners["ETH-USD"].pop(),
                    owners[ACCOUNT_SYMBOL].pop()}
        assert len(by_shard) == 3, f"shards not spread over the replicas: {owners}"
        print(f"steady state owners: {_owners_since(prices, steady_ns)}")

        # kill -9 the owner of the account shard
        victim_name = _owners_since(prices, steady_ns)[ACCOUNT_SYMBOL].pop()
        victim = replicas[names.index(victim_name)]
        victim.kill9()
        killed_ns = time.time_ns()

        def taken_over() -> bool:
            assigned = _controls(bootstrap, prefix, registry_url, "shard_assigned")
            return any(r.value["sequence_topic"] == "shard:0" and r.value["at_ns"] > killed_ns
                       for r in assigned)

        wait_until(taken_over, SESSION_S + 10 + 20, "shard 0 owned again", 0.5)
        assigned = [r for r in _controls(bootstrap, prefix, registry_url, "shard_assigned")
                    if r.value["sequence_topic"] == "shard:0" and r.value["at_ns"] > killed_ns]
        failover_s = (assigned[0].value["at_ns"] - killed_ns) / 1e9
        print(f"failover: shard 0 assigned again after {failover_s:.1f} s "
              f"(session timeout {SESSION_S} s) to {assigned[0].value['instance']}")
        assert failover_s <= SESSION_S + 10, failover_s
        time.sleep(6)  # the new owner backfills and streams
        _stop_all(replicas)

        handovers = [r for r in _controls(bootstrap, prefix, registry_url, "handover")
                     if r.value["at_ns"] > killed_ns]
        topics = {r.value["sequence_topic"] for r in handovers}
        assert {"orders", "fills", "tca", f"prices:{ACCOUNT_SYMBOL}"} <= topics, topics
        window = _detail(handovers[0])
        assert isinstance(window["from_ns"], int) and isinstance(window["to_ns"], int)
        assert window["from_ns"] <= killed_ns <= window["to_ns"], window
        assert window["previous_instance"] == victim_name
        print(f"handover window {(window['to_ns'] - window['from_ns']) / 1e9:.1f} s")
        # after the kill, the victim's symbol is written by one other replica
        prices = read_family(bootstrap, prefix, registry_url, Family.prices, read_committed=True)
        after = _owners_since(prices, assigned[0].value["at_ns"] + 2_000_000_000)
        assert victim_name not in after.get(ACCOUNT_SYMBOL, {victim_name}), after
        print(_assert_account_exactly_once(bootstrap, prefix, registry_url, sim))
    finally:
        for replica in replicas:
            replica.cleanup()
        sim.stop()


@EXACTLY_ONCE
def test_zombie_replica_is_fenced_and_nothing_it_writes_after_is_visible(
    bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    prefix = new_prefix("zombie")
    sim = SimulatorThread(SimulatorConfig(seed=17, rate=300.0, api_keys=(KEY,))).start()
    names = ("z0", "z1")
    replicas = _replicas(prefix, sim, bootstrap, registry_url, names, 2, tmp_path)
    try:
        _start_streaming(sim, replicas, 2)
        time.sleep(8)
        steady_ns = time.time_ns()
        time.sleep(3)
        prices = read_family(bootstrap, prefix, registry_url, Family.prices, read_committed=True)
        owners = _owners_since(prices, steady_ns)
        zombie_name = owners[ACCOUNT_SYMBOL_OF_2].pop()
        zombie = replicas[names.index(zombie_name)]
        zombie.send(signal.SIGSTOP)
        stopped_ns = time.time_ns()

        def moved() -> bool:
            assigned = _controls(bootstrap, prefix, registry_url, "shard_assigned")
            return any(r.value["sequence_topic"] == "shard:0" and r.value["at_ns"] > stopped_ns
                       and r.value["instance"] != zombie_name for r in assigned)

        wait_until(moved, SESSION_S + 10 + 20, "shard 0 moved off the stopped replica", 0.5)
        time.sleep(2)
        zombie.send(signal.SIGCONT)
        resumed_ns = time.time_ns()
        time.sleep(8)  # the zombie runs on: reads its socket, tries to commit, is fenced
        _stop_all(replicas)

        # what the zombie wrote after it came back, before the group gave it
        # a shard again (a fresh init_transactions, legitimately visible)
        again = [int(str(_detail(r)["assigned_ns"]))
                 for r in _controls(bootstrap, prefix, registry_url, "shard_assigned")
                 if r.value["instance"] == zombie_name and r.value["at_ns"] > resumed_ns]
        fenced_until = min(again, default=time.time_ns())
        leaked = []
        for family in (Family.prices, Family.fills, Family.orders, Family.tca):
            for record in read_family(bootstrap, prefix, registry_url, family,
                                      read_committed=True):
                if (_instance(record) == zombie_name
                        and stopped_ns <= _received_ns(record) < fenced_until):
                    leaked.append((family.value, record.raw.key))
        print(f"zombie {zombie_name}: stopped {((resumed_ns - stopped_ns) / 1e9):.1f} s; "
              f"records visible from it after the stop: {len(leaked)}")
        assert not leaked, leaked[:10]
        print(_assert_account_exactly_once(bootstrap, prefix, registry_url, sim))
    finally:
        for replica in replicas:
            replica.cleanup()
        sim.stop()


def test_workers_with_shards_are_replicas_each_a_group_member(
    bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    """``connector.workers: 2`` with ``shards: 2``: one mechanism, two members of the
    group under one supervisor; at-least-once delivery (the idempotent producer)."""
    prefix = new_prefix("wreplicas")
    sim = SimulatorThread(SimulatorConfig(seed=19, rate=300.0, api_keys=(KEY,))).start()
    env = _replica_env(prefix, sim, bootstrap, registry_url, "pod", 2)
    env.update({"SEQCONN__CONNECTOR__WORKERS": "2",
                "SEQCONN__CONNECTOR__DELIVERY": "at_least_once"})
    supervisor = ConnectorProcess(env, tmp_path / "supervisor.log")
    try:
        supervisor.start()
        wait_until(lambda: _streaming(sim, [supervisor], 2), 90, "two shards streaming")
        time.sleep(8)
        steady_ns = time.time_ns()
        time.sleep(4)
        rc = supervisor.terminate()
        assert rc == 0, f"SIGTERM must drain both and exit 0, got {rc}:\n{supervisor.log_tail()}"
        prices = read_family(bootstrap, prefix, registry_url, Family.prices)
        owners = _owners_since(prices, steady_ns)
        assert set(owners) == set(SYMBOLS), owners
        assert all(len(o) == 1 for o in owners.values()), owners
        members = {o for each in owners.values() for o in each}
        assert members == {"pod-w0", "pod-w1"}, owners  # one shard per worker
        assigned = _controls(bootstrap, prefix, registry_url, "shard_assigned")
        assert {r.value["sequence_topic"] for r in assigned} == {"shard:0", "shard:1"}
        print(f"workers as replicas: {owners}")
    finally:
        supervisor.cleanup()
        sim.stop()


@EXACTLY_ONCE
def test_replica_restarted_after_kill_9_gets_its_shards_back_and_records_the_handover(
    bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    """The plainest case: one replica, kill -9, start again (same member id)."""
    prefix = new_prefix("rrestart")
    sim = SimulatorThread(SimulatorConfig(seed=23, rate=300.0, api_keys=(KEY,))).start()
    replica = ConnectorProcess(_replica_env(prefix, sim, bootstrap, registry_url, "solo", 2),
                               tmp_path / "solo.log")
    try:
        replica.start()
        wait_until(lambda: _streaming(sim, [replica], 2), 90, "two shards streaming")
        time.sleep(5)
        replica.kill9()
        killed_ns = time.time_ns()
        time.sleep(3)
        sessions = stream_sessions(sim)[1]
        replica.start()
        started_ns = time.time_ns()
        wait_until(lambda: stream_sessions(sim)[1] >= sessions + 2 and _streaming(
            sim, [replica], 2), 60, "both shards streaming again")
        time.sleep(5)
        _stop_all([replica])
        assigned = [r for r in _controls(bootstrap, prefix, registry_url, "shard_assigned")
                    if r.value["at_ns"] > started_ns]
        back_s = max(r.value["at_ns"] for r in assigned) / 1e9 - started_ns / 1e9
        assert {r.value["sequence_topic"] for r in assigned} == {"shard:0", "shard:1"}
        handovers = [r for r in _controls(bootstrap, prefix, registry_url, "handover")
                     if r.value["at_ns"] > killed_ns]
        assert {r.value["sequence_topic"] for r in handovers} == set(TOPICS)
        for record in handovers:
            window = _detail(record)
            assert isinstance(window["from_ns"], int) and isinstance(window["to_ns"], int)
            assert window["from_ns"] <= killed_ns < started_ns <= window["to_ns"], window
        widest = max(int(str(_detail(r)["to_ns"])) - int(str(_detail(r)["from_ns"]))
                     for r in handovers)
        print(f"restart: both shards owned {back_s:.1f} s after the start; "
              f"widest handover window {widest / 1e9:.1f} s (down 3 s)")
        print(_assert_account_exactly_once(bootstrap, prefix, registry_url, sim))
    finally:
        replica.cleanup()
        sim.stop()


@EXACTLY_ONCE
@pytest.mark.slow  # the failover tests above show the same exactly-once in make test
def test_replicas_scale_1_to_3_to_1_account_streams_lose_and_repeat_nothing(
    bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    prefix = new_prefix("rscale")
    sim = SimulatorThread(SimulatorConfig(seed=29, rate=300.0, api_keys=(KEY,))).start()
    names = ("s0", "s1", "s2")
    replicas = _replicas(prefix, sim, bootstrap, registry_url, names, 3, tmp_path)
    try:
        replicas[0].start()
        wait_until(lambda: _streaming(sim, replicas[:1], 3), 90, "one replica, three shards")
        time.sleep(3)
        for replica in replicas[1:]:
            replica.start()
        time.sleep(12)  # scaled to 3: the shards spread
        spread_ns = time.time_ns()
        time.sleep(3)
        for replica in replicas[1:]:
            assert replica.terminate() == 0, replica.log_tail()
        # static members leave no LeaveGroup: their shards move after the session timeout
        time.sleep(SESSION_S + 10)
        back_ns = time.time_ns()
        time.sleep(3)
        _stop_all(replicas)
        prices = read_family(bootstrap, prefix, registry_url, Family.prices, read_committed=True)
        spread = {o for each in _owners_since(prices, spread_ns).values() for o in each}
        assert len(spread) >= 2, spread
        after = _owners_since(prices, back_ns)
        assert set(after) == set(SYMBOLS) and all(o == {"s0"} for o in after.values()), after
        moves = _controls(bootstrap, prefix, registry_url, "handover")
        windows = sorted({round((int(str(_detail(r)["to_ns"]))
                                 - int(str(_detail(r)["from_ns"]))) / 1e9, 1) for r in moves})
        print(f"scale 1->3->1: owners at 3 {sorted(spread)}, handover records {len(moves)}, "
              f"windows s {windows}")
        assert moves
        print(_assert_account_exactly_once(bootstrap, prefix, registry_url, sim))
    finally:
        for replica in replicas:
            replica.cleanup()
        sim.stop()


@EXACTLY_ONCE
@pytest.mark.slow
def test_rolling_restart_of_every_replica_keeps_the_account_streams_exactly_once(
    bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    """SIGTERM and start again, one replica after the other (as a rollout does):
    static members restarted inside the session timeout keep their shards."""
    prefix = new_prefix("rroll")
    sim = SimulatorThread(SimulatorConfig(seed=31, rate=300.0, api_keys=(KEY,))).start()
    names = ("o0", "o1")
    replicas = _replicas(prefix, sim, bootstrap, registry_url, names, 2, tmp_path)
    try:
        _start_streaming(sim, replicas, 2)
        time.sleep(8)
        rolled_ns = time.time_ns()
        for replica in replicas:
            assert replica.terminate() == 0, replica.log_tail()
            replica.start()
            time.sleep(8)
        _stop_all(replicas)
        handovers = [r for r in _controls(bootstrap, prefix, registry_url, "handover")
                     if r.value["at_ns"] > rolled_ns]
        windows = sorted({round((int(str(_detail(r)["to_ns"]))
                                 - int(str(_detail(r)["from_ns"]))) / 1e9, 1)
                          for r in handovers})
        assert {r.value["sequence_topic"] for r in handovers} == set(TOPICS)
        print(f"rolling restart: {len(handovers)} handover records, windows s {windows}")
        print(_assert_account_exactly_once(bootstrap, prefix, registry_url, sim))
    finally:
        for replica in replicas:
            replica.cleanup()
        sim.stop()
