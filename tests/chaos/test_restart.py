"""kill -9 mid-stream, restart: nothing lost, no fill written twice.

The connector runs as a real process (``python -m connector run``). It is
SIGKILLed while fills stream in (no drain, no flush: what librdkafka held is
gone), stays down while the simulator keeps trading, then starts again: the
dedupe state is rebuilt from the tail of its own Kafka topics and the start
backfill pages REST back over the outage. Kafka must then hold every fill
exactly once and every order's latest state.
"""

from __future__ import annotations

import time
from pathlib import Path

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
    wait_subscribed,
)
from tests.support.e2e import KEY

RUN_BEFORE_KILL_S = 6.0
DOWN_S = 4.0
RUN_AFTER_RESTART_S = 8.0


def test_kill_9_and_restart_loses_and_doubles_nothing(
    bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    prefix = new_prefix("restart")
    sim = SimulatorThread(SimulatorConfig(seed=11, rate=400.0, api_keys=(KEY,))).start()
    proc = ConnectorProcess(connector_env(prefix, sim.base_url, bootstrap, registry_url),
                            tmp_path / "connector.log")
    try:
        proc.start()
        wait_subscribed(sim, 0, proc=proc)
        time.sleep(RUN_BEFORE_KILL_S)
        before_kill = len(read_family(bootstrap, prefix, registry_url, Family.fills))
        proc.kill9()
        killed_at_ns = time.time_ns()
        time.sleep(DOWN_S)  # the simulator keeps trading: REST history grows
        fills_while_down = sum(1 for f in rest_truth(sim).fills
                               if f["ts_unix_ns"] > killed_at_ns)
        _, sessions = stream_sessions(sim)
        proc.start()
        wait_subscribed(sim, sessions, proc=proc)
        time.sleep(RUN_AFTER_RESTART_S)
        rc = proc.terminate()
        assert rc == 0, f"SIGTERM must drain and exit 0, got {rc}:\n{proc.log_tail()}"
        truth = rest_truth(sim)
    finally:
        proc.cleanup()
        sim.stop()

    fills = read_family(bootstrap, prefix, registry_url, Family.fills)
    tally = fills_tally(truth.fills, fills)
    checked, order_records, wrong = orders_check(
        truth.orders, read_family(bootstrap, prefix, registry_url, Family.orders))
    print(f"\n[restart] {tally.line()} | fills in Kafka before kill={before_kill}, "
          f"generated while down={fills_while_down} | orders: checked={checked} "
          f"records={order_records} wrong_or_missing={len(wrong)}")
    assert fills_while_down > 0, "the outage must span some fills"
    assert before_kill > 0
    assert tally.duplicates == 0, "a fill was written twice across the restart"
    assert not tally.missing, f"{len(tally.missing)} fills missing, e.g. {tally.missing[:3]}"
    assert tally.sent > before_kill + fills_while_down
    assert checked > 0 and not wrong, f"orders whose latest state is not REST's: {wrong[:3]}"
