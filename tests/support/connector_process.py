"""``sequence-connector run`` as a real process, its stderr kept apart so that
every line can be checked as a JSON log record, and its ops port asked
over HTTP (``/healthz``, ``/readyz``, ``/metrics``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from connector.sandbox.broker import free_port
from tests.support.http import http_get

LogLine = dict[str, Any]


class ConnectorRun:
    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.env = {**env, "SEQCONN__OBSERVE__METRICS_PORT": str(self.port),
                    "SEQCONN__OBSERVE__METRICS_HOST": "127.0.0.1"}
        self.stderr_path = workdir / "connector.stderr"
        self.stdout_path = workdir / "connector.stdout"
        self.proc: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []

    def start(self) -> ConnectorRun:
        err = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in cleanup
        out = open(self.stdout_path, "wb")  # noqa: SIM115 - closed in cleanup
        self._files = [err, out]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "run"], env=self.env, stdout=out, stderr=err,
            stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    # -- the process -------------------------------------------------------------------
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout_s: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout_s)

    def terminate(self, timeout_s: float = 45.0) -> int:
        """SIGTERM, as Kubernetes stops a pod; the exit status."""
        assert self.proc is not None
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
        return self.wait(timeout_s)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for f in self._files:
            f.close()
        self._files = []

    # -- what it wrote -------------------------------------------------------------------
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def lines(self) -> list[LogLine]:
        """Every complete stderr line, each parsed as one JSON object (an
        AssertionError names the first line that is not)."""
        text = self.stderr()
        complete = text[: text.rfind("\n") + 1] if self.alive() else text
        parsed = []
        for raw in complete.splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                raise AssertionError(f"stderr line is not JSON: {raw[:300]!r}") from None
            assert isinstance(line, dict), raw[:300]
            parsed.append(line)
        return parsed

    def wait_line(self, match: Callable[[LogLine], bool], timeout_s: float,
                  what: str) -> LogLine:
        deadline = time.monotonic() + timeout_s
        while True:
            found = next((line for line in self.lines() if match(line)), None)
            if found is not None:
                return found
            if not self.alive():
                raise AssertionError(f"connector exited ({self.proc and self.proc.returncode}) "
                                     f"before {what}:\n{self.stderr()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout_s}s:\n{self.stderr()[-3000:]}")
            time.sleep(0.1)

    # -- its ops port ---------------------------------------------------------------------
    def get(self, path: str) -> tuple[int, str]:
        return http_get(f"http://127.0.0.1:{self.port}{path}")

    def get_json(self, path: str) -> tuple[int, dict[str, Any]]:
        status, body = self.get(path)
        return status, json.loads(body)

    def wait_http(self, path: str, status: int, timeout_s: float) -> str:
        """Until ``path`` answers ``status``; its body."""
        deadline = time.monotonic() + timeout_s
        last: tuple[int, str] | str = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"connector exited before {path} gave {status}:\n"
                                     f"{self.stderr()[-3000:]}")
            try:
                last = self.get(path)
            except OSError as exc:  # the port is not open yet
                last = str(exc)
            if isinstance(last, tuple) and last[0] == status:
                return last[1]
            time.sleep(0.1)
        raise AssertionError(f"{path} never answered {status} in {timeout_s}s; last: {last}")

    def metric(self, name: str, **labels: str) -> float:
        """One sample of ``/metrics`` (0 when the series does not exist yet)."""
        _, body = self.get("/metrics")
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        pattern = re.compile(rf"^{re.escape(name)}(\{{([^}}]*)\}})? (\S+)$", re.MULTILINE)
        for m in pattern.finditer(body):
            have = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
            if have == want:
                return float(m.group(3))
        return 0.0
