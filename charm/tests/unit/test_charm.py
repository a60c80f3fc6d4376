"""State-transition tests of the charm with ops[testing] (Scenario)."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace

import ops
import pytest
from conftest import (
    CA_PEM,
    ENDPOINTS,
    GROUP_PREFIX,
    PASSWORD,
    REQUEST_ID,
    TLS_ENDPOINTS,
    USERNAME,
    container,
    kafka_relation,
    peer,
    service_env,
    service_status,
)
from ops import pebble, testing

import charm as charm_module
from charm import MANUAL_SECRET_LABEL, KafkaTestAppCharm

NO_RELATION = (
    "Please relate with Kafka or use the action to run the application without the relation."
)
ACTION_PARAMS = {
    "servers": "10.0.0.1:9092,10.0.0.2:9092",
    "username": "admin",
    "password": "action-Pa55word",
    "topic-name": "manual-topic",
}


def state(*, config=None, relations=(), secrets=(), leader=True, cont=None, **kwargs):
    return testing.State(
        leader=leader,
        config=config or {},
        relations={peer(), *relations},
        secrets=set(secrets),
        containers={cont if cont is not None else container()},
        **kwargs,
    )


def running_state(ctx, relation, secrets, config=None, **kwargs):
    """Return the output state after Kafka answered on ``relation``."""
    return ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        state(config=config, relations=[relation], secrets=secrets, **kwargs),
    )


def assert_no_secret_leak(ctx, out, *secrets):
    svc = out.get_container("kafka-test-app").plan.services.get("kafka-test-app")
    for secret in secrets:
        if svc is not None:
            assert secret not in svc.command
        assert secret not in out.unit_status.message
        for line in ctx.juju_log:
            assert secret not in line.message


# -- lifecycle without Kafka ------------------------------------------------


def test_install_before_container_is_ready_waits(ctx):
    out = ctx.run(ctx.on.install(), state(cont=container(can_connect=False)))
    assert out.unit_status == testing.WaitingStatus("Waiting for the kafka-test-app container")


def test_pebble_ready_without_relation_shows_original_message_and_runs_nothing(ctx):
    cont = container()
    out = ctx.run(ctx.on.pebble_ready(cont), state(cont=cont))
    assert out.unit_status == testing.BlockedStatus(NO_RELATION)
    assert "kafka-test-app" not in out.get_container("kafka-test-app").plan.services


def test_config_changed_good_values_without_relation(ctx):
    out = ctx.run(ctx.on.config_changed(), state(config={"role": "producer", "rate": 5.0}))
    assert out.unit_status == testing.BlockedStatus(NO_RELATION)


@pytest.mark.parametrize(
    "option,value",
    [
        ("role", "admin"),
        ("topic_name", "not a topic"),
        ("partitions", 0),
        ("replication_factor", 0),
        ("num_messages", -5),
        ("consumer_group_prefix", "bad prefix"),
        ("rate", 0.0),
    ],
)
def test_config_changed_bad_value_blocks_naming_option(ctx, option, value):
    out = ctx.run(ctx.on.config_changed(), state(config={option: value}))
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(f"invalid config option '{option}': ")


def test_bad_config_keeps_running_workload_untouched(ctx):
    rel, secrets = kafka_relation()
    before = running_state(ctx, rel, secrets)
    out = ctx.run(ctx.on.config_changed(), replace(before, config={"role": "admin"}))
    assert out.unit_status.message.startswith("invalid config option 'role'")
    assert service_env(out) == service_env(before)
    assert service_status(out) == pebble.ServiceStatus.ACTIVE


# -- relation: request ------------------------------------------------------


@pytest.mark.parametrize(
    "config,roles,prefix",
    [
        ({"role": "producer", "topic_name": "spark-streaming-store"}, "producer,admin", None),
        ({"role": "consumer", "topic_name": "spark-streaming-store"}, "consumer", None),
        (
            {
                "role": "consumer",
                "topic_name": "spark-streaming-store",
                "consumer_group_prefix": "mygroup-",
            },
            "consumer",
            "mygroup-",
        ),
    ],
)
def test_relation_created_leader_requests_topic_with_roles(ctx, config, roles, prefix):
    rel = testing.Relation("kafka-cluster", remote_app_name="kafka-k8s")
    out = ctx.run(ctx.on.relation_created(rel), state(config=config, relations=[rel]))
    data = out.get_relation(rel.id).local_app_data
    assert data["version"] == "v1"
    [request] = json.loads(data["requests"])
    assert request["resource"] == "spark-streaming-store"
    assert request["extra-user-roles"] == roles
    assert request.get("consumer-group-prefix") == prefix
    assert request["request-id"]
    assert out.unit_status == testing.WaitingStatus(
        "Waiting for Kafka to grant topic spark-streaming-store "
        "(needs a Kafka charm speaking data-interfaces v1)"
    )


def test_relation_created_non_leader_writes_nothing(ctx):
    rel = testing.Relation("kafka-cluster", remote_app_name="kafka-k8s")
    out = ctx.run(ctx.on.relation_created(rel), state(relations=[rel], leader=False))
    assert "requests" not in out.get_relation(rel.id).local_app_data


def test_request_sent_once_config_becomes_valid(ctx):
    rel = testing.Relation("kafka-cluster", remote_app_name="kafka-k8s")
    out = ctx.run(ctx.on.relation_created(rel), state(config={"role": "nope"}, relations=[rel]))
    assert json.loads(out.get_relation(rel.id).local_app_data.get("requests", "[]")) == []
    out = ctx.run(ctx.on.config_changed(), replace(out, config={"role": "producer"}))
    [request] = json.loads(out.get_relation(rel.id).local_app_data["requests"])
    assert request["extra-user-roles"] == "producer,admin"


def test_existing_request_is_not_rewritten(ctx):
    rel, secrets = kafka_relation()
    out = running_state(ctx, rel, secrets)
    assert out.get_relation(rel.id).local_app_data["requests"] == rel.local_app_data["requests"]


# -- relation: credentials and workload --------------------------------------


def test_relation_changed_starts_consumer_with_env_credentials(ctx):
    rel, secrets = kafka_relation()
    out = running_state(ctx, rel, secrets)
    svc = out.get_container("kafka-test-app").plan.services["kafka-test-app"]
    assert shlex.split(svc.command) == ["/usr/local/bin/kafka-test-app", "consume"]
    assert svc.on_success == "ignore" and svc.on_failure == "restart"
    env = service_env(out)
    assert env["KTA_USERNAME"] == USERNAME
    assert env["KTA_PASSWORD"] == PASSWORD
    assert env["KTA_BOOTSTRAP_SERVERS"] == ENDPOINTS
    assert env["KTA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert env["KTA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["KTA_TOPIC"] == "test-topic"
    assert env["KTA_CONSUMER_GROUP_PREFIX"] == GROUP_PREFIX
    assert env["KTA_HTTP_ADDR"] == "0.0.0.0:8080"
    assert env["KTA_LOG_FORMAT"] == "json"
    assert "KTA_CA_FILE" not in env
    assert service_status(out) == pebble.ServiceStatus.ACTIVE
    assert out.unit_status == testing.ActiveStatus(
        "Topic test-topic enabled with process consumer"
    )
    assert_no_secret_leak(ctx, out, PASSWORD)


def test_tutorial_producer(ctx):
    config = {"role": "producer", "topic_name": "spark-streaming-store", "num_messages": 100000}
    rel, secrets = kafka_relation(topic="spark-streaming-store", roles="producer,admin")
    out = running_state(ctx, rel, secrets, config=config)
    svc = out.get_container("kafka-test-app").plan.services["kafka-test-app"]
    assert shlex.split(svc.command) == ["/usr/local/bin/kafka-test-app", "produce"]
    env = service_env(out)
    assert env["KTA_NUM_MESSAGES"] == "100000"
    assert env["KTA_RATE"] == "2"
    assert env["KTA_PARTITIONS"] == "5"
    assert env["KTA_REPLICATION_FACTOR"] == "1"
    assert "KTA_CONSUMER_GROUP_PREFIX" not in env
    assert out.unit_status == testing.ActiveStatus(
        "Topic spark-streaming-store enabled with process producer"
    )


def test_health_check_in_plan(ctx):
    rel, secrets = kafka_relation()
    out = running_state(ctx, rel, secrets)
    check = out.get_container("kafka-test-app").plan.checks["kafka-test-app-alive"]
    assert check.level == pebble.CheckLevel.ALIVE
    assert check.http == {"url": "http://localhost:8080/healthz"}


def test_tls_on_uses_sasl_ssl_and_pushes_ca(ctx):
    rel, secrets = kafka_relation(tls=True)
    out = running_state(ctx, rel, secrets)
    env = service_env(out)
    assert env["KTA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["KTA_CA_FILE"] == "/etc/kafka-test-app/ca.pem"
    assert env["KTA_BOOTSTRAP_SERVERS"] == TLS_ENDPOINTS
    fs = out.get_container("kafka-test-app").get_filesystem(ctx)
    assert (fs / "etc/kafka-test-app/ca.pem").read_text() == CA_PEM
    assert CA_PEM not in json.dumps(env)  # the CA goes in a file, not the environment


def test_ca_rotation_rewrites_file_and_restarts_service(ctx, monkeypatch):
    rel, secrets = kafka_relation(tls=True)
    before = running_state(ctx, rel, secrets)
    restarted = []
    original_restart = ops.Container.restart

    def spy(self, *names):
        restarted.extend(names)
        return original_restart(self, *names)

    monkeypatch.setattr(ops.Container, "restart", spy)
    new_ca = CA_PEM.replace("fakeCA", "rotatedCA")
    content = {"tls": "true", "tls-ca": new_ca}
    rotated = replace(secrets[1], tracked_content=content, latest_content=content)
    out = ctx.run(ctx.on.secret_changed(rotated), replace(before, secrets={secrets[0], rotated}))
    fs = out.get_container("kafka-test-app").get_filesystem(ctx)
    assert (fs / "etc/kafka-test-app/ca.pem").read_text() == new_ca
    assert restarted == ["kafka-test-app"]  # same layer, new CA: restart to reload it


def test_tls_on_without_ca_waits(ctx):
    rel, secrets = kafka_relation(tls=True, ca=None)
    out = running_state(ctx, rel, secrets)
    assert out.unit_status == testing.WaitingStatus("Waiting for Kafka to provide its TLS CA")
    assert "kafka-test-app" not in out.get_container("kafka-test-app").plan.services


def test_tls_turned_off_switches_back_to_plaintext(ctx):
    rel, secrets = kafka_relation(tls=True)
    on = running_state(ctx, rel, secrets)
    tls_secret = secrets[1]
    off_secret = replace(
        tls_secret, tracked_content={"tls": "false"}, latest_content={"tls": "false"}
    )
    out = ctx.run(ctx.on.secret_changed(off_secret), replace(on, secrets={secrets[0], off_secret}))
    env = service_env(out)
    assert env["KTA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert "KTA_CA_FILE" not in env


def test_password_rotation_updates_environment(ctx):
    rel, secrets = kafka_relation()
    before = running_state(ctx, rel, secrets)
    user = secrets[0]
    rotated = replace(
        user,
        tracked_content={"username": USERNAME, "password": "rotated-Pa55"},
        latest_content={"username": USERNAME, "password": "rotated-Pa55"},
    )
    out = ctx.run(ctx.on.secret_changed(rotated), replace(before, secrets={rotated, secrets[1]}))
    assert service_env(out)["KTA_PASSWORD"] == "rotated-Pa55"
    assert service_status(out) == pebble.ServiceStatus.ACTIVE


def test_relation_without_answer_waits(ctx):
    rel, _ = kafka_relation(answered=False)
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(relations=[rel]))
    assert isinstance(out.unit_status, testing.WaitingStatus)
    assert "v1" in out.unit_status.message


def test_v0_only_kafka_never_answers_and_status_says_why(ctx):
    # A data-interfaces v0 provider (kafka-k8s track 3) only stores its diff
    # memory ("data") and waits for a "topic" field a v1 requirer never writes.
    rel = testing.Relation(
        "kafka-cluster",
        remote_app_name="kafka-k8s",
        remote_app_data={"data": json.dumps({"version": "v1", "requests": "[]"})},
        remote_units_data={0: {}},
    )
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(relations=[rel]))
    assert out.unit_status == testing.WaitingStatus(
        "Waiting for Kafka to grant topic test-topic "
        "(needs a Kafka charm speaking data-interfaces v1)"
    )
    assert "kafka-test-app" not in out.get_container("kafka-test-app").plan.services


def test_topic_changed_after_relation_blocks_with_original_message(ctx):
    rel, secrets = kafka_relation(topic="test-topic")
    out = running_state(ctx, rel, secrets, config={"topic_name": "other-topic"})
    assert out.unit_status == testing.BlockedStatus(
        "Please remove relation and recreate a new one to track topic other-topic"
    )
    assert service_env(out)["KTA_TOPIC"] == "test-topic"


def test_config_prefix_used_when_relation_has_none(ctx):
    rel, secrets = kafka_relation(prefix=None)
    out = running_state(ctx, rel, secrets, config={"consumer_group_prefix": "cfg-"})
    assert service_env(out)["KTA_CONSUMER_GROUP_PREFIX"] == "cfg-"


def test_non_leader_unit_also_runs_workload(ctx):
    rel, secrets = kafka_relation()
    out = running_state(ctx, rel, secrets, leader=False)
    assert service_env(out)["KTA_PASSWORD"] == PASSWORD
    assert service_status(out) == pebble.ServiceStatus.ACTIVE


def test_pebble_ready_with_relation_applies_layer(ctx):
    rel, secrets = kafka_relation()
    cont = container()
    out = ctx.run(ctx.on.pebble_ready(cont), state(relations=[rel], secrets=secrets, cont=cont))
    assert service_env(out)["KTA_USERNAME"] == USERNAME
    assert service_status(out) == pebble.ServiceStatus.ACTIVE


def test_unchanged_plan_does_not_restart_finished_producer(ctx):
    config = {"role": "producer"}
    rel, secrets = kafka_relation(roles="producer,admin")
    before = running_state(ctx, rel, secrets, config=config)
    cont = before.get_container("kafka-test-app")
    finished = replace(cont, service_statuses={"kafka-test-app": pebble.ServiceStatus.INACTIVE})
    out = ctx.run(ctx.on.update_status(), replace(before, containers={finished}))
    assert service_status(out) == pebble.ServiceStatus.INACTIVE


def test_relation_broken_stops_service_and_scrubs_credentials(ctx):
    rel, secrets = kafka_relation()
    before = running_state(ctx, rel, secrets)
    out = ctx.run(ctx.on.relation_broken(before.get_relation(rel.id)), before)
    assert service_status(out) == pebble.ServiceStatus.INACTIVE
    svc = out.get_container("kafka-test-app").plan.services["kafka-test-app"]
    assert svc.startup == "disabled"
    assert not svc.environment
    assert out.unit_status == testing.BlockedStatus(NO_RELATION)


def test_unreadable_relation_data_waits_instead_of_crashing(ctx):
    rel, secrets = kafka_relation()
    # The user secret was not granted to us (not in the state).
    out = ctx.run(ctx.on.update_status(), state(relations=[rel], secrets=[secrets[1]]))
    assert isinstance(out.unit_status, testing.WaitingStatus)


# -- actions ----------------------------------------------------------------


def test_start_process_without_relation_runs_with_action_credentials(ctx):
    out = ctx.run(ctx.on.action("start-process", params=ACTION_PARAMS), state())
    assert ctx.action_results == {
        "service": "kafka-test-app",
        "role": "consumer",
        "topic": "manual-topic",
    }
    env = service_env(out)
    assert env["KTA_BOOTSTRAP_SERVERS"] == "10.0.0.1:9092,10.0.0.2:9092"
    assert env["KTA_USERNAME"] == "admin"
    assert env["KTA_PASSWORD"] == "action-Pa55word"
    assert env["KTA_TOPIC"] == "manual-topic"
    assert env["KTA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert service_status(out) == pebble.ServiceStatus.ACTIVE
    assert out.unit_status == testing.ActiveStatus(
        "Topic manual-topic enabled with process consumer"
    )
    secret = out.get_secret(label=MANUAL_SECRET_LABEL)
    assert secret.owner == "unit"
    assert secret.latest_content["password"] == "action-Pa55word"
    assert_no_secret_leak(ctx, out, "action-Pa55word")


def test_start_process_consumer_group_prefix_param(ctx):
    params = ACTION_PARAMS | {"consumer-group-prefix": "manual-"}
    out = ctx.run(ctx.on.action("start-process", params=params), state())
    assert service_env(out)["KTA_CONSUMER_GROUP_PREFIX"] == "manual-"


def test_start_process_survives_later_hooks(ctx):
    started = ctx.run(ctx.on.action("start-process", params=ACTION_PARAMS), state())
    out = ctx.run(ctx.on.config_changed(), started)
    assert service_env(out)["KTA_PASSWORD"] == "action-Pa55word"
    assert out.unit_status == testing.ActiveStatus(
        "Topic manual-topic enabled with process consumer"
    )


def test_start_process_invalid_param_fails(ctx):
    with pytest.raises(testing.ActionFailed) as err:
        ctx.run(
            ctx.on.action("start-process", params=ACTION_PARAMS | {"topic-name": "a b"}), state()
        )
    assert "'topic-name'" in err.value.message


def test_start_process_with_bad_config_fails(ctx):
    with pytest.raises(testing.ActionFailed) as err:
        ctx.run(ctx.on.action("start-process", params=ACTION_PARAMS), state(config={"rate": -1.0}))
    assert "'rate'" in err.value.message


def test_start_process_when_running_fails(ctx):
    rel, secrets = kafka_relation()
    before = running_state(ctx, rel, secrets)
    with pytest.raises(testing.ActionFailed) as err:
        ctx.run(ctx.on.action("start-process", params=ACTION_PARAMS), before)
    assert "already running" in err.value.message


def test_stop_process_stops_and_stays_stopped(ctx):
    rel, secrets = kafka_relation()
    before = running_state(ctx, rel, secrets)
    out = ctx.run(ctx.on.action("stop-process"), before)
    assert ctx.action_results == {"service": "kafka-test-app", "stopped": "true"}
    assert service_status(out) == pebble.ServiceStatus.INACTIVE
    assert (
        out.get_relation(before.get_relations("app-peers")[0].id).local_unit_data["stopped"]
        == "true"
    )
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "stop-process" in out.unit_status.message
    # Later relation traffic must not restart it.
    again = ctx.run(ctx.on.relation_changed(out.get_relation(rel.id), remote_unit=0), out)
    assert service_status(again) == pebble.ServiceStatus.INACTIVE


def test_stop_then_start_process(ctx):
    started = ctx.run(ctx.on.action("start-process", params=ACTION_PARAMS), state())
    stopped = ctx.run(ctx.on.action("stop-process"), started)
    assert service_status(stopped) == pebble.ServiceStatus.INACTIVE
    with pytest.raises(KeyError):
        stopped.get_secret(label=MANUAL_SECRET_LABEL)  # credentials removed
    restarted = ctx.run(ctx.on.action("start-process", params=ACTION_PARAMS), stopped)
    assert service_status(restarted) == pebble.ServiceStatus.ACTIVE
    assert service_env(restarted)["KTA_PASSWORD"] == "action-Pa55word"


def test_new_relation_clears_stop_flag(ctx):
    rel = testing.Relation("kafka-cluster", remote_app_name="kafka-k8s")
    st = testing.State(leader=True, relations={peer(stopped=True), rel}, containers={container()})
    out = ctx.run(ctx.on.relation_created(rel), st)
    assert "stopped" not in out.get_relations("app-peers")[0].local_unit_data


def test_stop_process_with_nothing_running_fails(ctx):
    with pytest.raises(testing.ActionFailed) as err:
        ctx.run(ctx.on.action("stop-process"), state())
    assert err.value.message == "No process to stop!"


CONSUMER_REPORT = {
    "consumed": 300,
    "malformed": 0,
    "verdict": "pass",
    "origins": {
        "kafka-test-app/0": {
            "count": 300,
            "duplicates": 0,
            "missing": 0,
            "out_of_order": 0,
            "latency_ms": {"p50": 1.0, "p99": 2.0, "p999": 3.0, "max": 4.0},
        }
    },
}


def test_get_report_consumer(ctx, monkeypatch):
    urls = []

    def fake_fetch(url):
        urls.append(url)
        return json.dumps(CONSUMER_REPORT)

    monkeypatch.setattr(KafkaTestAppCharm, "fetch_report", staticmethod(fake_fetch))
    ctx.run(ctx.on.action("get-report"), state())
    assert urls == ["http://localhost:8080/report"]
    results = ctx.action_results
    assert results["verdict"] == "pass"
    assert results["consumed"] == "300"
    assert results["origins"]["kafka-test-app-0"]["count"] == "300"
    assert json.loads(results["report"]) == CONSUMER_REPORT


def test_get_report_producer(ctx, monkeypatch):
    body = {"sent": 10, "acked": 10, "failed": 0, "elapsed_s": 5.0, "rate": 2.0}
    monkeypatch.setattr(
        KafkaTestAppCharm, "fetch_report", staticmethod(lambda url: json.dumps(body))
    )
    ctx.run(ctx.on.action("get-report"), state(config={"role": "producer"}))
    assert ctx.action_results["sent"] == "10"
    assert ctx.action_results["elapsed-s"] == "5"


def test_get_report_unreachable_fails(ctx, monkeypatch):
    def refuse(url):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(KafkaTestAppCharm, "fetch_report", staticmethod(refuse))
    with pytest.raises(testing.ActionFailed) as err:
        ctx.run(ctx.on.action("get-report"), state())
    assert "http://localhost:8080/report" in err.value.message


def test_get_report_garbage_fails(ctx, monkeypatch):
    monkeypatch.setattr(KafkaTestAppCharm, "fetch_report", staticmethod(lambda url: "<html>"))
    with pytest.raises(testing.ActionFailed) as err:
        ctx.run(ctx.on.action("get-report"), state())
    assert "not valid JSON" in err.value.message


def test_default_fetcher_is_the_http_function():
    assert KafkaTestAppCharm.fetch_report is charm_module.workload.fetch_report


def test_request_id_fixture_matches_response():
    # Guard for the fixtures themselves: the response answers our request.
    rel, _ = kafka_relation()
    assert json.loads(rel.remote_app_data["requests"])[0]["request-id"] == REQUEST_ID
    assert isinstance(ops.BlockedStatus(NO_RELATION), ops.StatusBase)
