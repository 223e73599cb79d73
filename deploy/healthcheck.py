"""The image's Docker HEALTHCHECK: GET /healthz where the running connector listens.

The port and host come from the connector's own settings (its --config file
and SEQCONN__* environment, read with connector.config.load_settings), not
from one environment variable, so a port moved in the YAML file is followed.
What it reports is liveness only: /healthz answers from the first moment of
start-up for as long as the process and its event loop live; readiness is
/readyz (see deploy/README.md).

Usage: python healthcheck.py [PID]. Exit 0 (healthy) also when there is nothing to probe: observe.metrics_port 0
means the connector runs without an HTTP port, and a container running another
subcommand (simulate, schemas check) has no connector to probe. Exit 1 when
/healthz does not answer 200 or the settings cannot be read.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from connector.config import ENV_PREFIX, ConfigError, load_settings


def _connector_process(pids: list[int]) -> tuple[list[str], dict[str, str]] | None:
    """argv and environment of the first `sequence-connector run` among pids.

    In the image it is PID 1 (exec-form ENTRYPOINT), or a child of the init
    with `docker run --init`; its own environment, not this check's, holds any
    SEQCONN__* overrides it started with.
    """
    for pid in pids:
        try:
            raw_argv = Path(f"/proc/{pid}/cmdline").read_bytes()
            raw_env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue  # gone, or not ours
        argv = [a.decode(errors="replace") for a in raw_argv.split(b"\0") if a]
        if "run" in argv and any(Path(a).name == "sequence-connector" for a in argv[:2]):
            env = dict(kv.decode(errors="replace").partition("=")[::2]
                       for kv in raw_env.split(b"\0") if b"=" in kv)
            return argv, env
    return None


def _config_path(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def _probe_host(bind: str) -> str:
    if bind in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bind == "::":
        return "[::1]"
    return f"[{bind}]" if ":" in bind else bind


def main(argv: list[str]) -> int:
    # a PID argument probes that process (debugging, tests); by default the
    # container's own processes are searched, lowest PID first
    pids = ([int(a) for a in argv] if argv else
            sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
    found = _connector_process(pids)
    if found is None:
        print("no `sequence-connector run` process: nothing to probe")
        return 0
    run_argv, proc_env = found
    # only the keys that shape settings: credentials are not needed to find a port
    env = {k: v for k, v in proc_env.items() if k.startswith(ENV_PREFIX)}
    try:
        observe = load_settings(_config_path(run_argv), env=env).observe
    except ConfigError as exc:
        print(f"cannot read the connector's settings: {exc}")
        return 1
    if not observe.metrics_port:
        print("observe.metrics_port is 0: the connector runs without an HTTP port")
        return 0
    url = f"http://{_probe_host(observe.metrics_host)}:{observe.metrics_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4) as resp:
            status = resp.status
    except OSError as exc:  # URLError, HTTPError, timeouts
        print(f"{url}: {exc}")
        return 1
    print(f"{url}: {status}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
