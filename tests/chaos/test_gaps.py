"""Server-side drops (Gap events): said in the control topic, followed by a
REST re-snapshot for market data and a backfill for trading data.

The simulator keeps only 32 events per client and topic, and stalls its
writers twice: its buffers overflow and, when it writes again, it sends Gap
frames. Downstream must find a ``gap`` control record, then a ``resnapshot``
one, then fresh REST snapshots (``is_snapshot`` books, NBBO prices), and no
fill or TCA report missing.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from typing import Any

import pytest

from connector.config import replace
from connector.demo import SimulatorThread
from connector.protocol.families import Family
from connector.sandbox.simulator import SimulatorConfig
from tests.support.chaos import (
    control_records,
    fault,
    fills_tally,
    read_family,
    rest_truth,
    tca_tally,
)
from tests.support.e2e import KEY, TOPICS, check_fills_complete, e2e_settings, run_for
from tests.support.readback import DecodedRecord

STALLS = 2
STALL_S = 2.5


def _stall_twice(sim: SimulatorThread) -> None:
    for _ in range(STALLS):
        time.sleep(2.0)
        fault(sim, lambda f: f.stall(STALL_S))
        time.sleep(STALL_S)


def _received_ns(record: DecodedRecord) -> int:
    return int(record.raw.headers["sequence.received_at_ns"])


@pytest.fixture(scope="module")
def gappy(bootstrap: str, registry_url: str) -> dict[str, Any]:
    prefix = f"chaosgap{uuid.uuid4().hex[:8]}"
    sim = SimulatorThread(SimulatorConfig(seed=31, rate=800.0, api_keys=(KEY,), buffer_size=32,
                                          lifecycle_interval=0.5)).start()
    try:
        settings = e2e_settings(prefix, sim.base_url, bootstrap, registry_url)
        settings = replace(settings, sequence={"resnapshot_min_interval_s": 1.0})
        connector = run_for(settings, 6.0, sim, _stall_twice)
        truth = rest_truth(sim)
        stats = sim.sim.state.stats
        sent_gaps, sent_dropped = stats.gaps, stats.dropped
    finally:
        sim.stop()
    kafka = {f: read_family(bootstrap, prefix, registry_url, f)
             for f in (Family.fills, Family.tca, Family.book, Family.prices)}
    control = control_records(bootstrap, prefix, registry_url)
    gaps = [r.value for r in control if r.value["kind"] == "gap"]
    fills, tca = fills_tally(truth.fills, kafka[Family.fills]), tca_tally(truth.tca,
                                                                         kafka[Family.tca])
    print(f"\n[gaps] simulator gap frames={sent_gaps} dropped={sent_dropped} | control gaps="
          f"{len(gaps)} dropped={sum(g['dropped'] or 0 for g in gaps)} resnapshots="
          f"{sum(1 for r in control if r.value['kind'] == 'resnapshot')} | {fills.line()} | "
          f"{tca.line()}")
    return {"connector": connector, "kafka": kafka, "control": [r.value for r in control],
            "gaps": gaps, "truth": truth, "fills": fills, "tca": tca, "sent_gaps": sent_gaps}


def test_every_gap_is_a_control_record(gappy: dict[str, Any]) -> None:
    gaps = gappy["gaps"]
    assert gaps, "the stalls made the simulator drop events"
    assert len(gaps) == gappy["sent_gaps"], "one control record per Gap frame sent"
    assert all(g["sequence_topic"] in TOPICS and (g["dropped"] or 0) > 0 for g in gaps)
    gapped = {g["sequence_topic"] for g in gaps}
    assert {"book:BTC-USD", "prices:BTC-USD"} <= gapped, gapped


def test_a_resnapshot_record_follows_every_gap(gappy: dict[str, Any]) -> None:
    resnaps: dict[str, list[int]] = defaultdict(list)
    for value in gappy["control"]:
        if value["kind"] == "resnapshot":
            resnaps[value["sequence_topic"]].append(value["at_ns"])
    for gap in gappy["gaps"]:
        channel = gap["sequence_topic"]
        if channel in ("orders", "fills", "tca"):
            continue  # backfilled instead, checked below
        assert any(at > gap["at_ns"] for at in resnaps[channel]), \
            f"no resnapshot of {channel} after its gap at {gap['at_ns']}"


def test_book_snapshots_from_rest_after_every_book_gap(gappy: dict[str, Any]) -> None:
    books = gappy["kafka"][Family.book]
    venues: dict[str, set[str]] = defaultdict(set)
    for record in books:
        venues[record.raw.headers["sequence.channel"].decode()].add(record.value["venue"])
    book_gaps = [g for g in gappy["gaps"] if g["sequence_topic"].startswith("book:")]
    assert book_gaps
    for gap in book_gaps:
        channel = gap["sequence_topic"]
        after = [r for r in books if r.raw.headers["sequence.channel"].decode() == channel
                 and r.raw.headers["sequence.source"] == b"rest"
                 and _received_ns(r) > gap["at_ns"]]
        assert after, f"no REST re-snapshot of {channel} after its gap"
        assert all(r.value["is_snapshot"] is True for r in after)
        assert {r.value["venue"] for r in after} == venues[channel], "one per venue"


def test_prices_resnapshotted_after_every_price_gap(gappy: dict[str, Any]) -> None:
    prices = gappy["kafka"][Family.prices]
    price_gaps = [g for g in gappy["gaps"] if g["sequence_topic"].startswith("prices:")]
    assert price_gaps
    for gap in price_gaps:
        channel = gap["sequence_topic"]
        assert any(r.raw.headers["sequence.channel"].decode() == channel
                   and r.raw.headers["sequence.source"] == b"rest"
                   and _received_ns(r) > gap["at_ns"] for r in prices), \
            f"no REST NBBO for {channel} after its gap"


def test_fills_and_tca_complete_after_the_gaps(gappy: dict[str, Any]) -> None:
    fills, tca = gappy["fills"], gappy["tca"]
    assert fills.sent > 50 and fills.duplicates == 0 and not fills.missing
    assert tca.duplicates == 0 and not tca.missing
    check_fills_complete({"kafka": gappy["kafka"], "rest_fills": gappy["truth"].fills})
