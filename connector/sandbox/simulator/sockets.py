"""WebSocket endpoints: the unified ``/v1/stream`` and the lifecycle sockets.

Client -> server on ``/v1/stream``: ``{"subscribe": [...]}`` is answered by
``{"subscribed": [...], "rejected": [...]}`` before any event of those
topics; ``{"unsubscribe": [...]}`` by ``{"unsubscribed": [...]}`` (topics
that were subscribed and are now dropped). Anything else (invalid JSON, no
known key, a non-list) gets an error-envelope frame and the socket stays.
Frames are uncompressed text; one writer task per socket sends them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import WSMsgType, web

from connector.sandbox.simulator.bus import Event
from connector.sandbox.simulator.errors import envelope, error_response
from connector.sandbox.simulator.faults import garbage_frame
from connector.sandbox.simulator.lifecycle import RING
from connector.sandbox.simulator.state import Conn, SimState
from connector.sandbox.simulator.topics import parse_topic

MAX_CLIENT_MSG = 1 << 20
Send = Callable[[bytes], Awaitable[None]]


def handshake_gate(state: SimState, request: web.Request) -> web.Response | None:
    """The HTTP answer instead of an upgrade (fault or auth failure), if any."""
    status = state.faults.take_handshake()
    if status is not None:
        retry = state.faults.handshake_retry_after if status in (429, 503) else None
        return error_response(status, "simulated handshake failure", retry_after=retry)
    if not state.auth.socket_ok(request):
        return error_response(401, "missing or invalid API key (use Authorization: Bearer "
                                   "or ?ticket=)")
    return None


async def write_loop(state: SimState, conn: Conn, send: Send) -> None:
    outbox, stats, record, faults = conn.outbox, state.stats, conn.record, state.faults
    while True:
        frames = outbox.take()
        if not frames:
            outbox.wake.clear()
            await outbox.wake.wait()
            continue
        for channel, frame, gap in frames:
            if faults.stall_until:
                await faults.wait_if_stalled()
            await send(frame)
            record.record(frame)
            if gap:
                stats.gaps += 1
                stats.dropped += gap
                continue
            stats.sent[channel or "control"] += 1
            if conn.garbage and channel is not None:
                kind = conn.garbage.popleft()
                await send(garbage_frame(kind, channel))
                stats.garbage += 1
                record.record({"_garbage": kind})


def _error_frame(code: str, message: str) -> bytes:
    return orjson.dumps(envelope(code, message))


def on_client_message(state: SimState, conn: Conn, text: str) -> None:
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        conn.outbox.push_control(_error_frame("BAD_REQUEST", "message is not valid JSON"))
        return
    if not isinstance(msg, dict) or not ({"subscribe", "unsubscribe"} & msg.keys()):
        conn.outbox.push_control(_error_frame(
            "INVALID_PARAMS", 'expected {"subscribe": [...]} or {"unsubscribe": [...]}'))
        return
    for verb in ("subscribe", "unsubscribe"):
        if verb not in msg:
            continue
        topics = msg[verb]
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            conn.outbox.push_control(_error_frame("INVALID_PARAMS",
                                                  f"{verb} must be a list of topic strings"))
            continue
        if verb == "subscribe":
            accepted, rejected = [], []
            for topic in topics:
                key = parse_topic(topic, state.universe)
                if key is None:
                    rejected.append(topic)
                else:
                    state.subscribe(conn, topic, key)
                    accepted.append(topic)
            conn.record.add_topics(accepted)
            conn.outbox.push_control(orjson.dumps({"subscribed": accepted, "rejected": rejected}))
        else:
            dropped = [t for t in topics if state.unsubscribe(conn, t)]
            conn.outbox.push_control(orjson.dumps({"unsubscribed": dropped}))


async def _serve(state: SimState, request: web.Request, ws: web.WebSocketResponse,
                 setup: Callable[[Conn], None], reader: Callable[[Conn, str], None]) -> None:
    transport = request.transport
    closers: set[asyncio.Task[bool]] = set()

    async def abort(code: int | None) -> None:
        # 1006 cannot travel in a close frame: it means "gone without one".
        if code is None or code == 1006:
            if transport is not None:
                transport.abort()
        else:
            task = asyncio.ensure_future(ws.close(code=code, message=b"simulated fault"))
            closers.add(task)
            task.add_done_callback(closers.discard)

    conn = state.open_conn(request.path, abort)
    setup(conn)

    async def send(frame: bytes) -> None:
        await ws.send_frame(frame, WSMsgType.TEXT)

    writer = asyncio.create_task(write_loop(state, conn, send))
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                reader(conn, msg.data)
            elif msg.type is WSMsgType.BINARY:
                reader(conn, msg.data.decode(errors="replace"))
    finally:
        writer.cancel()
        state.close_conn(conn)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


async def stream_handler(state: SimState, request: web.Request) -> web.StreamResponse:
    denied = handshake_gate(state, request)
    if denied is not None:
        return denied
    # Query parameters are ignored on purpose: subscription is a message.
    ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_CLIENT_MSG)
    await ws.prepare(request)
    await _serve(state, request, ws, lambda conn: None,
                 lambda conn, text: on_client_message(state, conn, text))
    return ws


def lifecycle_handler(name: str, key: tuple[str, str]
                      ) -> Callable[[SimState, web.Request], Awaitable[web.StreamResponse]]:
    async def handler(state: SimState, request: web.Request) -> web.StreamResponse:
        denied = handshake_gate(state, request)
        if denied is not None:
            return denied
        ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_CLIENT_MSG,
                                   heartbeat=state.config.lifecycle_ping_interval)
        await ws.prepare(request)

        def setup(conn: Conn) -> None:
            # Replay and registration happen in one synchronous step, so no
            # live event can fall between them or be sent twice.
            sub = state.subscribe(conn, name, key, bare=True)
            sub.cap = max(sub.cap, 2 * RING)
            conn.record.add_topics([name])
            for evt in state.lifecycle.ring(key):
                sub.push(Event("lifecycle", (key,), evt))

        await _serve(state, request, ws, setup, lambda conn, text: None)
        return ws

    return handler
