"""``sequence-connector``: entry point only; each command lives in its module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from connector.config import load_settings
from connector.process import exit_code, load_logged, run_settings_exit_code


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


def _run_command(config: Path | None) -> int:
    settings = load_logged(lambda: load_settings(config))
    if settings.connector.workers > 1:
        from connector.shard import run_supervisor

        return run_supervisor(settings, config)
    if settings.connector.shards:
        from connector.replicas import run_replica_exit_code

        return run_replica_exit_code(settings)
    return run_settings_exit_code(lambda: settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return exit_code(lambda: _dispatch(args))


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
