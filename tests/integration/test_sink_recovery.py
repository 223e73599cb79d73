"""Producer recovery against a real broker that loses its state.

tansu forgets everything on restart and leaves an idempotent producer stuck;
the sink must rebuild the producer and resend every unacknowledged record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from connector.sandbox.broker import EmbeddedBroker
from connector.sink.admin import ensure_topics
from connector.sink.producer import KafkaSink, producer_config
from tests.support.readback import read_all


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_dir=tmp_path_factory.mktemp("tansu-own")) as broker:
        yield broker


def test_records_accepted_during_broker_restart_are_resent(own_broker: EmbeddedBroker) -> None:
    conf = producer_config(own_broker.bootstrap, "recovery", {"message.timeout.ms": 5000})

    async def scenario() -> KafkaSink:
        ensure_topics(conf, [("t", 2, {})])
        sink = KafkaSink(conf)
        reports = asyncio.create_task(sink.serve_delivery_reports())
        for i in range(50):
            await sink.send("t", f"{i}".encode(), f"k{i % 7}".encode())
        assert await sink.flush(10) == 0
        own_broker.kill()
        own_broker.restart()  # all data gone; the old producer id is unknown now
        await asyncio.to_thread(ensure_topics, conf, [("t", 2, {})])
        for i in range(50, 300):
            await sink.send("t", f"{i}".encode(), f"k{i % 7}".encode())
        left = await sink.flush(60)
        reports.cancel()
        assert left == 0
        return sink

    sink = asyncio.run(scenario())
    values = sorted(int(r.value or b"-1") for r in read_all(own_broker.bootstrap, "t"))
    # the broker lost 0..49 itself; everything accepted after is there, once
    assert values == list(range(50, 300))
    assert sink.rebuilds >= 1
    assert sink.failed == 0
