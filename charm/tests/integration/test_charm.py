"""Integration test with Jubilant: the Charmed Spark tutorial flow on a real Juju K8s model.

NOT run by ./run-tests (it needs a Juju controller on Kubernetes, network
access to Charmhub and a registry holding the workload image). Run it with::

    cd charm && ./pack
    docker build -t localhost:32000/kafka-test-app:dev ..
    docker push localhost:32000/kafka-test-app:dev
    KTA_CHARM=./kafka-test-app_amd64.charm KTA_IMAGE=localhost:32000/kafka-test-app:dev \
        python -m pytest tests/integration -v

Environment: ``KTA_CHARM`` (path to the packed charm, ``./pack`` builds it),
``KTA_IMAGE`` (OCI image for the ``kafka-test-app-image`` resource),
optionally ``KTA_KAFKA_CHANNEL`` (default ``4/edge``; a ``3/...`` channel
deploys ``zookeeper-k8s`` beside Kafka, as the Spark tutorial does) and
``KTA_KEEP_MODEL=1``.
"""

from __future__ import annotations

import json
import os
import pathlib

import jubilant
import pytest

KAFKA = "kafka-k8s"
PRODUCER = "kafka-test-app"
CONSUMER = "kafka-test-consumer"
TOPIC = "spark-streaming-store"

pytestmark = pytest.mark.skipif(
    not (os.environ.get("KTA_CHARM") and os.environ.get("KTA_IMAGE")),
    reason="set KTA_CHARM and KTA_IMAGE to run the integration test",
)


@pytest.fixture(scope="module")
def juju():
    with jubilant.temp_model(keep=bool(os.environ.get("KTA_KEEP_MODEL"))) as juju:
        juju.wait_timeout = 30 * 60
        yield juju


@pytest.fixture(scope="module")
def charm() -> str:
    return str(pathlib.Path(os.environ["KTA_CHARM"]).resolve())


def test_deploy_kafka(juju: jubilant.Juju):
    channel = os.environ.get("KTA_KAFKA_CHANNEL", "4/edge")
    if channel.startswith("3/"):
        # Track 3: Kafka needs ZooKeeper (the Spark tutorial's deployment).
        juju.deploy("zookeeper-k8s", channel="3/stable", trust=True)
        juju.deploy(KAFKA, channel=channel, trust=True)
        juju.integrate(KAFKA, "zookeeper-k8s")
    else:
        # One unit acting as broker and KRaft controller is enough for a test.
        juju.deploy(KAFKA, channel=channel, config={"roles": "broker,controller"}, trust=True)
    juju.wait(lambda s: jubilant.all_active(s, KAFKA) or jubilant.all_blocked(s, KAFKA))


def test_tutorial_producer(juju: jubilant.Juju, charm: str):
    # juju deploy kafka-test-app -n 3 --config role=producer \
    #   --config topic_name=spark-streaming-store --config num_messages=100000
    juju.deploy(
        charm,
        PRODUCER,
        num_units=3,
        resources={"kafka-test-app-image": os.environ["KTA_IMAGE"]},
        config={"role": "producer", "topic_name": TOPIC, "num_messages": 100000, "rate": 20.0},
    )
    juju.wait(lambda s: jubilant.all_active(s, PRODUCER))  # active and idle, as the original
    status = juju.status()
    for unit in status.apps[PRODUCER].units.values():
        assert unit.workload_status.message.startswith("Please relate with Kafka")

    # juju integrate kafka-test-app kafka-k8s
    juju.integrate(PRODUCER, KAFKA)
    juju.wait(lambda s: jubilant.all_active(s, PRODUCER, KAFKA), error=jubilant.any_error)
    status = juju.status()
    for unit in status.apps[PRODUCER].units.values():
        assert unit.workload_status.message == f"Topic {TOPIC} enabled with process producer"


def test_consumer_sees_all_producers(juju: jubilant.Juju, charm: str):
    juju.deploy(
        charm,
        CONSUMER,
        resources={"kafka-test-app-image": os.environ["KTA_IMAGE"]},
        config={"role": "consumer", "topic_name": TOPIC},
    )
    juju.integrate(CONSUMER, KAFKA)
    juju.wait(lambda s: jubilant.all_active(s, CONSUMER), error=jubilant.any_error)

    def three_origins(_status) -> bool:
        task = juju.run(f"{CONSUMER}/0", "get-report")
        return int(task.results.get("origin-count", "0")) >= 3

    juju.wait(three_origins, delay=10, timeout=10 * 60, successes=1)
    task = juju.run(f"{CONSUMER}/0", "get-report")
    assert task.status == "completed"
    report = json.loads(task.results["report"])
    assert report["consumed"] > 0
    assert task.results["verdict"] == "pass"


def test_producer_report(juju: jubilant.Juju):
    task = juju.run(f"{PRODUCER}/0", "get-report")
    assert task.results["role"] == "producer"
    assert int(task.results["sent"]) > 0


def test_stop_and_start_process(juju: jubilant.Juju):
    juju.run(f"{CONSUMER}/0", "stop-process")
    juju.wait(lambda s: jubilant.all_blocked(s, CONSUMER))
    with pytest.raises(jubilant.TaskError):
        juju.run(f"{CONSUMER}/0", "get-report")  # nothing listens on :8080 any more


def test_relation_broken_stops_producers(juju: jubilant.Juju):
    juju.remove_relation(PRODUCER, KAFKA)

    def idle(status) -> bool:
        units = status.apps[PRODUCER].units.values()
        return all(u.workload_status.message.startswith("Please relate with Kafka") for u in units)

    juju.wait(idle)
