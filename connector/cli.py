"""``sequence-connector``: entry point only; each command lives in its module."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from connector.config import ConfigError, Settings, load_settings
from connector.errors import ConnectorError, StartupTimeoutError

log = logging.getLogger("connector")

# Exit statuses of `run` (README, "Operating it"); `check` and `schemas check`
# also exit 1 on a failed check.
EXIT_UNEXPECTED = 1  # a bug: the log line carries the traceback (JSON field `exc`)
EXIT_FATAL = 2  # refused credentials, a record Kafka refused for good, ...
EXIT_CONFIG = 3
EXIT_STARTUP_TIMEOUT = 4  # a dependency still down after connector.startup_timeout_s
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sequence-connector",
        description="Stream Sequence's real-time events into Kafka as exact Avro records.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the connector against real Sequence, Kafka and registry",
                         description="Run the connector. Settings come from --config (YAML) "
                         "and SEQCONN__<SECTION>__<KEY> environment variables; the API key "
                         "from SEQUENCE_API_KEY or SEQUENCE_API_KEY_FILE.")
    run.add_argument("--config", type=Path, help="YAML settings file")

    demo = sub.add_parser("demo", help="run everything embedded: broker, registry, simulator, "
                          "connector; then print what Kafka holds")
    demo.add_argument("--duration", type=float, default=30.0, help="seconds to run (default 30)")
    demo.add_argument("--summary-json", type=Path, help="write {'topics': {topic: count}} here")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--rate", type=float, default=1000.0, help="simulated events/s")
    demo.add_argument("--broker", choices=("tansu", "kafka"), default="tansu",
                      help="embedded tansu (default: needs nothing) or Apache Kafka (needs java)")

    schemas = sub.add_parser("schemas", help="list, register or check the Avro schemas",
                             description="Work with the schemas in avro/ and the registry. "
                             "`check` exits 1 when a schema would be refused under the "
                             "subject's compatibility level: run it before a deploy.")
    schemas.add_argument("action", choices=("list", "register", "check"))
    schemas.add_argument("--config", type=Path, help="YAML settings file")

    topics = sub.add_parser("topics", help="create the connector's topics",
                            description="Create missing topics with the right partitions and "
                            "cleanup policies: compact for orders, fills and markets; delete "
                            "elsewhere. Existing topics are left as they are.")
    topics.add_argument("action", choices=("create",))
    topics.add_argument("--config", type=Path, help="YAML settings file")
    topics.add_argument("--partitions", type=int, help="default: kafka.partitions")
    topics.add_argument("--replication-factor", type=int,
                        help="default: kafka.replication_factor (-1: broker default)")

    chk = sub.add_parser("check", help="check config and connectivity to Sequence, Kafka "
                         "and the registry",
                         description="Validate the settings, then reach Sequence (with the "
                         "API key), Kafka and the schema registry; one verdict per component. "
                         "Exits 1 when any check fails.")
    chk.add_argument("--config", type=Path, help="YAML settings file")

    sim = sub.add_parser("simulate", help="run the Sequence simulator alone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8080)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--rate", type=float, default=200.0, help="market-data events/s")
    sim.add_argument("--api-key", action="append", dest="api_keys",
                     help="accepted API key (repeatable; default seq_test_key)")
    return p


def run_settings_exit_code(load: Callable[[], Settings]) -> int:
    """Run one connector process to the end; the process exit code.

    Also the entry point of each worker process in multi-worker mode.
    """
    def run() -> int:
        asyncio.run(_run(_load_logged(load)))
        return 0

    return _exit_code(run)


def _load_logged(load: Callable[[], Settings]) -> Settings:
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


def _exit_code(command: Callable[[], int]) -> int:
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


def _run_command(config: Path | None) -> int:
    settings = _load_logged(lambda: load_settings(config))
    if settings.connector.workers > 1:
        from connector.shard import run_supervisor

        return run_supervisor(settings, config)
    return run_settings_exit_code(lambda: settings)


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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return _exit_code(lambda: _dispatch(args))


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        return _run_command(args.config)
    if args.command == "demo":
        from connector.demo import run_demo

        return run_demo(args.duration, args.summary_json, args.seed, args.rate, args.broker)
    if args.command in ("schemas", "topics", "check"):
        from connector import operations as ops

        settings = load_settings(args.config)
        if args.command == "check":
            return ops.check(settings, sys.stdout)
        if args.command == "topics":
            return ops.topics_create(settings, sys.stdout, args.partitions,
                                     args.replication_factor)
        action = {"list": ops.schemas_list, "register": ops.schemas_register,
                  "check": ops.schemas_check}[args.action]
        return action(settings, sys.stdout)
    if args.command == "simulate":
        from connector.sandbox.simulator import SimulatorConfig, run_simulator

        keys = tuple(args.api_keys or ("seq_test_key",))
        run_simulator(SimulatorConfig(host=args.host, port=args.port, seed=args.seed,
                                      rate=args.rate, api_keys=keys))
        return 0
    return 1
