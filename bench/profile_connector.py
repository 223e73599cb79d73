"""Profile the whole connector (cProfile) on one bench feed: python -m bench.profile_connector prices"""
import cProfile
import pstats
import sys
import tempfile
import uuid
from pathlib import Path

from bench.connector_worker import run_connector
from bench.feed import channels, generate, write_frames
from bench.feed_server import FeedServerProcess
from bench.run import API_KEY
from connector.sandbox.broker import EmbeddedBroker
from connector.sandbox.registry import RegistryThread

feed = sys.argv[1] if len(sys.argv) > 1 else "prices"; n = 60000
if __name__ == "__main__":
    with EmbeddedBroker() as broker, RegistryThread() as reg:
        frames = generate(feed, n, 1); d = Path(tempfile.mkdtemp()); path = d / "f.frames"
        write_frames(path, frames); subs = channels(frames)
        with FeedServerProcess(path, API_KEY) as server:
            kw = dict(base_url=server.base_url(n), topics=subs, api_key=API_KEY, bootstrap=broker.bootstrap,
                      registry_url=reg.url, prefix=f"p{uuid.uuid4().hex[:6]}", partitions=6, events=n,
                      record_latency=False, timeout_s=200)
            from confluent_kafka.admin import AdminClient, NewTopic

            from bench.connector_worker import warmup_topic
            a = AdminClient({"bootstrap.servers": broker.bootstrap})
            a.create_topics([NewTopic(warmup_topic(kw["prefix"]), 1)])[warmup_topic(kw["prefix"])].result()
            prof = cProfile.Profile()
            prof.enable(); r = run_connector(**kw); prof.disable()
            print({k: v for k, v in r.items() if not k.startswith("_")})
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)
