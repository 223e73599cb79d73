"""``python -m connector.sandbox.simulator --port P --seed S --rate R``."""

from __future__ import annotations

import argparse

from connector.sandbox.simulator import SimulatorConfig, run_simulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m connector.sandbox.simulator",
                                     description="Run the local Sequence API simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200.0, help="market-data events/s")
    parser.add_argument("--api-key", action="append", dest="api_keys",
                        help="accepted API key (repeatable); default seq_test_key")
    parser.add_argument("--buffer-size", type=int, default=4096)
    parser.add_argument("--lifecycle-interval", type=float, default=2.0)
    parser.add_argument("--no-ledger", action="store_true", help="do not record sent frames")
    args = parser.parse_args(argv)
    run_simulator(SimulatorConfig(
        host=args.host, port=args.port, seed=args.seed, rate=args.rate,
        api_keys=tuple(args.api_keys or ("seq_test_key",)), buffer_size=args.buffer_size,
        lifecycle_interval=args.lifecycle_interval, ledger=not args.no_ledger,
    ))


if __name__ == "__main__":
    main()
