"""The fused normalise+encode path (connector/serde/direct.py) against the
two-step path (normalize_for_wire + the fastwire encoder, itself proved
byte-identical to fastavro in test_fastwire.py).

The fused path may defer (None) on anything; whenever it answers, its bytes
and event time must be exactly the two-step path's, and the two-step path
must have accepted the payload with nothing unknown. It must also answer for
the payloads that make up real traffic, or it is dead code.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import orjson
import pytest

from bench.feed import generate
from connector.errors import BadInputError
from connector.normalize import normalize_for_wire
from connector.normalize.examples import EXAMPLE_CHANNELS, example_payload
from connector.normalize.record_specs import RECORD_SPECS
from connector.protocol import Family
from connector.protocol.channels import family_of_channel
from connector.protocol.keys import record_key
from connector.serde.direct import levels_wire
from connector.serde.wire import WireEncoder, wire_header
from tests.unit.test_fastwire import _mutations, _outcome

FUSED = (Family.prices, Family.book, Family.orders, Family.fills, Family.tca,
         Family.funding, Family.fair_price, Family.markets_resolved)

ENCODER = WireEncoder(schema_ids={f: 7 for f in Family})

# Values that sit on the edge of each field kind's common shape.
EDGES: list[Any] = [
    None, 0, -1, 1, 2**53, 2**53 + 1, -(2**53) - 1, 2**63, 2**63 - 1, -(2**63), -(2**63) - 1,
    True, False, 0.0, -0.0, 1.5, 1e300, float("inf"), float("-inf"), float("nan"),
    "", "x", "7", "\ud800", "€", "x" * 9000, [], [[1.5, 2]], [[1e-19, 1]], [[1e20, 1]],
    [[-0.0, 0.1]], [["1", 2]],
    [[True, 1.0]], [[1.0, 2.0, 3.0]], [(1.0, 2.0)], [[1e-05, 76410.1]], [[2**70, 1]],
    [[float("nan"), 1.0]], {"a": 1}, 12345678901234567890,
    [{"venue": "x", "mid_1e9": 5}], [{"venue": "x", "mid_1e9": 5, "weight": 1}],
    [{"venue": "", "mid_1e9": -5, "staleness_ms": None}], [{"mid_1e9": 5}], [{}], [None],
]


def _check_against_two_step(family: Family, payload: dict[str, Any]) -> bool:
    """Assert the fused answer (if any) is the two-step one; True if it answered.

    The bridge takes the key from the raw payload on the fused path
    (record_key), so an empty key field must fail there exactly as the
    two-step path fails on it."""
    channel = EXAMPLE_CHANNELS[family]
    direct = ENCODER.encode_payload(family, payload)
    slow = _outcome(partial(normalize_for_wire, family, payload, carry_unknown=True,
                            channel=channel))
    if direct is None:
        return False
    key = _outcome(partial(record_key, family, payload, channel))
    if key[0] == "error":
        assert slow == key, payload
        return True
    assert slow[0] == "ok", (payload, slow)
    norm = slow[1]
    assert norm.unknown_fields == ()
    assert direct == (ENCODER.encode(family, norm.value), norm.event_ts_ns), payload
    assert direct[0].startswith(wire_header(7))
    assert key[1] == norm.key
    return True


@pytest.mark.parametrize("family", FUSED, ids=str)
def test_random_mutations_answer_exactly_or_defer(family: Family) -> None:
    answered = 0
    for seed in range(400):
        answered += _check_against_two_step(family, _mutations(family, seed))
    assert answered > 40  # a good share of the mutations keep the common shape


@pytest.mark.parametrize("family", FUSED, ids=str)
def test_every_field_at_its_edges(family: Family) -> None:
    rnd = random.Random(5)
    names = [f.name for f in RECORD_SPECS[family].fields]
    for name in names:
        for value in EDGES:
            payload = example_payload(family)
            payload[name] = value
            _check_against_two_step(family, payload)
            payload.pop(name)
            _check_against_two_step(family, payload)
    for _ in range(300):  # several fields at once
        payload = example_payload(family)
        for name in rnd.sample(names, k=min(3, len(names))):
            payload[name] = rnd.choice(EDGES)
        _check_against_two_step(family, payload)


@pytest.mark.parametrize("family", FUSED, ids=str)
def test_common_shapes_take_the_fused_path(family: Family) -> None:
    payload = example_payload(family)
    assert _check_against_two_step(family, payload)
    # optional fields absent or null, and doubles sent as JSON integers
    for spec in RECORD_SPECS[family].fields:
        if not spec.required:
            sparse = {k: v for k, v in payload.items() if k != spec.name}
            assert _check_against_two_step(family, sparse), spec.name
            assert _check_against_two_step(family, {**payload, spec.name: None}), spec.name


def test_what_defers() -> None:
    prices = example_payload(Family.prices)
    for change in ({"surprise": 1}, {"symbol": None}, {"ts_ns": 1.5e18}, {"ts_ns": True},
                   {"spread_bps": float("nan")}, {"spread_bps": 2**60}, {"spread_bps": "1"},
                   {"best_bid_px_1e9": 2**63}):
        assert ENCODER.encode_payload(Family.prices, {**prices, **change}) is None, change
    fill = example_payload(Family.fills)
    fill["venue_execution_id"] = 123  # numeric id: the two-step path makes it "123"
    assert ENCODER.encode_payload(Family.fills, fill) is None
    # an unknown or odd field inside a nested record defers too
    fair = example_payload(Family.fair_price)
    assert ENCODER.encode_payload(Family.fair_price, fair) is not None
    for contributor in ({**fair["contributors"][0], "new": 1}, {"venue": "x"}, "x", None,
                        {**fair["contributors"][0], "mid_1e9": 1.5}):
        changed = {**fair, "contributors": [*fair["contributors"], contributor]}
        assert ENCODER.encode_payload(Family.fair_price, changed) is None, contributor
    assert ENCODER.encode_payload(Family.fair_price, {**fair, "contributors": {}}) is None
    # families with JSON or string-list fields, and control records, have none
    for family in (Family.markets_new, Family.traces, Family.alerts, Family.control):
        assert ENCODER.encode_payload(family, example_payload(family)) is None


def test_no_schema_id_no_fused_path() -> None:
    assert WireEncoder().encode_payload(Family.prices, example_payload(Family.prices)) is None


@pytest.mark.parametrize("feed", ["prices", "book", "mix"])
def test_the_bench_feeds_take_the_fused_path(feed: str) -> None:
    """Real traffic (the simulator's own generators): every frame of a fused
    family answers, exactly as the two-step path."""
    fused = 0
    for frame in generate(feed, 3000, 11):
        message = orjson.loads(frame)
        family = family_of_channel(message["channel"])
        if family in FUSED:
            assert _check_against_two_step(family, message["data"]), message
            fused += 1
    assert fused >= 2500


def test_levels_repeat_through_the_cache_unchanged() -> None:
    levels = [[76410.1, 0.25], [76410.2, 1e-05], [1, 3], [-0.0, 0.0]]
    first = levels_wire(levels)
    assert first is not None
    assert levels_wire([list(level) for level in levels]) == first  # cached now
    book = example_payload(Family.book)
    book["bids"] = levels
    assert _check_against_two_step(Family.book, book)
    # a bool is never the cached 1.0 / 1
    assert levels_wire([[True, 1.0]]) is None
    assert levels_wire([[1.0, True]]) is None


def test_an_empty_key_fails_on_the_fused_path_as_on_the_other() -> None:
    payload = example_payload(Family.prices)
    payload["symbol"] = ""
    assert ENCODER.encode_payload(Family.prices, payload) is not None
    outcome = _outcome(partial(record_key, Family.prices, payload, None))
    assert outcome[0] == "error" and issubclass(outcome[1], BadInputError)
    assert _check_against_two_step(Family.prices, payload)
