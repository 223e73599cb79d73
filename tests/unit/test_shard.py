"""The shard plan and the supervisor's metric merge: pure functions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from connector.config import Settings, load_settings
from connector.observe.metrics import Metrics
from connector.shard import WorkersCollector, shard_plan, worker_overrides


def settings(topics: tuple[str, ...], lifecycle: tuple[str, ...] = (),
             sse: tuple[str, ...] = (), workers: int = 2) -> Settings:
    return load_settings(env={"SEQUENCE_API_KEY": "k"}, overrides={
        "sequence": {"stream_topics": topics, "lifecycle": lifecycle, "sse": sse},
        "connector": {"workers": workers, "instance_id": "pod-1"}})


def test_trading_lifecycle_and_sse_stay_on_worker_0_market_data_is_dealt_out() -> None:
    s = settings(("prices:A", "orders", "book:A", "fills", "prices:B", "tca", "funding",
                  "fair_price:BTC", "traces:d1"),
                 lifecycle=("new_markets", "market_resolved"), sse=("tca", "alerts"))
    w0, w1, w2 = shard_plan(s, 3)
    assert w0.stream_topics[:3] == ("orders", "fills", "tca")
    assert (w0.lifecycle, w0.sse) == (("new_markets", "market_resolved"), ("tca", "alerts"))
    assert w1.lifecycle == w1.sse == w2.lifecycle == w2.sse == ()
    market = [t for w in (w0, w1, w2) for t in w.stream_topics
              if t not in ("orders", "fills", "tca")]
    assert sorted(market) == sorted(["prices:A", "book:A", "prices:B", "funding",
                                     "fair_price:BTC", "traces:d1"])  # each exactly once
    # worker 0 carries trading: it is dealt market data last
    assert w1.stream_topics[0] == "prices:A" and w2.stream_topics[0] == "book:A"
    assert len(w0.stream_topics) - 3 <= len(w1.stream_topics)


def test_workers_with_nothing_to_do_are_left_out() -> None:
    shards = shard_plan(settings(("prices:A",)), 4)
    assert [s.stream_topics for s in shards] == [("prices:A",)]
    assert shards[0].index == 0


def test_unknown_topics_go_to_worker_0_which_reports_the_rejection() -> None:
    w0, w1 = shard_plan(settings(("bogus:x", "prices:A")), 2)
    assert "bogus:x" in w0.stream_topics and w1.stream_topics == ("prices:A",)


def test_worker_overrides_make_a_single_process_config() -> None:
    s = settings(("prices:A", "fills"))
    shard = shard_plan(s)[1]
    worker = load_settings(env={"SEQUENCE_API_KEY": "k"},
                           overrides=worker_overrides(s, shard, 12345))
    assert worker.connector.workers == 1
    assert worker.connector.instance_id == "pod-1-w1"
    assert worker.sequence.stream_topics == ("prices:A",)
    assert (worker.observe.metrics_host, worker.observe.metrics_port) == ("127.0.0.1", 12345)


def test_merged_metrics_carry_a_worker_label_and_stay_valid() -> None:
    texts = {}
    for index, count in ((0, 3), (1, 5)):
        m = Metrics()
        m.events_received.labels("prices", "ws").inc(count)
        m.added_latency.labels("t").observe(0.002)
        texts[index] = generate_latest(m.registry).decode()
    collector = WorkersCollector()
    collector.texts = texts
    registry = CollectorRegistry()
    registry.register(collector)
    get = registry.get_sample_value
    name = "sequence_connector_events_received_total"
    assert get(name, {"family": "prices", "source": "ws", "worker": "0"}) == 3
    assert get(name, {"family": "prices", "source": "ws", "worker": "1"}) == 5
    assert get("sequence_connector_added_latency_seconds_count",
               {"topic": "t", "worker": "1"}) == 1
    text = generate_latest(registry).decode()
    assert text.count(f"# TYPE {name} counter") == 1
