"""One GET against a process's ops port, for tests that read /healthz, /readyz, /metrics."""

from __future__ import annotations

import urllib.error
import urllib.request


def http_get(url: str, timeout_s: float = 5.0) -> tuple[int, str]:
    """(status, body). An HTTP error status is returned, not raised; a port
    that does not answer (refused, reset, timed out) is (0, "")."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - test URLs
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
    except OSError:
        return 0, ""
