"""A fast ``/v1/stream`` feed server for benchmarks, in its own process.

Why not the simulator or the ``websockets`` server: a server built on the
``websockets`` library tops out near 50k msgs/s at 100% CPU, below what a
fast client can take, so it would measure itself. This one does the least a
WebSocket server can do: the RFC 6455 handshake, then frames pre-encoded
once at start (header + payload, unmasked as servers send them) concatenated
into one buffer, written as large slices of that buffer. Serving 100k frames
costs it a few ``write`` calls, and it runs in a separate process so it never
shares the measured process's CPU.

The protocol is the one the connector expects of Sequence:

- HTTP upgrade with ``Authorization: Bearer <key>`` (401 otherwise);
- the client sends ``{"subscribe": [...]}``; the server answers
  ``{"subscribed": [...], "rejected": []}`` first, then the data frames
  ``{"channel": ..., "data": ...}``;
- after the N-th frame the socket stays open and idle (pings answered), so a
  client's measurement ends at its own N-th acknowledgement, not at a close.

Per-connection knobs travel in a path prefix the connector's ``base_url``
can carry: ``/n/<count>/rate/<events per s, 0 = as fast as possible>/v1/stream``
(plain ``/v1/stream`` = every frame, full speed). Fixed-rate mode paces by
the clock: every ~1 ms it writes the frames that are due.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import multiprocessing as mp
import re
import struct
from bisect import bisect_left
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self

import orjson

from bench.feed import read_frames

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CHUNK_BYTES = 256 * 1024
PATH_RE = re.compile(r"^(?:/n/(\d+))?(?:/rate/(\d+(?:\.\d+)?))?(/v1/[^?]*)(?:\?.*)?$")
# REST history the connector may page through (backfill on start): always empty
# here, since the feed is the whole history.
EMPTY_PAGES = {"/v1/fills": "fills", "/v1/orders": "orders", "/v1/tca": "reports"}
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


def frame_header(opcode: int, size: int) -> bytes:
    first = 0x80 | opcode
    if size < 126:
        return bytes((first, size))
    if size < 1 << 16:
        return struct.pack("!BBH", first, 126, size)
    return struct.pack("!BBQ", first, 127, size)


def server_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    return frame_header(opcode, len(payload)) + payload


def accept_key(client_key: str) -> str:
    # RFC 6455 fixes SHA-1 for the handshake; it proves nothing secret
    digest = hashlib.sha1(client_key.encode() + WS_GUID, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Encoded:
    """Every frame, WebSocket-framed, in one buffer; ``offsets[i]`` starts frame i."""

    buffer: bytes
    offsets: list[int]  # len(frames) + 1 entries

    @classmethod
    def of(cls, frames: list[bytes]) -> Encoded:
        parts, offsets, at = [], [0], 0
        for payload in frames:
            framed = server_frame(payload)
            parts.append(framed)
            at += len(framed)
            offsets.append(at)
        return cls(b"".join(parts), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1


def _unmask(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return payload
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class FeedServer:
    def __init__(self, frames: list[bytes], api_key: str, host: str = "127.0.0.1") -> None:
        self.frames = frames
        self.encoded = Encoded.of(frames)
        self.channels = [frame_channel(f) for f in frames]
        self._all_channels = frozenset(self.channels)
        self._subsets: dict[tuple[frozenset[str], int], Encoded] = {}
        self.api_key = api_key
        self.host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self.connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, 0, backlog=64)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # -- one connection ---------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        sender: asyncio.Task[None] | None = None
        try:
            params = await self._handshake(reader, writer)
            if params is None:
                return
            count, rate = params
            writer.transport.set_write_buffer_limits(high=4 * CHUNK_BYTES)
            async for opcode, payload in self._client_frames(reader):
                if opcode == OP_TEXT and sender is None:
                    topics = _subscribe_topics(payload)
                    if topics is None:
                        writer.write(server_frame(orjson.dumps(
                            {"error": {"code": "INVALID_PARAMS",
                                       "message": 'expected {"subscribe": [...]}'}})))
                        continue
                    writer.write(server_frame(orjson.dumps(
                        {"subscribed": topics, "rejected": []})))
                    # a client subscribed to part of the feed (one worker of a
                    # sharded connector) gets only its channels' frames, in order
                    encoded = self._for(frozenset(topics), count)
                    sender = asyncio.create_task(
                        self._send(writer, encoded, len(encoded), rate))
                elif opcode == OP_PING:
                    writer.write(server_frame(payload, OP_PONG))
                elif opcode == OP_CLOSE:
                    writer.write(server_frame(payload[:2], OP_CLOSE))
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sender
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                         ) -> tuple[int, float] | None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        _method, path, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        match = PATH_RE.match(path)
        if match is None:
            await _http_error(writer, 404, "Not Found", "unknown path")
            return None
        if headers.get("authorization") != f"Bearer {self.api_key}":
            await _http_error(writer, 401, "Unauthorized", "missing or invalid API key")
            return None
        endpoint = match.group(3).rstrip("/")
        if endpoint in EMPTY_PAGES:
            await _http_json(writer, {EMPTY_PAGES[endpoint]: [], "total": 0, "limit": 100,
                                      "offset": 0, "has_more": False})
            return None
        if endpoint != "/v1/stream":
            await _http_error(writer, 404, "Not Found", f"{endpoint} is not served by the "
                                                        "bench feed server")
            return None
        key = headers.get("sec-websocket-key")
        if key is None or "websocket" not in headers.get("upgrade", "").lower():
            await _http_error(writer, 400, "Bad Request", "not a WebSocket upgrade")
            return None
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_key(key).encode() + b"\r\n\r\n")
        count = min(int(match.group(1)), len(self.encoded)) if match.group(1) else len(
            self.encoded)
        rate = float(match.group(2)) if match.group(2) else 0.0
        return count, rate

    async def _client_frames(self, reader: asyncio.StreamReader) -> Any:
        """Client frames as (opcode, unmasked payload); fragments are not needed here."""
        while True:
            b0, b1 = await reader.readexactly(2)
            size = b1 & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", await reader.readexactly(8))
            mask = await reader.readexactly(4) if b1 & 0x80 else b""
            payload = await reader.readexactly(size)
            yield b0 & 0x0F, _unmask(payload, mask) if mask else payload

    def _for(self, topics: frozenset[str], count: int) -> Encoded:
        """The first ``count`` frames of the feed, restricted to ``topics``."""
        if topics >= self._all_channels:
            return Encoded(self.encoded.buffer, self.encoded.offsets[:count + 1])
        cached = self._subsets.get((topics, count))
        if cached is None:
            cached = self._subsets[(topics, count)] = Encoded.of(
                [f for f, c in zip(self.frames[:count], self.channels[:count], strict=True)
                 if c in topics])
        return cached

    async def _send(self, writer: asyncio.StreamWriter, encoded: Encoded, count: int,
                    rate: float) -> None:
        buf = memoryview(encoded.buffer)
        offsets = encoded.offsets
        if rate <= 0:
            sent = 0
            while sent < count:
                # as many whole frames as fit in one chunk (at least one)
                end = min(max(bisect_left(offsets, offsets[sent] + CHUNK_BYTES), sent + 1), count)
                writer.write(buf[offsets[sent]:offsets[end]])
                sent = end
                await writer.drain()
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = 0
        while sent < count:
            due = min(count, int((loop.time() - started) * rate) + 1)
            if due > sent:
                writer.write(buf[offsets[sent]:offsets[due]])
                sent = due
                await writer.drain()
            await asyncio.sleep(0.001)


def frame_channel(frame: bytes) -> str:
    channel = orjson.loads(frame).get("channel")
    return channel if isinstance(channel, str) else ""


def _subscribe_topics(payload: bytes) -> list[str] | None:
    try:
        msg = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    topics = msg.get("subscribe") if isinstance(msg, dict) else None
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        return None
    return topics


async def _http_json(writer: asyncio.StreamWriter, payload: Any) -> None:
    body = orjson.dumps(payload)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _http_error(writer: asyncio.StreamWriter, status: int, reason: str,
                      message: str) -> None:
    body = orjson.dumps({"error": {"code": str(status), "message": message}})
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


# -- the process wrapper -------------------------------------------------------------
def _serve(frames_path: str, api_key: str, conn: Connection) -> None:
    async def main() -> None:
        server = FeedServer(read_frames(Path(frames_path)), api_key)
        await server.start()
        conn.send(server.port)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_reader(conn.fileno(), stop.set)  # any message (or EOF) means stop
        await stop.wait()
        await server.stop()

    asyncio.run(main())


class FeedServerProcess:
    """The feed server in a child process; ``base_url(n, rate)`` for clients."""

    def __init__(self, frames_path: Path, api_key: str) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(str(frames_path), api_key, child),
                                 name="bench-feed-server", daemon=True)
        self.port = 0

    def start(self, timeout_s: float = 60.0) -> Self:
        self._proc.start()
        if not self._conn.poll(timeout_s):
            self.stop()
            raise RuntimeError("feed server did not start")
        self.port = self._conn.recv()
        return self

    def base_url(self, count: int, rate: float = 0.0) -> str:
        return f"http://127.0.0.1:{self.port}/n/{count}/rate/{rate:g}"

    def stop(self) -> None:
        if self._proc.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
