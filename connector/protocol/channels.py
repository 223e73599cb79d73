"""Sequence channel string -> record family.

Suffixes (symbol, venue, deployment id, underlying) select *which* data a
subscription gets; they never pick a topic, so a new symbol can never create
a new Kafka topic. The suffix ends up in the record key instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from connector.errors import UnknownChannelError
from connector.protocol.families import LIFECYCLE_FAMILIES, Family

# Channels that exist without a suffix (documented "all" subscriptions).
_BARE_CHANNELS: dict[str, Family] = {
    "orders": Family.orders,
    "fills": Family.fills,
    "tca": Family.tca,
    "funding": Family.funding,
    "fair_price": Family.fair_price,
}

# Channels that take ":<suffix>". A prediction-market symbol itself contains
# ':' ("polymarket:7116..."), so only the first ':' separates the prefix.
_SUFFIXED_CHANNELS: dict[str, Family] = {
    "prices": Family.prices,
    "book": Family.book,
    "traces": Family.traces,
    "funding": Family.funding,
    "fair_price": Family.fair_price,
}


def split_channel(channel: str) -> tuple[str, str | None]:
    """Return (prefix, suffix or None) of a channel string."""
    prefix, sep, suffix = channel.partition(":")
    return prefix, (suffix if sep else None)


# Channel strings repeat endlessly on a live socket; caching the answer keeps
# routing to one dict lookup. Failures are not cached (they raise).
@lru_cache(maxsize=4096)
def family_of_channel(channel: str) -> Family:
    """Route a /v1/stream channel to its family.

    Accepted: ``prices:<s>``, ``book:<s>``, ``orders``, ``fills``, ``tca``,
    ``traces:<id>``, ``funding``, ``funding:<v>``, ``funding:<v>:<s>``,
    ``fair_price``, ``fair_price:<u>``. Anything else raises
    ``UnknownChannelError``.
    """
    known = _ROUTED.get(channel)
    if known is not None:
        return known
    family = _route(channel)
    if len(_ROUTED) >= 4096:  # channels are few; never grow unbounded
        _ROUTED.clear()
    _ROUTED[channel] = family
    return family


_ROUTED: dict[str, Family] = {}  # channel -> family, for the hot path


def _route(channel: str) -> Family:
    bare = _BARE_CHANNELS.get(channel)
    if bare is not None:
        return bare
    prefix, suffix = split_channel(channel)
    family = _SUFFIXED_CHANNELS.get(prefix)
    if family is None or not suffix:
        raise UnknownChannelError(f"unknown channel {channel!r}", field="channel")
    if family is Family.funding:
        venue, sep, symbol = suffix.partition(":")
        if not venue or (sep and not symbol):
            raise UnknownChannelError(f"malformed funding channel {channel!r}", field="channel")
    return family


def channel_suffix(channel: str) -> str | None:
    """The filter part after the first ':' (``None`` for bare channels)."""
    return split_channel(channel)[1] or None


def families_of(stream_topics: Iterable[str], lifecycle: Iterable[str] = (),
                sse: Iterable[str] = ()) -> set[Family]:
    """The families a set of subscriptions can produce (``stream_topics`` of
    /v1/stream, lifecycle socket names, SSE stream names). A topic we cannot
    route is left out: Sequence or the bridge reports it with a control record."""
    families: set[Family] = set()
    for topic in stream_topics:
        try:
            families.add(family_of_channel(topic))
        except UnknownChannelError:
            continue
    families.update(LIFECYCLE_FAMILIES[name] for name in lifecycle)
    families.update(Family(name) for name in sse)
    return families

