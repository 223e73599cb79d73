"""A record Kafka refuses for good while the connector drains at SIGTERM.

The refusal is the broker's own: the dead-letter topic is made with a
``max.message.bytes`` below the size of any record batch, so a dead letter
passes the producer's size check (``message.max.bytes``, which routes a too
large record to the DLQ at produce time) and is answered MSG_SIZE_TOO_LARGE
by the broker. ``linger.ms`` holds it in the producer long enough that the
SIGTERM sent as soon as ``/metrics`` counts the dead letter always comes
first: the refusal can only be seen during the drain.

Before the fix, the drain dropped the record, logged "drained" and exited
0. Now the process exits with the fatal status, says which topic refused
what, and every other record it accepted is in Kafka.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from connector.demo import SimulatorThread
from connector.process import EXIT_FATAL
from connector.protocol.families import Family
from connector.sandbox.simulator import SimulatorConfig
from connector.serde.topics import TopicNames
from tests.support.chaos import (
    connector_env,
    fault,
    fills_tally,
    new_prefix,
    read_family,
    rest_truth,
    wait_until,
)
from tests.support.connector_process import ConnectorRun
from tests.support.e2e import KEY
from tests.support.readback import read_all

TOPICS = ("prices:BTC-USD", "orders", "fills", "tca")
LINGER_MS = 3000


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    running = SimulatorThread(SimulatorConfig(seed=5, rate=200.0, api_keys=(KEY,))).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.kafka_only("tansu does not enforce a topic's max.message.bytes")
def test_record_refused_during_drain_fails_the_exit(
        sim: SimulatorThread, bootstrap: str, registry_url: str, tmp_path: Path) -> None:
    prefix = new_prefix("refused")
    names = TopicNames(prefix=prefix)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # a record batch header alone is 61 bytes: no dead letter fits
    small = NewTopic(names.dlq, 3, 1, config={"max.message.bytes": "64"})
    for future in admin.create_topics([small]).values():
        future.result(timeout=30)

    env = connector_env(prefix, sim.base_url, bootstrap, registry_url, TOPICS,
                        KAFKA__PRODUCER=f'{{"linger.ms": {LINGER_MS}}}')
    run = ConnectorRun(env, tmp_path).start()
    try:
        wait_until(lambda: run.alive() and _produced(run) > 0, 90, "records acknowledged")
        assert fault(sim, lambda f: f.inject_garbage(1, ["wrong_types"])) == 1
        wait_until(lambda: run.metric("sequence_connector_dlq_records_total",
                                      stage="normalize") >= 1, 30, "the dead letter", 0.02)
        status = run.terminate(timeout_s=60)
    finally:
        run.cleanup()

    lines = run.lines()  # every stderr line is JSON
    assert "Traceback" not in run.stderr()
    assert status == EXIT_FATAL, run.stderr()[-3000:]
    [failed] = [line for line in lines if line["event"] == "delivery failed"]
    assert failed["topic"] == names.dlq
    assert "too large" in failed["error"].lower()
    [drained] = [line for line in lines if line["event"].startswith("drained")]
    assert drained["level"] == "error" and drained["refused"] == 1
    assert drained["topic"] == names.dlq
    assert "MSG_SIZE_TOO_LARGE" in drained["error"]
    [exiting] = [line for line in lines if line["event"].startswith("exiting")]
    assert exiting["exit_code"] == EXIT_FATAL and "MSG_SIZE_TOO_LARGE" in exiting["event"]

    # everything else that was acknowledged is in Kafka, and nothing more
    produced: dict[str, int] = drained["produced"]
    assert names.dlq not in produced and read_all(bootstrap, names.dlq) == []
    assert produced.get(names.topic(Family.prices), 0) > 0
    for topic, count in produced.items():
        assert len(read_all(bootstrap, topic)) == count, topic
    # and the fills against the simulator's own history: once each, none missing
    fills = read_family(bootstrap, prefix, registry_url, Family.fills)
    tally = fills_tally(rest_truth(sim).fills, fills)
    assert tally.duplicates == 0 and not tally.missing, tally.line()


def _produced(run: ConnectorRun) -> float:
    try:
        _, body = run.get("/metrics")
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith("sequence_connector_records_produced_total{"))
