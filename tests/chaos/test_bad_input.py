"""Bad input from the vendor never stops the stream and is never lost silently.

The simulator interleaves malformed frames (bad JSON, unknown channels,
missing data, wrong types, oversized) with good ones and duplicates fills;
what the connector wrote is read back from Kafka.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

from connector.demo import SimulatorThread
from connector.protocol.families import Family
from connector.sandbox.simulator import SimulatorConfig
from tests.support.e2e import check_family_exact, check_fills_complete, run_e2e, sim_call
from tests.support.metrics import counted

GARBAGE = 1200


def _inject(sim: SimulatorThread) -> None:
    async def apply() -> None:
        sim.sim.faults.inject_garbage(GARBAGE)
        sim.sim.faults.inject_garbage(3, ["oversized"])
        sim.sim.faults.duplicate_fills(25)

    sim_call(sim, apply())


@pytest.fixture(scope="module")
def fuzz_run(bootstrap: str, registry_url: str) -> dict[str, Any]:
    return run_e2e(bootstrap, registry_url, during=_inject, seconds=15.0)


def test_every_bad_frame_is_a_dead_letter(fuzz_run: dict[str, Any]) -> None:
    sent_garbage = [f for f in fuzz_run["ledger"]["stream"] if "_garbage" in f]
    assert len(sent_garbage) >= GARBAGE, "the simulator sent all garbage before the stop"
    dlq = fuzz_run["dlq"]
    assert len(dlq) == len(sent_garbage)
    stages = {r.headers["dlq.stage"] for r in dlq}
    assert stages <= {b"decode", b"route", b"normalize"} and len(stages) >= 3
    assert all(r.headers["dlq.error"] for r in dlq)
    oversized = [r for r in dlq if "dlq.original_bytes" in r.headers]
    assert len(oversized) == 3, "oversized frames are dead-lettered, not dropped"
    for record in oversized:
        assert int(record.headers["dlq.original_bytes"]) > 2 * 1024 * 1024
        assert record.value is not None and record.value.startswith(b'{"channel":')
        assert len(record.value) == 512 * 1024
    metrics = fuzz_run["connector"].metrics
    stages = ("decode", "route", "normalize")
    assert sum(counted(metrics, "dlq_records", stage=s) for s in stages) == len(dlq)


@pytest.mark.parametrize("family", [Family.prices, Family.book, Family.orders, Family.fills,
                                    Family.tca, Family.funding, Family.fair_price])
def test_good_frames_between_them_all_arrive_exactly(
    fuzz_run: dict[str, Any], family: Family
) -> None:
    check_family_exact(fuzz_run, family)


def test_duplicated_fills_appear_once(fuzz_run: dict[str, Any]) -> None:
    fills = [f["data"]["venue_execution_id"] for f in fuzz_run["ledger"]["stream"]
             if f.get("channel") == "fills"]
    assert len(fills) > len(set(fills)), "the simulator did send duplicates"
    keys = [r.raw.key.decode() for r in fuzz_run["kafka"][Family.fills] if r.raw.key]
    assert len(keys) == len(set(keys))
    assert set(fills) <= set(keys)  # plus history backfilled from REST at start
    check_fills_complete(fuzz_run)


def test_bad_api_key_ends_the_process_with_a_clear_error(bootstrap: str,
                                                         registry_url: str) -> None:
    sim = SimulatorThread(SimulatorConfig(seed=3, rate=50.0, api_keys=("seq_test_key",))).start()
    try:
        env = {**os.environ, "SEQUENCE_API_KEY": "seq_live_wrong_key_123",
               "SEQCONN__SEQUENCE__BASE_URL": sim.base_url,
               "SEQCONN__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
               "SEQCONN__KAFKA__TOPIC_PREFIX": "authtest",
               "SEQCONN__SCHEMA_REGISTRY__URL": registry_url,
               "SEQCONN__OBSERVE__METRICS_PORT": "0"}
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "connector", "run"], check=False,
                              env=env, capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        sim.stop()
    assert done.returncode == 2, done.stderr
    assert "refused the API key (HTTP 401)" in done.stderr
    assert "seq_live_wrong_key_123" not in done.stderr + done.stdout
    assert elapsed < 30
