"""connector/sharding.py: the subscriptions of each shard of ``connector.shards``."""

from __future__ import annotations

import pytest

from connector.config import ConfigError, Settings, load_settings
from connector.sharding import group_id, shard_settings, shard_specs, transactional_id

TOPICS = ("orders", "prices:A", "fills", "book:B", "tca", "prices:C", "funding", "prices:D")


def settings(topics: tuple[str, ...] = TOPICS, **connector: object) -> Settings:
    return load_settings(env={}, overrides={
        "sequence": {"stream_topics": topics, "lifecycle": ["new_markets"], "sse": ["alerts"]},
        "kafka": {"topic_prefix": "p"},
        "connector": connector})


def test_shard_0_owns_the_account_streams_market_data_is_dealt_over_all_shards() -> None:
    s0, s1, s2 = shard_specs(settings(), 3)
    assert s0.stream_topics[:3] == ("orders", "fills", "tca")
    assert s0.lifecycle == ("new_markets",) and s0.sse == ("alerts",)
    assert s1.lifecycle == s2.lifecycle == () and s1.sse == s2.sse == ()
    assert s1.stream_topics == ("prices:A", "funding")
    assert s2.stream_topics == ("book:B", "prices:D")
    assert s0.stream_topics[3:] == ("prices:C",)
    every = [t for s in (s0, s1, s2) for t in s.stream_topics]
    assert sorted(every) == sorted(TOPICS)  # each subscription in exactly one shard


def test_the_plan_is_deterministic_and_has_exactly_n_shards_some_empty() -> None:
    assert shard_specs(settings(), 5) == shard_specs(settings(), 5)
    specs = shard_specs(settings(("fills", "prices:A")), 4)
    assert [s.index for s in specs] == [0, 1, 2, 3]
    assert specs[1].stream_topics == ("prices:A",)
    assert specs[2].empty and specs[3].empty and not specs[0].empty
    one = shard_specs(settings(), 1)[0]
    assert sorted(one.stream_topics) == sorted(TOPICS)


def test_names_and_shard_settings() -> None:
    s = settings(shards=3)
    assert transactional_id(s, 2) == "p-shard-2"
    assert group_id(s) == "p.connector"
    assert group_id(settings(shards=3, group_id="g")) == "g"
    one = shard_settings(s, shard_specs(s, 3)[1])
    assert one.sequence.stream_topics == ("prices:A", "funding")
    assert one.sequence.lifecycle == () and one.observe.metrics_port == 0


@pytest.mark.parametrize("bad", [{"shards": -1}, {"shards": 300},
                                 {"delivery": "twice"}, {"session_timeout_s": 0.5},
                                 {"transaction_ms": 0}])
def test_replica_settings_are_checked(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        settings(TOPICS, **bad)


def test_a_replica_serves_every_shards_metrics_with_a_shard_label_and_a_standby_is_ready(
) -> None:
    import asyncio

    from prometheus_client import generate_latest

    from connector.app import Connector
    from connector.replicas import ReplicaRunner, _ShardRun

    async def check() -> None:
        s = settings(shards=2, instance_id="pod-0")
        runner = ReplicaRunner(s)
        assert runner.readiness() == (True, {"instance": "pod-0", "shards": {},
                                             "standby": True})
        for spec in runner.specs:
            run = _ShardRun(spec)
            run.connector = Connector(s)
            run.connector.metrics.control_records.labels("handover").inc()
            runner.runs[spec.index] = run
        text = generate_latest(runner.registry).decode()
        assert 'sequence_connector_control_records_total{kind="handover",shard="0"} 1.0' in text
        assert 'shard="1"' in text and "sequence_connector_shards_owned" in text
        ready, detail = runner.readiness()
        assert not ready and set(detail["shards"]) == {"0", "1"}  # type: ignore[arg-type]

    asyncio.run(check())
