"""Server-sent event endpoints: ``/v1/tca/stream`` and ``/v1/alerts/stream``.

Framing: ``event: <name>``, ``id: <n>`` (per connection, from 1),
``data: <json>``, blank line. A ``: connected`` comment opens the stream so
headers flush at once, and a ``: keep-alive`` comment follows every
``KEEPALIVE_S`` seconds of silence. A slow reader gets ``event: gap`` with
data ``{"channel": ..., "gap": {"dropped": N}}`` (see ``bus.py``). The ledger
records each frame as ``{"event", "id", "data"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from connector.sandbox.simulator.bus import gap_frame
from connector.sandbox.simulator.errors import error_response
from connector.sandbox.simulator.state import SimState

KEEPALIVE_S = 15.0


def sse_handler(channel: str, event_name: str
                ) -> Callable[[SimState, web.Request], Awaitable[web.StreamResponse]]:
    async def handler(state: SimState, request: web.Request) -> web.StreamResponse:
        if not state.auth.bearer_ok(request):
            return error_response(401, "missing or invalid API key")
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        })
        await resp.prepare(request)
        transport = request.transport

        async def abort(code: int | None) -> None:
            if transport is not None:
                transport.abort()

        conn = state.open_conn(request.path, abort)
        sub = state.subscribe(conn, channel, (channel,))
        conn.record.add_topics([channel])
        name = event_name.encode()
        seq = 0
        try:
            await resp.write(b": connected\n\n")
            while True:
                if not sub.buf and not sub.dropped:
                    conn.outbox.wake.clear()
                    try:
                        await asyncio.wait_for(conn.outbox.wake.wait(), KEEPALIVE_S)
                    except TimeoutError:
                        await resp.write(b": keep-alive\n\n")
                    continue
                if state.faults.stall_until:
                    await state.faults.wait_if_stalled()
                if sub.dropped:
                    n, sub.dropped = sub.dropped, 0
                    seq += 1
                    body = gap_frame(channel, n)
                    await resp.write(b"event: gap\nid: %d\ndata: %s\n\n" % (seq, body))
                    conn.record.record(b'{"event":"gap","id":"%d","data":%s}' % (seq, body))
                    state.stats.gaps += 1
                    state.stats.dropped += n
                while sub.buf:
                    raw = sub.buf.popleft().raw()
                    seq += 1
                    await resp.write(b"event: %s\nid: %d\ndata: %s\n\n" % (name, seq, raw))
                    conn.record.record(b'{"event":"%s","id":"%d","data":%s}' % (name, seq, raw))
                    state.stats.sent[f"sse:{channel}"] += 1
        except ConnectionError:
            pass  # the client went away; nothing to tell it
        finally:
            state.close_conn(conn)
            with contextlib.suppress(Exception):
                await resp.write_eof()
        return resp

    return handler
