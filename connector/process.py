"""One connector process: settings, logging, run to the end, an exit status.

Shared by ``sequence-connector run`` (cli.py) and each worker process
(shard.py), so neither imports the other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable

from connector.config import ConfigError, Settings
from connector.errors import ConnectorError, StartupTimeoutError

log = logging.getLogger("connector")

# Exit statuses of `run` (README, "Operating it"); `check` and `schemas check`
# also exit 1 on a failed check.
EXIT_UNEXPECTED = 1  # a bug: the log line carries the traceback (JSON field `exc`)
EXIT_FATAL = 2  # refused credentials, a record Kafka refused for good, ...
EXIT_CONFIG = 3
EXIT_STARTUP_TIMEOUT = 4  # a dependency still down after connector.startup_timeout_s
EXIT_INTERRUPTED = 130


def run_settings_exit_code(load: Callable[[], Settings]) -> int:
    """Run one connector process to the end; the process exit code.

    Also the entry point of each worker process in multi-worker mode.
    """
    def run() -> int:
        asyncio.run(_run(load_logged(load)))
        return 0

    return exit_code(run)


def load_logged(load: Callable[[], Settings]) -> Settings:
    """Settings, with logging set up from them, so every later line (the
    failure included) is in the configured format. A config error is
    logged in the format the environment asks for, JSON by default."""
    from connector.observe.logs import setup_logging

    try:
        settings = load()
    except ConfigError:
        fmt = os.environ.get("SEQCONN__OBSERVE__LOG_FORMAT", "").strip().lower()
        setup_logging(fmt if fmt in ("json", "text") else "json")
        raise
    setup_logging(settings.observe.log_format, settings.observe.log_level)
    return settings


def exit_code(command: Callable[[], int]) -> int:
    """Run ``command``; a failure becomes one line on stderr and an exit status.

    Never an uncaught traceback: once logging is set up (``run``) the line is
    a log record (in JSON one object, whose ``exc`` field holds the traceback
    of an unexpected error; in text the traceback only at DEBUG); before
    that (``check``, ``schemas``, ``topics``) a plain ``sequence-connector:``
    line.
    """
    try:
        return command()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        return _failed(EXIT_CONFIG, exc)
    except StartupTimeoutError as exc:
        return _failed(EXIT_STARTUP_TIMEOUT, exc)
    except ConnectorError as exc:
        return _failed(EXIT_FATAL, exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, a status
        return _failed(EXIT_UNEXPECTED, exc)


def _failed(status: int, exc: Exception) -> int:
    from connector.observe.logs import configured_format, mask

    unexpected = status == EXIT_UNEXPECTED
    what = f"unexpected {type(exc).__name__}: {exc}" if unexpected else str(exc)
    fmt = configured_format()
    if fmt is None:
        print(f"sequence-connector: {'' if status == EXIT_CONFIG else 'fatal: '}{mask(what)}",
              file=sys.stderr)
        return status
    trace = unexpected and (fmt == "json" or log.isEnabledFor(logging.DEBUG))
    log.error(f"exiting: {what}", exc_info=exc if trace else None,
              extra={"exit_code": status, "error_type": type(exc).__name__})
    return status


async def _run(settings: Settings) -> None:
    from connector.app import Connector

    connector = Connector(settings, tune_gc=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, connector.stop)
    log.info("starting", extra={"instance": settings.connector.instance_id,
                                "topics": list(settings.sequence.stream_topics)})
    await connector.run()
    log.info("stopped")
