"""Topic strings of ``/v1/stream`` -> routing keys (pure; no I/O).

``routing`` and ``deployment:<id>`` are accepted but stay quiet, as the
simulator models no router or deployment lifecycle. ``traces:<id>`` accepts
any non-empty id; only the deployments in ``universe.DEPLOYMENTS`` emit.
"""

from __future__ import annotations

from connector.sandbox.simulator.bus import Key
from connector.sandbox.simulator.universe import PERP_SYMBOLS, PERP_VENUES, UNDERLYINGS, Universe

_BARE = {"orders", "fills", "tca", "routing", "funding", "fair_price"}


def parse_topic(topic: str, universe: Universe) -> Key | None:
    """The routing key for ``topic``, or None when the server rejects it."""
    if topic in _BARE:
        return (topic,)
    family, sep, rest = topic.partition(":")
    if not sep or not rest:
        return None
    if family in ("prices", "book"):
        symbol = universe.resolve(rest)
        return (family, symbol) if symbol else None
    if family in ("traces", "deployment"):
        return (family, rest)
    if family == "fair_price":
        return (family, rest) if rest in UNDERLYINGS else None
    if family == "funding":
        venue, sep, symbol = rest.partition(":")
        if venue not in PERP_VENUES:
            return None
        if not sep:
            return (family, venue)
        return (family, venue, symbol) if symbol in PERP_SYMBOLS else None
    return None
