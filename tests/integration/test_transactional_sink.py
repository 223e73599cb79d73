"""connector/sink/transactional.py against Apache Kafka: fencing, abort and resend.

What a ``read_committed`` reader and a ``read_uncommitted`` one see, read back
by the independent reader (kafka-python).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from connector.sandbox.brokers import Broker
from connector.sink.admin import ensure_topics
from connector.sink.producer import producer_config
from connector.sink.transactional import TransactionalSink, TransactionFailed
from tests.support.readback import read_all

pytestmark = pytest.mark.kafka_only("transactions (tansu has no correct read_committed)")


def _values(bootstrap: str, topic: str, committed: bool) -> list[int]:
    return sorted(int(r.value or b"-1") for r in read_all(bootstrap, topic, 20,
                                                          read_committed=committed))


def test_fencing_a_new_owner_fences_the_old_and_aborts_what_it_left_open(
    broker: Broker,
) -> None:
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    conf = producer_config({"bootstrap.servers": broker.bootstrap, "client.id": "txn"})
    tid = f"{topic}-shard-0"
    acked: list[str] = []

    async def scenario() -> None:
        ensure_topics(conf, [(topic, 2, {})])
        old = TransactionalSink(conf, tid, 0.05, 1000,
                                on_acked=lambda t, *_: acked.append(t))
        await old.start()
        for i in range(10):
            await old.send(topic, str(i).encode(), f"k{i % 3}".encode())
        assert await old.flush(20) == 0  # committed
        assert len(acked) == 10
        for i in range(10, 15):  # left in an open transaction
            old.produce(topic, str(i).encode(), b"k")
        new = TransactionalSink(conf, tid, 0.05, 1000)
        await new.start()  # fences the old owner, aborts its open transaction
        for i in range(15, 18):
            await new.send(topic, str(i).encode(), b"k")
        assert await new.flush(20) == 0
        with pytest.raises(TransactionFailed) as failed:
            await old.flush(10)
        assert failed.value.fenced, failed.value
        assert len(acked) == 10  # the fenced records never count as acknowledged
        with pytest.raises(TransactionFailed):
            old.produce(topic, b"99", b"k")

    asyncio.run(scenario())
    assert _values(broker.bootstrap, topic, committed=True) == [*range(10), 15, 16, 17]
    # read_uncommitted sees the zombie's aborted records too
    assert _values(broker.bootstrap, topic, committed=False) == list(range(18))


def test_an_aborted_transaction_is_produced_again_once(broker: Broker) -> None:
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    conf = producer_config({"bootstrap.servers": broker.bootstrap, "client.id": "txn"})

    async def scenario() -> TransactionalSink:
        ensure_topics(conf, [(topic, 1, {})])
        sink = TransactionalSink(conf, f"{topic}-shard-0", 60.0, 100_000)
        await sink.start()
        for i in range(20):
            await sink.send(topic, str(i).encode(), b"k")
        await sink.end_transaction()  # 0..19 committed
        for i in range(20, 30):
            await sink.send(topic, str(i).encode(), b"k")
        sink.poll(1.0)  # 20..29 reach the broker inside the open transaction
        # what an abortable error (a timed-out record, a lost leader) does:
        sink.request_abort("test: abortable error")
        await sink.end_transaction()  # aborts, produces 20..29 again in a new one
        assert sink.aborts == 1 and sink.pending == 10
        assert await sink.flush(20) == 0
        return sink

    sink = asyncio.run(scenario())
    assert sink.delivered == 30 and sink.commits >= 2
    assert _values(broker.bootstrap, topic, committed=True) == list(range(30))
    uncommitted = _values(broker.bootstrap, topic, committed=False)
    # read_uncommitted: the aborted attempt of 20..29 as well (or fewer if
    # some never left the client before the abort)
    assert set(uncommitted) == set(range(30)) and len(uncommitted) >= 30
