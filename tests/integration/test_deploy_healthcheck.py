"""The image's HEALTHCHECK script (deploy/healthcheck.py) against a real
`sequence-connector run` process, and the start-up behaviour the deployment
docs and probes rely on: /healthz is 200 while /readyz is still 503.

The connector is started with every dependency unreachable, so it stays in
start-up for the whole test; nothing here needs a broker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"
CONNECTOR = Path(sys.executable).with_name("sequence-connector")
UNREACHABLE = "127.0.0.1:1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, metrics_port: int) -> Path:
    path.write_text(yaml.safe_dump({
        "sequence": {"base_url": f"http://{UNREACHABLE}"},
        "kafka": {"bootstrap_servers": UNREACHABLE},
        "schema_registry": {"url": f"http://{UNREACHABLE}"},
        "observe": {"metrics_port": metrics_port, "metrics_host": "127.0.0.1",
                    "log_format": "text", "log_level": "WARNING"},
    }))
    return path


class Running:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def launch() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for r in started:
        r.stop()


def run_connector(launch: list[Running], config: Path, **env: str) -> Running:
    if not CONNECTOR.exists():
        pytest.skip(f"{CONNECTOR} is not installed (make install)")
    base = {"PATH": os.environ["PATH"], "SEQUENCE_API_KEY": "seq_test_key"}
    r = Running([str(CONNECTOR), "run", "--config", str(config)], {**base, **env})
    launch.append(r)
    return r


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def wait_for_healthz(r: Running, port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert r.proc.poll() is None, f"connector exited with {r.proc.returncode}"
        try:
            if status(f"http://127.0.0.1:{port}/healthz") == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    pytest.fail("the connector never answered /healthz")


def healthcheck(pid: int) -> subprocess.CompletedProcess[str]:
    # a clean environment: whatever the check learns, it learns from the process
    return subprocess.run([sys.executable, str(HEALTHCHECK), str(pid)],
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=30, check=False)


def test_healthz_answers_during_start_up_while_readyz_does_not(
    launch: list[Running], tmp_path: Path,
) -> None:
    port = free_port()
    r = run_connector(launch, write_config(tmp_path / "c.yaml", port))
    wait_for_healthz(r, port)
    # Kafka and the registry are unreachable: start-up is not done
    assert status(f"http://127.0.0.1:{port}/readyz") == 503
    result = healthcheck(r.proc.pid)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"127.0.0.1:{port}/healthz: 200" in result.stdout


def test_healthcheck_follows_the_port_of_the_running_process(
    launch: list[Running], tmp_path: Path,
) -> None:
    """The YAML says one port, the process's environment moves it: the check
    reads both as the connector did, not its own environment."""
    in_file, moved = free_port(), free_port()
    r = run_connector(launch, write_config(tmp_path / "c.yaml", in_file),
                      SEQCONN__OBSERVE__METRICS_PORT=str(moved))
    wait_for_healthz(r, moved)
    result = healthcheck(r.proc.pid)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"127.0.0.1:{moved}/healthz: 200" in result.stdout


def test_port_zero_means_nothing_to_probe(launch: list[Running], tmp_path: Path) -> None:
    r = run_connector(launch, write_config(tmp_path / "c.yaml", 0))
    result = healthcheck(r.proc.pid)
    assert r.proc.poll() is None, "the connector should still be starting"
    assert result.returncode == 0, result.stdout + result.stderr
    assert "metrics_port is 0" in result.stdout


def test_unhealthy_when_healthz_does_not_answer(launch: list[Running], tmp_path: Path) -> None:
    """A process that looks like the connector but serves nothing on its port."""
    stand_in = tmp_path / "sequence-connector"
    stand_in.write_text("import time\ntime.sleep(60)\n")
    config = write_config(tmp_path / "c.yaml", free_port())
    r = Running([sys.executable, str(stand_in), "run", "--config", str(config)],
                {"PATH": os.environ["PATH"]})
    launch.append(r)
    result = healthcheck(r.proc.pid)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "/healthz" in result.stdout


def test_other_subcommands_have_nothing_to_probe(launch: list[Running]) -> None:
    r = Running([sys.executable, "-c", "import time; time.sleep(60)"],
                {"PATH": os.environ["PATH"]})
    launch.append(r)
    result = healthcheck(r.proc.pid)
    assert result.returncode == 0
    assert "nothing to probe" in result.stdout
