"""Unit tests of the v0 kafka_client requirer functions in src/kafka_client.py."""

import pytest
from fixtures import CA_PEM, GENERATIONS, PASSWORD, USERNAME, ZK_URIS, kafka_relation

import kafka_client
import workload
from config import parse_config


def secret_reader(secrets):
    by_id = {s.id: s.latest_content or s.tracked_content for s in secrets}
    return lambda uri: by_id.get(uri)


def test_topic_request_prefix_and_literal():
    assert kafka_client.topic_request("spark", True) == kafka_client.TopicRequest(
        "spark*", "spark", covers_control=True
    )
    assert kafka_client.topic_request("spark", False) == kafka_client.TopicRequest(
        "spark", "spark", covers_control=False
    )
    # Charmed Kafka needs len > 3 for a prefix; the v0 library refuses '*' in chars 1-3.
    assert kafka_client.topic_request("ab", True).requested == "ab"
    assert kafka_client.topic_request("abc", True).requested == "abc*"


@pytest.mark.parametrize("role", ["admin", "producer,admin", "consumer,admin", ""])
def test_build_request_refuses_anything_but_one_role(role):
    with pytest.raises(ValueError):
        kafka_client.build_request(role, kafka_client.topic_request("topic", True), "")


def test_build_request_fields():
    req = kafka_client.topic_request("topic", True)
    assert kafka_client.build_request("consumer", req, "g-") == {
        "topic": "topic*",
        "extra-user-roles": "consumer",
        "consumer-group-prefix": "g-",
        "requested-secrets": '["username", "password", "tls", "tls-ca"]',
    }
    # A producer has no consumer group: the prefix is not sent.
    assert "consumer-group-prefix" not in kafka_client.build_request("producer", req, "g-")


@pytest.mark.parametrize(
    "value,on",
    [
        ("enabled", True),
        ("true", True),
        ("disabled", False),
        ("false", False),
        ("", False),
        (None, False),
    ],
)
def test_parse_tls(value, on):
    assert kafka_client.parse_tls(value) is on


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("tls", [False, True])
def test_parse_response_per_generation(generation, tls):
    rel, secrets = kafka_relation(generation, tls=tls)
    resp = kafka_client.parse_response(rel.remote_app_data, secret_reader(secrets))
    assert resp.generation == generation
    assert (resp.username, resp.password) == (USERNAME, PASSWORD)
    assert resp.topic == "test-topic*"
    assert resp.tls is tls
    expected_ca = CA_PEM if tls and generation != "track-3-plain" else ""
    assert resp.tls_ca == expected_ca
    assert resp.consumer_group_prefix == f"{USERNAME}-"
    assert resp.missing() == [] and resp.unreadable == ()
    assert PASSWORD not in repr(resp)


def test_parse_response_nothing_yet_and_unreadable_secret():
    assert kafka_client.parse_response({}, lambda uri: None) is None
    assert kafka_client.parse_response({"data": "{}"}, lambda uri: None) is None
    rel, _ = kafka_relation("track-4")
    resp = kafka_client.parse_response(rel.remote_app_data, lambda uri: None)
    assert resp.unreadable == ("secret-user", "secret-tls")
    assert resp.missing() == ["username", "password"]


def test_generation_of():
    assert kafka_client.generation_of({"password": "p", "zookeeper-uris": ZK_URIS}) == (
        "track-3-plain"
    )
    assert kafka_client.generation_of({"secret-user": "s", "zookeeper-uris": ZK_URIS}) == (
        "track-3-secrets"
    )
    assert kafka_client.generation_of({"secret-user": "s"}) == "track-4"
    assert kafka_client.generation_of({}) == "unknown"


def test_data_topic_of():
    assert kafka_client.data_topic_of("t1*") == "t1"
    assert kafka_client.data_topic_of("t1") == "t1"


# -- the producer's run record (workload.RunRecord) ---------------------------


def test_run_record_round_trip_and_garbage():
    rec = workload.RunRecord("k", "finished", 3, "crash")
    assert workload.RunRecord.from_json(rec.to_json()) == rec
    for raw in (None, "", "{", '{"key": "k"}', '{"key": "k", "state": "odd", "starts": 1}'):
        assert workload.RunRecord.from_json(raw) is None


def test_run_key_ignores_credentials_and_endpoints_but_not_the_run():
    cfg = parse_config({"role": "producer", "num_messages": 5})
    a = workload.Connection(servers="a:1", username="u", password="p1", topic="t")
    b = workload.Connection(servers="b:2", username="u2", password="p2", topic="t")
    assert workload.run_key(cfg, a) == workload.run_key(cfg, b)
    more = parse_config({"role": "producer", "num_messages": 6})
    assert workload.run_key(more, a) != workload.run_key(cfg, a)
