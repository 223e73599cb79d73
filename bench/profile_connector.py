"""Profile the whole connector on one bench feed.

    python -m bench.profile_connector [prices|book|mix] [events] [--sampler]

Starts its own broker and registry and the bench feed server, runs the
connector in this process under cProfile and prints the result and the top
entries by own time. The profile includes start-up (schema registration,
topic creation, dedupe rebuild), which shows as time idle in ``epoll``.

cProfile charges every Python call a toll, so it inflates a path made of
many small calls. ``--sampler`` runs without it, for a sampling profiler
outside the process (``bench/stages.py`` groups its samples by stage):

    py-spy record --gil --threads -r 500 -f raw -o prices.txt -- \
        python -m bench.profile_connector prices 300000 --sampler
    python -m bench.stages prices.txt
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bench.connector_worker import run_connector, warmup_topic
from bench.feed import channels, generate, write_frames
from bench.feed_server import FeedServerProcess
from bench.run import API_KEY
from connector.sandbox.broker import EmbeddedBroker
from connector.sandbox.registry import RegistryThread


def main(argv: list[str]) -> None:
    sampler = "--sampler" in argv
    argv = [a for a in argv if a != "--sampler"]
    feed = argv[0] if argv else "prices"
    events = int(argv[1]) if len(argv) > 1 else 60_000
    with EmbeddedBroker() as broker, RegistryThread() as registry:
        frames = generate(feed, events, 1)
        path = Path(tempfile.mkdtemp()) / f"{feed}.frames"
        write_frames(path, frames)
        prefix = f"prof{uuid.uuid4().hex[:6]}"
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        warmup = warmup_topic(prefix)
        admin.create_topics([NewTopic(warmup, 1)])[warmup].result()
        with FeedServerProcess(path, API_KEY) as server:
            profile = cProfile.Profile()
            if not sampler:
                profile.enable()
            result = run_connector(
                base_url=server.base_url(events), topics=channels(frames), api_key=API_KEY,
                bootstrap=broker.bootstrap, registry_url=registry.url, prefix=prefix,
                partitions=6, events=events, record_latency=False, timeout_s=300)
            profile.disable()
    print({k: v for k, v in result.items() if not k.startswith("_")})
    if not sampler:
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main(sys.argv[1:])
