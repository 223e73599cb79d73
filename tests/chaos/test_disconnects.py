"""A flapping link: the stream socket is dropped 20+ times, stalls, and
handshakes fail with 503 then 429. The connector must come back every time,
say so in the control topic, and lose or double no fill or TCA report.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest

from connector.config import replace
from connector.demo import SimulatorThread
from connector.protocol.families import Family
from connector.sandbox.simulator import SimulatorConfig
from connector.source.websocket import WebSocketReader
from tests.support.chaos import (
    control_records,
    fault,
    fills_tally,
    read_family,
    rest_truth,
    stream_sessions,
    tca_tally,
    wait_until,
)
from tests.support.e2e import KEY, TOPICS, check_fills_complete, e2e_settings, run_for
from tests.support.metrics import counted

DROPS = 22
STALL_AT = (7, 15)  # drop rounds replaced by a stall the watchdog must catch
HANDSHAKE_AT = 11  # before this round's drop: the next handshakes answer 503, then 429
STALE_AFTER_S = 2.0
STALL_S = 3.0
CODES: tuple[int | None, ...] = (None, 1006, 1011)  # None: abrupt TCP abort


def _flap(log: list[str]) -> Any:
    rng = random.Random(7)

    def during(sim: SimulatorThread) -> None:
        for round_ in range(DROPS + len(STALL_AT)):
            _, before = stream_sessions(sim)
            if round_ in STALL_AT:
                fault(sim, lambda f: f.stall(STALL_S))
                log.append("stall")
            else:
                if round_ == HANDSHAKE_AT:
                    fault(sim, lambda f: f.fail_handshakes([503, 429], retry_after=1.0))
                    log.append("handshake 503,429")
                code = CODES[round_ % len(CODES)]
                fault(sim, lambda f, c=code: f.drop_streams(c))
                log.append(f"drop {code or 'abort'}")
            # the next fault only once the stream is back and subscribed again
            wait_until(lambda b=before: stream_sessions(sim)[1] > b
                       and stream_sessions(sim)[0] >= 1, 30.0, f"reconnect after {log[-1]}")
            asyncio.run(asyncio.sleep(rng.uniform(0.1, 0.5)))

    return during


@pytest.fixture(scope="module")
def flapping(bootstrap: str, registry_url: str) -> dict[str, Any]:
    prefix = f"chaosflap{uuid.uuid4().hex[:8]}"
    sim = SimulatorThread(SimulatorConfig(seed=21, rate=400.0, api_keys=(KEY,),
                                          lifecycle_interval=0.5)).start()
    log: list[str] = []
    try:
        settings = e2e_settings(prefix, sim.base_url, bootstrap, registry_url)
        settings = replace(settings, sequence={"backoff_initial_s": 0.05, "backoff_cap_s": 1.0,
                                               "stale_after_s": STALE_AFTER_S})
        connector = run_for(settings, 6.0, sim, _flap(log))
        truth = rest_truth(sim)
        handshakes_left = fault(sim, lambda f: len(f.handshakes))
    finally:
        sim.stop()
    kafka = {f: read_family(bootstrap, prefix, registry_url, f)
             for f in (Family.fills, Family.tca, Family.markets_new, Family.markets_resolved)}
    control = control_records(bootstrap, prefix, registry_url)
    stream = next(r for r in connector.readers if r.name == "stream")
    assert isinstance(stream, WebSocketReader)
    fills, tca = fills_tally(truth.fills, kafka[Family.fills]), tca_tally(truth.tca,
                                                                         kafka[Family.tca])
    print(f"\n[disconnects] faults={len(log)} stream epochs={stream.epoch} "
          f"stale reconnects={stream.stale_reconnects} | {fills.line()} | {tca.line()}")
    return {"connector": connector, "stream": stream, "truth": truth, "kafka": kafka,
            "control": control, "log": log, "handshakes_left": handshakes_left,
            "fills": fills, "tca": tca}


def test_recovers_from_every_drop_stall_and_refused_handshake(flapping: dict[str, Any]) -> None:
    stream = flapping["stream"]
    faults = DROPS + len(STALL_AT)
    assert stream.epoch >= faults + 1 >= 21, f"{stream.epoch} sessions for {faults} faults"
    assert stream.stale_reconnects >= len(STALL_AT), "the watchdog caught each stall"
    metric = counted(flapping["connector"].metrics, "reconnects", stream="stream")
    assert metric == stream.epoch - 1
    assert flapping["handshakes_left"] == 0, "both refused handshakes were met and retried"


def test_a_reconnect_record_per_epoch_and_topic(flapping: dict[str, Any]) -> None:
    epochs: dict[str, set[int]] = {t: set() for t in TOPICS}
    for record in flapping["control"]:
        value = record.value
        if value["kind"] == "reconnect" and value["sequence_topic"] in epochs:
            epochs[value["sequence_topic"]].add(value["epoch"])
    want = set(range(2, flapping["stream"].epoch + 1))
    for topic, seen in epochs.items():
        assert seen == want, f"{topic}: missing reconnect epochs {sorted(want - seen)}"


def test_no_fill_missing_or_doubled(flapping: dict[str, Any]) -> None:
    tally = flapping["fills"]
    assert tally.sent > 50 and tally.duplicates == 0 and not tally.missing
    check_fills_complete({"kafka": flapping["kafka"], "rest_fills": flapping["truth"].fills})


def test_tca_exactly_once(flapping: dict[str, Any]) -> None:
    tally = flapping["tca"]
    assert tally.sent > 5, "some TCA reports were generated"
    assert tally.duplicates == 0, "a TCA report was written twice"
    assert not tally.missing, f"TCA reports missing: {tally.missing[:3]}"


@pytest.mark.parametrize("family", [Family.markets_new, Family.markets_resolved])
def test_lifecycle_replays_are_deduped(flapping: dict[str, Any], family: Family) -> None:
    keys = [r.raw.key for r in flapping["kafka"][family]]
    assert keys, f"no {family} records"
    assert len(keys) == len(set(keys)), f"{family}: a replayed event was written twice"
