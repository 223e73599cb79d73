"""``python -m connector.sandbox.simulator`` as a subprocess, as other tests use it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request


def test_module_entry_point_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector.sandbox.simulator", "--port", "0", "--seed", "3",
         "--rate", "500"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("simulator listening on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[1]
        with urllib.request.urlopen(base + "/v1/health/live", timeout=5) as resp:
            assert resp.status == 200
        req = urllib.request.Request(base + "/v1/symbols",
                                     headers={"Authorization": "Bearer seq_test_key"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert any(s["symbol"] == "BTC-USD" for s in json.loads(resp.read()))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
