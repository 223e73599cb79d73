"""Order, fill and TCA lifecycles, and the bounded history REST serves.

An order is born ``PENDING`` (filled 0), gets 1-4 fills, each followed by an
``orders`` snapshot (``PARTIALLY_FILLED`` then ``COMPLETED``); about one in
ten is ``CANCELLED`` part-way (possibly before any fill). Fill quantities
sum exactly to the order's final ``filled_qty_1e8``. A ``tca`` report
follows every ``COMPLETED`` order. Each step of this engine emits 1-3
events. Everything published is also kept (last ``HISTORY`` of each kind)
for ``/v1/orders``, ``/v1/fills`` and ``/v1/tca``, so REST and the stream
agree. Payload dicts are never mutated after publishing: a state change is
a fresh dict.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.sandbox.simulator.bus import Event
from connector.sandbox.simulator.universe import INSTRUMENTS, Instrument

HISTORY = 100_000
MAX_ACTIVE = 6
CLIENTS = ("desk-alpha", "desk-beta", "muhammad")
_MIX = 0x9E3779B1  # odd, so x -> x*_MIX mod 2**32 is a bijection: ids never repeat


@dataclass
class _Order:
    inst: Instrument
    state: dict[str, Any]
    plan: list[int]  # remaining fill quantities, in order
    cancel_after: int | None  # number of fills after which the order is cancelled
    arrival_1e9: int
    half_spread_bps: int
    fills: list[dict[str, Any]] = field(default_factory=list)


class Trading:
    def __init__(self, seed: int, top: Callable[[str], tuple[int, int]],
                 publish: Callable[[Event], None], clock: Callable[[], int]) -> None:
        self.rng = random.Random(f"trading:{seed}")
        self.salt = (seed * 2_654_435_761) & 0xFFFFFFFF
        self.top = top  # symbol -> (best bid 1e9, best ask 1e9)
        self.publish = publish
        self.clock = clock
        self.active: list[_Order] = []
        self.orders: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.fills: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.tca: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.n_orders = 0
        self.n_fills = 0
        self.duplicate_fills = 0  # fault knob: re-publish the next N fills

    def _id(self, n: int) -> str:
        return f"{(n * _MIX + self.salt) & 0xFFFFFFFF:08x}"

    def step(self) -> None:
        rng = self.rng
        if len(self.active) < 2 or (len(self.active) < MAX_ACTIVE and rng.random() < 0.3):
            self._open()
        else:
            self._advance(self.active[rng.randrange(len(self.active))])

    def _open(self) -> None:
        rng = self.rng
        inst = INSTRUMENTS[rng.randrange(len(INSTRUMENTS))]
        side = "buy" if rng.random() < 0.5 else "sell"
        if inst.is_prediction:
            qty = rng.randint(10, 500) * 100_000_000
        else:
            qty = inst.lot_1e8 * rng.randint(1, 20) // 4
        n = rng.randint(1, 4)
        cuts = sorted(rng.sample(range(1, qty), n - 1))
        plan = [b - a for a, b in zip([0, *cuts], [*cuts, qty], strict=True)]
        cancel_after = rng.randrange(n) if rng.random() < 0.1 else None
        self.n_orders += 1
        leg = _leg(inst)
        now = self.clock()
        bid, ask = self.top(inst.symbol)
        mid = (bid + ask) // 2
        state = {
            "node_order_id": f"graph:graph_{self._id(self.n_orders)}:{leg}:1",
            "client_id": CLIENTS[rng.randrange(len(CLIENTS))],
            "client_order_id": f"order-{self.n_orders:06d}",
            "symbol": inst.symbol,
            "side": side,
            "qty_1e8": qty,
            "filled_qty_1e8": 0,
            "status": "PENDING",
            "created_unix_ns": now,
            "updated_unix_ns": now,
        }
        half = round((ask - bid) * 5_000 / mid) if mid else 0
        order = _Order(inst, state, plan, cancel_after, mid, half)
        self.active.append(order)
        self._record_order(state)

    def _advance(self, order: _Order) -> None:
        if order.cancel_after == len(order.fills):
            self._update(order, "CANCELLED", order.state["filled_qty_1e8"])
            self.active.remove(order)
            return
        rng = self.rng
        inst, st = order.inst, order.state
        qty = order.plan.pop(0)
        venue = inst.venues[rng.randrange(len(inst.venues))]
        bid, ask = self.top(inst.symbol)
        slip = rng.randint(0, 1) * inst.tick_1e9
        price = ask + slip if st["side"] == "buy" else max(bid - slip, inst.tick_1e9)
        fee_bps = rng.randint(0, 2) if inst.is_prediction else rng.randint(1, 3)
        self.n_fills += 1
        fill = {
            "node_order_id": st["node_order_id"],
            "venue_execution_id": f"{venue}-{self._id(self.n_fills + 0x51ED)}",
            "symbol": inst.symbol,
            "side": st["side"],
            "qty_1e8": qty,
            "price_1e9": price,
            "fee_1e9": price * qty * fee_bps // 1_000_000_000_000,
            "edge_id": f"venue-edge-{venue}",
            "ts_unix_ns": self.clock(),
        }
        order.fills.append(fill)
        self.fills.append(fill)
        self.publish(Event("fills", (("fills",),), fill))
        if self.duplicate_fills > 0:
            self.duplicate_fills -= 1
            self.publish(Event("fills", (("fills",),), fill))
        filled = st["filled_qty_1e8"] + qty
        done = not order.plan
        self._update(order, "COMPLETED" if done else "PARTIALLY_FILLED", filled)
        if done:
            self.active.remove(order)
            self._report(order)

    def _update(self, order: _Order, status: str, filled: int) -> None:
        order.state = {**order.state, "status": status, "filled_qty_1e8": filled,
                       "updated_unix_ns": self.clock()}
        self._record_order(order.state)

    def _record_order(self, state: dict[str, Any]) -> None:
        oid = state["node_order_id"]
        # Assignment keeps the key's place, so the dict stays in creation order.
        self.orders[oid] = state
        if len(self.orders) > HISTORY:
            self.orders.popitem(last=False)
        self.publish(Event("orders", (("orders",),), state))

    def _report(self, order: _Order) -> None:
        st, fills, inst = order.state, order.fills, order.inst
        filled = sum(f["qty_1e8"] for f in fills)
        vwap = sum(f["price_1e9"] * f["qty_1e8"] for f in fills) // filled
        fees = sum(f["fee_1e9"] for f in fills)
        notional = vwap * filled // 100_000_000
        sign = 1 if st["side"] == "buy" else -1
        arrival = order.arrival_1e9 or vwap
        fee_bps = round(fees * 10_000 / notional) if notional else 0
        expected_fee = 1 if inst.is_prediction else 2
        shortfall = round(sign * (vwap - arrival) * 10_000 / arrival)
        report: dict[str, Any] = {
            "node_order_id": st["node_order_id"],
            "client_id": st["client_id"],
            "symbol": inst.symbol,
            "side": st["side"].upper(),
            "achieved_vwap_1e9": vwap,
            "expected_fill_1e9": arrival,
            "total_fees_1e9": fees,
            "fee_cost_bps": fee_bps,
            "expected_fee_bps": expected_fee,
            "fee_prediction_error_bps": fee_bps - expected_fee,
            "spread_cost_bps": order.half_spread_bps,
            "market_impact_bps": shortfall - order.half_spread_bps,
            "implementation_shortfall_bps": shortfall + fee_bps,
            "savings_vs_benchmark_bps": self.rng.randint(-2, 6),
            "is_prediction": inst.is_prediction,
            "execution_time_ms": (fills[-1]["ts_unix_ns"] - st["created_unix_ns"]) // 1_000_000,
            "num_fills": len(fills),
        }
        if inst.is_prediction:
            achieved_p = round(vwap / 100_000)
            arrival_p = round(arrival / 100_000)
            report["achieved_implied_prob_bps"] = achieved_p
            report["arrival_implied_prob_bps"] = arrival_p
            report["probability_slippage_bps"] = sign * (arrival_p - achieved_p)
        self.tca.append(report)
        self.publish(Event("tca", (("tca",),), report))


def _leg(inst: Instrument) -> str:
    if inst.kind == "cex":
        return inst.symbol.split("-")[0].lower() + "_leg"
    outcome = "no" if inst.symbol.endswith(":NO") else "yes"
    if inst.kind == "polymarket":
        return "poly_leg"
    return f"kalshi_{outcome}"
