"""Run one measurement in a fresh child process and get its result back.

Each measured client (the connector, a peer, a limit) runs alone in a
``spawn``ed interpreter: its CPU time and peak RSS are its own, and nothing
imported by the harness (the registry thread, the broker handle) rides along.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

Result = dict[str, Any]


class WorkerFailed(RuntimeError):
    """The child raised, died or ran out of time; the message says which."""


def _child(target: Callable[..., Result], kwargs: dict[str, Any], conn: Connection) -> None:
    try:
        result = target(**kwargs)
        result.setdefault("peak_rss_mb", peak_rss_mb())
        conn.send(("ok", result))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def run_in_child(target: Callable[..., Result], kwargs: dict[str, Any], *,
                 limit_s: float) -> Result:
    """``target(**kwargs)`` in a fresh interpreter; WorkerFailed after ``limit_s``."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(target, kwargs, child),
                       name=f"bench-{target.__name__}", daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(limit_s):
            raise WorkerFailed(f"{target.__name__}: no result within {limit_s:.0f}s")
        status, payload = parent.recv()
    except EOFError:
        raise WorkerFailed(f"{target.__name__}: child died (exit {proc.exitcode})") from None
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    if status != "ok":
        raise WorkerFailed(f"{target.__name__}: {payload}")
    return payload  # type: ignore[no-any-return]


def peak_rss_mb() -> float:
    """This process's own peak resident set, in MiB.

    Not ``ru_maxrss``: Linux carries it across fork+exec, so a spawned child
    would report the parent's RSS at fork time (the harness holds the feed,
    a few hundred MB) whenever that is larger. ``VmHWM`` is the high-water
    mark of the current address space only.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """CPU seconds of this process, all threads (librdkafka's included)."""
    return time.process_time()
