"""The worker loop the recovery jobs share: take each pending key once it is due."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping


async def serve_due(
    pending: Mapping[str, object],
    not_before: Mapping[str, float],
    wake: asyncio.Event,
    take: Callable[[str, asyncio.AbstractEventLoop], Awaitable[None]],
) -> None:
    """Forever: call ``take(key, loop)`` for every pending key whose time has come.

    Sleeps until the earliest ``not_before`` or until ``wake`` is set by a new
    request; cancel to stop.
    """
    loop = asyncio.get_running_loop()
    while True:
        # Cleared before looking, so a request made while we work wakes us.
        wake.clear()
        now = loop.time()
        due = [key for key in pending if not_before.get(key, 0.0) <= now]
        if not due:
            waits = [not_before[key] - now for key in pending]
            try:
                await asyncio.wait_for(wake.wait(), min(waits) if waits else None)
            except TimeoutError:
                pass
            continue
        for key in due:
            await take(key, loop)
