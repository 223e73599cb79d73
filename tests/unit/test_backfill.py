"""Backfill without sockets: stop rules, emit order, watermarks, coalescing."""

from __future__ import annotations

from typing import Any

import pytest

from connector.control.backfill import Backfiller, oldest_first, page_is_old
from connector.control.due import Request
from connector.handoff import BoundedHandoff
from connector.observe.metrics import Metrics
from connector.source.rest import SequenceRest, page_rows


def fill(n: int, ts: int) -> dict[str, Any]:
    return {"venue_execution_id": f"v-{n}", "ts_unix_ns": ts}


def order(oid: str, updated: int) -> dict[str, Any]:
    return {"node_order_id": oid, "updated_unix_ns": updated}


def never(family: str, row: dict[str, Any]) -> bool:
    return False


def test_page_is_old_rules() -> None:
    page = [fill(3, 300), fill(2, 200)]
    assert not page_is_old("fills", page, never, None)  # no watermark: nothing is old
    assert page_is_old("fills", page, never, 301)
    assert not page_is_old("fills", page, never, 250)  # one item is new
    assert page_is_old("fills", page, lambda f, r: True, None)
    mixed = {"v-3"}
    assert page_is_old("fills", page, lambda f, r: r["venue_execution_id"] in mixed, 250)
    assert page_is_old("fills", [], never, None)
    # TCA has no time: only `known` stops it
    assert not page_is_old("tca", [{"node_order_id": "a"}], never, 10**30)


def test_oldest_first_dedupes_slid_items_and_keeps_newest_order_state() -> None:
    newest_first = [fill(4, 400), fill(3, 300), fill(3, 300), fill(2, 200), fill(1, 100)]
    assert [r["ts_unix_ns"] for r in oldest_first("fills", newest_first)] == [100, 200, 300, 400]
    orders = [order("b", 50), order("a", 30), order("a", 40)]  # "a" slid and changed
    assert oldest_first("orders", orders) == [order("a", 40), order("b", 50)]


def test_page_rows_accepts_envelope_and_bare_list() -> None:
    env = {"reports": [{"node_order_id": "x"}], "total": 3, "limit": 1, "offset": 0,
           "has_more": True}
    assert page_rows(env, "tca", 1, 0) == ([{"node_order_id": "x"}], True)
    assert page_rows({"fills": [{"a": 1}], "total": 1}, "fills", 5, 0) == ([{"a": 1}], False)
    assert page_rows([{"a": 1}, {"a": 2}], "fills", 2, 0)[1] is True
    assert page_rows([{"a": 1}], "fills", 2, 0)[1] is False
    assert page_rows({"fills": [], "has_more": True}, "fills", 2, 0) == ([], False)


def make(**kw: Any) -> Backfiller:
    return Backfiller(SequenceRest("http://127.0.0.1:9", "k"), BoundedHandoff(10, 10_000),
                      Metrics(), known=never, **kw)


def test_watermarks_and_stale_orders() -> None:
    bf = make()
    bf.observe("fills", fill(1, 100))
    bf.observe("fills", fill(2, 50))
    bf.observe("orders", order("a", 70))
    bf.observe("tca", {"node_order_id": "a"})
    assert bf.watermarks == {"fills": 100, "orders": 70}
    assert bf.is_stale("orders", order("a", 60))
    assert not bf.is_stale("orders", order("a", 80)) and not bf.is_stale("orders", order("b", 1))
    assert not bf.is_stale("fills", fill(1, 0))


def test_requests_coalesce_per_family_and_keep_first_watermark() -> None:
    bf = make()
    bf.observe("fills", fill(1, 100))
    for epoch in range(10):
        bf.request("fills", epoch, "gap")
        bf.observe("fills", fill(epoch + 10, 1000 + epoch))
    bf.request("orders", 1, "reconnect")
    assert bf.pending == {"fills", "orders"}
    # what a request holds is kept inside: no public read of it
    assert bf._pending["fills"] == Request(9, ["gap"], 100)  # noqa: SLF001
    assert bf._pending["orders"] == Request(1, ["reconnect"], None)  # noqa: SLF001
    with pytest.raises(ValueError):
        bf.request("prices", 1, "gap")


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        make(page_size=1001)
    with pytest.raises(ValueError):
        make(max_pages=0)
