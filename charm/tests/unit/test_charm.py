"""State-transition tests of the charm with ops[testing] (Scenario).

The kafka-cluster relation comes from ``fixtures.py``: what each Charmed
Kafka generation writes for a v0 requirer, derived from its source.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import replace

import ops
import pytest
from conftest import container, peer, service_env, service_status
from fixtures import (
    CA_PEM,
    ENDPOINTS,
    GENERATIONS,
    PASSWORD,
    REQUESTED_SECRETS,
    ROTATED,
    TLS_ENDPOINTS,
    USERNAME,
    kafka_relation,
    requirer_data,
)
from ops import pebble, testing

import charm as charm_module
import workload
from charm import MANUAL_SECRET_LABEL, RUN_KEY, KafkaTestAppCharm

NO_RELATION = (
    "Please relate with Kafka or use the action to run the application without the relation."
)
ACTION_PARAMS = {
    "servers": "10.0.0.1:9092,10.0.0.2:9092",
    "username": "manual-user",
    "password": "action-Pa55word",
    "topic-name": "manual-topic",
}
PRODUCER = {"role": "producer", "num_messages": 10}


def state(*, config=None, relations=(), secrets=(), leader=True, cont=None, peers=None, **kw):
    return testing.State(
        leader=leader,
        config=config or {},
        relations={peers if peers is not None else peer(), *relations},
        secrets=set(secrets),
        containers={cont if cont is not None else container()},
        **kw,
    )


def answered(ctx, relation, secrets, config=None, **kwargs):
    """Return the output state after Kafka answered on ``relation``."""
    return ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        state(config=config, relations=[relation], secrets=secrets, **kwargs),
    )


def with_service(out, status):
    cont = out.get_container("kafka-test-app")
    return replace(out, containers={replace(cont, service_statuses={"kafka-test-app": status})})


def run_record(out):
    raw = out.get_relations("app-peers")[0].local_unit_data.get(RUN_KEY)
    return workload.RunRecord.from_json(raw)


def plan_checks(out):
    return dict(out.get_container("kafka-test-app").plan.checks)


def assert_no_secret_leak(ctx, out, *secrets):
    svc = out.get_container("kafka-test-app").plan.services.get("kafka-test-app")
    for secret in secrets:
        if svc is not None:
            assert secret not in svc.command
        assert secret not in out.unit_status.message
        for line in ctx.juju_log:
            assert secret not in line.message


def case(generation, role="consumer", **kwargs):
    """Return (relation, secrets, config) for a consumer/producer on ``generation``.

    Early track 3 cannot grant a topic prefix, so it is tested with the
    literal request (``topic_prefix_grant=false``); the others with the prefix.
    """
    plain = generation == "track-3-plain"
    topic = "test-topic" if plain else "test-topic*"
    rel, secrets = kafka_relation(generation, topic=topic, role=role, **kwargs)
    config = {"role": role} | ({"topic_prefix_grant": False} if plain else {})
    return rel, secrets, config


def consumer_env(*, tls=False, prefix=f"{USERNAME}-", password=PASSWORD):
    env = {
        "KTA_BOOTSTRAP_SERVERS": TLS_ENDPOINTS if tls else ENDPOINTS,
        "KTA_SECURITY_PROTOCOL": "SASL_SSL" if tls else "SASL_PLAINTEXT",
        "KTA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KTA_USERNAME": USERNAME,
        "KTA_PASSWORD": password,
        "KTA_TOPIC": "test-topic",
        "KTA_HTTP_ADDR": "0.0.0.0:8080",
        "KTA_LOG_FORMAT": "json",
        "KTA_NO_MEMBER_REPORTS": "true",
        "KTA_CONSUMER_GROUP_PREFIX": prefix,
    }
    if tls:
        env["KTA_CA_FILE"] = "/etc/kafka-test-app/ca.pem"
    return env


# -- lifecycle without Kafka ------------------------------------------------


def test_install_before_container_is_ready_waits(ctx):
    out = ctx.run(ctx.on.install(), state(cont=container(can_connect=False)))
    assert out.unit_status == testing.WaitingStatus("Waiting for the kafka-test-app container")


def test_pebble_ready_without_relation_is_active_and_idle_like_the_original(ctx):
    cont = container()
    out = ctx.run(ctx.on.pebble_ready(cont), state(cont=cont))
    assert out.unit_status == testing.ActiveStatus(NO_RELATION)
    assert "kafka-test-app" not in out.get_container("kafka-test-app").plan.services


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
    rel, secrets = kafka_relation("track-4")
    before = answered(ctx, rel, secrets)
    out = ctx.run(ctx.on.config_changed(), replace(before, config={"role": "admin"}))
    assert out.unit_status.message.startswith("invalid config option 'role'")
    assert service_env(out) == service_env(before)
    assert service_status(out) == pebble.ServiceStatus.ACTIVE


# -- relation: the request ----------------------------------------------------


@pytest.mark.parametrize(
    "config,expected",
    [
        (
            {"role": "producer", "topic_name": "spark-streaming-store"},
            {
                "topic": "spark-streaming-store*",
                "extra-user-roles": "producer",
                "requested-secrets": REQUESTED_SECRETS,
            },
        ),
        (
            {"role": "consumer", "topic_name": "spark-streaming-store"},
            {
                "topic": "spark-streaming-store*",
                "extra-user-roles": "consumer",
                "requested-secrets": REQUESTED_SECRETS,
            },
        ),
        (
            {"role": "consumer", "topic_name": "t1", "consumer_group_prefix": "mygroup-"},
            {
                "topic": "t1",  # too short for a prefix grant ("*" within 3 chars)
                "extra-user-roles": "consumer",
                "consumer-group-prefix": "mygroup-",
                "requested-secrets": REQUESTED_SECRETS,
            },
        ),
        (
            {"role": "producer", "topic_name": "orders", "topic_prefix_grant": False},
            {
                "topic": "orders",
                "extra-user-roles": "producer",
                "requested-secrets": REQUESTED_SECRETS,
            },
        ),
    ],
)
def test_relation_created_leader_writes_exactly_the_v0_request(ctx, config, expected):
    rel = testing.Relation("kafka-cluster", remote_app_name="kafka-k8s")
    out = ctx.run(ctx.on.relation_created(rel), state(config=config, relations=[rel]))
    assert dict(out.get_relation(rel.id).local_app_data) == expected
    assert json.loads(expected["requested-secrets"]) == ["username", "password", "tls", "tls-ca"]
    assert out.unit_status == testing.WaitingStatus(
        f"Waiting for Kafka to grant topic {expected['topic']}"
    )


# The requirer fields each provider generation reads (see fixtures.py for the commits):
# rev47 provider.py on_topic_requested (event.topic, .extra_user_roles,
# .consumer_group_prefix); rev84 also the library's requested-secrets (secret routing);
# rev116 the v1 library's RequirerDataContractV0 ("topic" is an alias of resource).
PROVIDER_READS = {
    "track-3-plain": ("topic", "extra-user-roles", "consumer-group-prefix"),
    "track-3-secrets": ("topic", "extra-user-roles", "consumer-group-prefix", "requested-secrets"),
    "track-4": ("topic", "extra-user-roles", "consumer-group-prefix"),
}


@pytest.mark.parametrize("generation", GENERATIONS)
def test_request_has_every_field_the_provider_reads_then_the_answer_starts_it(ctx, generation):
    plain = generation == "track-3-plain"  # no prefix grants: the literal topic
    topic = "test-topic" if plain else "test-topic*"
    config = {"consumer_group_prefix": "cg-", "topic_prefix_grant": not plain}
    rel = testing.Relation("kafka-cluster", id=7, remote_app_name="kafka-k8s")
    out = ctx.run(ctx.on.relation_created(rel), state(config=config, relations=[rel]))
    data = dict(out.get_relation(rel.id).local_app_data)
    expected = {
        "topic": topic,
        "extra-user-roles": "consumer",
        "consumer-group-prefix": "cg-",
        "requested-secrets": REQUESTED_SECRETS,
    }
    assert data == expected
    assert {k: data[k] for k in PROVIDER_READS[generation]} == {
        k: expected[k] for k in PROVIDER_READS[generation]
    }
    # Kafka answers on relation-changed; the workload starts with what it granted.
    answer, secrets = kafka_relation(generation, topic=topic, prefix="cg-")
    assert dict(answer.local_app_data) == data  # the fixture answers this very request
    done = answered(ctx, answer, secrets, config=config)
    assert service_env(done) == consumer_env(prefix="cg-")
    assert service_status(done) == pebble.ServiceStatus.ACTIVE


def test_relation_created_non_leader_writes_nothing(ctx):
    rel = testing.Relation("kafka-cluster", remote_app_name="kafka-k8s")
    out = ctx.run(ctx.on.relation_created(rel), state(relations=[rel], leader=False))
    assert dict(out.get_relation(rel.id).local_app_data) == {}


def test_request_sent_once_config_becomes_valid(ctx):
    rel = testing.Relation("kafka-cluster", remote_app_name="kafka-k8s")
    out = ctx.run(ctx.on.relation_created(rel), state(config={"role": "nope"}, relations=[rel]))
    assert dict(out.get_relation(rel.id).local_app_data) == {}
    out = ctx.run(ctx.on.config_changed(), replace(out, config={"role": "producer"}))
    assert dict(out.get_relation(rel.id).local_app_data) == requirer_data(
        "test-topic*", "producer"
    )


def test_existing_request_is_not_rewritten_after_config_change(ctx):
    # v0 providers act on the "topic" field once (when it is added).
    rel, secrets = kafka_relation("track-4")
    out = answered(ctx, rel, secrets, config={"topic_name": "other-topic"})
    assert dict(out.get_relation(rel.id).local_app_data) == requirer_data(
        "test-topic*", "consumer"
    )
    assert out.unit_status == testing.BlockedStatus(
        "Please remove relation and recreate a new one to track topic other-topic"
    )
    assert service_env(out)["KTA_TOPIC"] == "test-topic"  # keeps using what was granted


ROLE_CONFIGS = [
    {"role": r, "topic_prefix_grant": g, "consumer_group_prefix": p}
    for r in ("producer", "consumer")
    for g in (True, False)
    for p in ("", "grp-")
]


@pytest.mark.parametrize("config", ROLE_CONFIGS)
def test_no_code_path_requests_admin(ctx, config):
    """Every way the request gets written carries only the app's role."""
    written = []
    empty = testing.Relation("kafka-cluster", remote_app_name="kafka-k8s")
    out = ctx.run(ctx.on.relation_created(empty), state(config=config, relations=[empty]))
    written.append(out.get_relation(empty.id).local_app_data)
    # Created while not the leader, or while the config was invalid (role=admin):
    # nothing is written then, a later hook writes the request.
    for first in (
        state(config=config, relations=[empty], leader=False),
        state(config=config | {"role": "admin"}, relations=[empty]),
    ):
        out = ctx.run(ctx.on.relation_created(empty), first)
        assert dict(out.get_relation(empty.id).local_app_data) == {}
        for event in (ctx.on.leader_elected(), ctx.on.config_changed(), ctx.on.update_status()):
            out = ctx.run(event, replace(out, leader=True, config=config))
        written.append(out.get_relation(empty.id).local_app_data)
    # Kafka already answered but our databag is empty (e.g. lost): relation-changed.
    for generation in GENERATIONS:
        rel, secrets = kafka_relation(generation, role=config["role"])
        out = answered(ctx, replace(rel, local_app_data={}), secrets, config=config)
        written.append(out.get_relation(rel.id).local_app_data)
    assert len(written) == 6
    for data in written:
        assert data["extra-user-roles"] == config["role"]
        assert "admin" not in json.dumps(dict(data))


# -- relation: credentials and workload, per provider generation ---------------


@pytest.mark.parametrize("generation", GENERATIONS)
def test_waiting_before_kafka_answers(ctx, generation):
    rel, _ = kafka_relation(generation, answered=False)
    out = answered(ctx, rel, [])
    assert out.unit_status == testing.WaitingStatus("Waiting for Kafka to grant topic test-topic*")
    assert "kafka-test-app" not in out.get_container("kafka-test-app").plan.services


@pytest.mark.parametrize("generation", GENERATIONS)
def test_credentials_arrive_consumer_starts_with_exact_env(ctx, generation):
    rel, secrets, config = case(generation)
    out = answered(ctx, rel, secrets, config=config)
    svc = out.get_container("kafka-test-app").plan.services["kafka-test-app"]
    assert shlex.split(svc.command) == ["/usr/local/bin/kafka-test-app", "consume"]
    assert (svc.on_success, svc.on_failure) == ("ignore", "restart")
    assert service_env(out) == consumer_env()
    assert service_status(out) == pebble.ServiceStatus.ACTIVE
    assert out.unit_status == testing.ActiveStatus(
        "Topic test-topic enabled with process consumer"
    )
    assert plan_checks(out) == {}
    assert_no_secret_leak(ctx, out, PASSWORD)


@pytest.mark.parametrize("generation", GENERATIONS[1:])
def test_tutorial_producer_with_prefix_grant(ctx, generation):
    config = {"role": "producer", "topic_name": "spark-streaming-store", "num_messages": 100000}
    rel, secrets = kafka_relation(generation, topic="spark-streaming-store*", role="producer")
    out = answered(ctx, rel, secrets, config=config)
    svc = out.get_container("kafka-test-app").plan.services["kafka-test-app"]
    assert shlex.split(svc.command) == ["/usr/local/bin/kafka-test-app", "produce"]
    assert (svc.on_success, svc.on_failure) == ("ignore", "ignore")
    assert service_env(out) == {
        "KTA_BOOTSTRAP_SERVERS": ENDPOINTS,
        "KTA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KTA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KTA_USERNAME": USERNAME,
        "KTA_PASSWORD": PASSWORD,
        "KTA_TOPIC": "spark-streaming-store",
        "KTA_HTTP_ADDR": "0.0.0.0:8080",
        "KTA_LOG_FORMAT": "json",
        "KTA_RATE": "2",
        "KTA_NUM_MESSAGES": "100000",
        "KTA_PARTITIONS": "5",
        "KTA_REPLICATION_FACTOR": "1",
        "KTA_CONTROL_TOPIC": "spark-streaming-store-kta-control",
    }
    assert out.unit_status == testing.ActiveStatus(
        "Topic spark-streaming-store enabled with process producer"
    )
    assert run_record(out).state == "running" and run_record(out).starts == 1


def test_early_track3_cannot_grant_a_prefix_and_says_what_to_do(ctx):
    rel, secrets = kafka_relation("track-3-plain", role="producer")
    out = answered(ctx, rel, secrets, config=PRODUCER)
    assert out.unit_status == testing.BlockedStatus(
        "This Kafka cannot grant the topic prefix test-topic*: set topic_prefix_grant=false, "
        "then remove and re-add the relation"
    )
    assert "kafka-test-app" not in out.get_container("kafka-test-app").plan.services


def test_early_track3_literal_grant_runs_without_run_reports(ctx):
    config = PRODUCER | {"topic_prefix_grant": False}
    rel, secrets = kafka_relation("track-3-plain", topic="test-topic", role="producer")
    out = answered(ctx, rel, secrets, config=config)
    env = service_env(out)
    assert env["KTA_TOPIC"] == "test-topic"
    assert env["KTA_NO_RUN_REPORTS"] == "true"
    assert "KTA_CONTROL_TOPIC" not in env
    assert env["KTA_PASSWORD"] == PASSWORD
    assert out.unit_status == testing.ActiveStatus(
        "Topic test-topic enabled with process producer"
    )


def test_requested_consumer_group_prefix_is_used(ctx):
    config = {"consumer_group_prefix": "cfg-"}
    rel, secrets = kafka_relation("track-4", prefix="cfg-")
    out = answered(ctx, rel, secrets, config=config)
    assert service_env(out)["KTA_CONSUMER_GROUP_PREFIX"] == "cfg-"


def run_rotation(ctx, generation, rel, secrets, before, new_password=ROTATED):
    """Run the hook in which Kafka hands over a rotated password for the relation user."""
    if generation == "track-3-plain":
        old = before.get_relation(rel.id)
        rotated = replace(
            old, remote_app_data=dict(old.remote_app_data) | {"password": new_password}
        )
        relations = {*before.relations} - {old} | {rotated}
        return ctx.run(
            ctx.on.relation_changed(rotated, remote_unit=0), replace(before, relations=relations)
        )
    user = replace(secrets[0], latest_content={"username": USERNAME, "password": new_password})
    return ctx.run(ctx.on.secret_changed(user), replace(before, secrets={user, secrets[1]}))


@pytest.mark.parametrize("generation", GENERATIONS)
def test_rotated_password_updates_environment(ctx, generation):
    rel, secrets, config = case(generation)
    before = answered(ctx, rel, secrets, config=config)
    out = run_rotation(ctx, generation, rel, secrets, before)
    assert service_env(out) == consumer_env(password=ROTATED)
    assert service_status(out) == pebble.ServiceStatus.ACTIVE
    assert_no_secret_leak(ctx, out, PASSWORD, ROTATED)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_relation_broken_stops_service_and_scrubs_credentials(ctx, generation):
    rel, secrets, config = case(generation)
    before = answered(ctx, rel, secrets, config=config)
    out = ctx.run(ctx.on.relation_broken(before.get_relation(rel.id)), before)
    assert service_status(out) == pebble.ServiceStatus.INACTIVE
    svc = out.get_container("kafka-test-app").plan.services["kafka-test-app"]
    assert svc.startup == "disabled"
    assert not svc.environment
    assert plan_checks(out) == {}
    assert out.unit_status == testing.ActiveStatus(NO_RELATION)


@pytest.mark.parametrize("generation", GENERATIONS[1:])
def test_tls_on_uses_sasl_ssl_and_pushes_ca(ctx, generation):
    rel, secrets = kafka_relation(generation, tls=True)
    out = answered(ctx, rel, secrets)
    assert service_env(out) == consumer_env(tls=True)
    fs = out.get_container("kafka-test-app").get_filesystem(ctx)
    assert (fs / "etc/kafka-test-app/ca.pem").read_text() == CA_PEM
    assert CA_PEM not in json.dumps(service_env(out))  # a file, not the environment


@pytest.mark.parametrize("generation", GENERATIONS[1:])
def test_tls_on_without_ca_waits(ctx, generation):
    rel, secrets = kafka_relation(generation, tls=True, ca=None)
    out = answered(ctx, rel, secrets)
    assert out.unit_status == testing.WaitingStatus("Waiting for Kafka to provide its TLS CA")
    assert "kafka-test-app" not in out.get_container("kafka-test-app").plan.services


def test_early_track3_tls_without_ca_is_blocked_and_explained(ctx):
    rel, secrets = kafka_relation("track-3-plain", topic="test-topic", tls=True)
    out = answered(ctx, rel, secrets, config={"topic_prefix_grant": False})
    assert out.unit_status == testing.BlockedStatus(
        "Kafka has TLS on but this revision sends no CA (needs kafka-k8s 60+)"
    )


@pytest.mark.parametrize("generation", GENERATIONS[1:])
def test_tls_turned_off_switches_back_to_plaintext(ctx, generation):
    rel, secrets = kafka_relation(generation, tls=True)
    on = answered(ctx, rel, secrets)
    off = replace(secrets[1], latest_content={"tls": "disabled"})
    remote = dict(rel.remote_app_data) | {"endpoints": ENDPOINTS}
    rel_off = replace(on.get_relation(rel.id), remote_app_data=remote)
    st = replace(on, secrets={secrets[0], off}, relations={peer(), rel_off})
    out = ctx.run(ctx.on.secret_changed(off), st)
    assert service_env(out) == consumer_env()


@pytest.mark.parametrize("generation", GENERATIONS[1:])
def test_ca_rotation_rewrites_file_and_restarts_service(ctx, generation, monkeypatch):
    rel, secrets = kafka_relation(generation, tls=True)
    before = answered(ctx, rel, secrets)
    restarted = []
    original_restart = ops.Container.restart

    def spy(self, *names):
        restarted.extend(names)
        return original_restart(self, *names)

    monkeypatch.setattr(ops.Container, "restart", spy)
    new_ca = CA_PEM.replace("fakeCA", "rotatedCA")
    rotated = replace(secrets[1], latest_content={"tls": "enabled", "tls-ca": new_ca})
    out = ctx.run(ctx.on.secret_changed(rotated), replace(before, secrets={secrets[0], rotated}))
    fs = out.get_container("kafka-test-app").get_filesystem(ctx)
    assert (fs / "etc/kafka-test-app/ca.pem").read_text() == new_ca
    assert restarted == ["kafka-test-app"]


@pytest.mark.parametrize("generation", GENERATIONS[1:])
def test_secret_not_granted_yet_waits(ctx, generation):
    rel, secrets = kafka_relation(generation)
    out = ctx.run(ctx.on.update_status(), state(relations=[rel], secrets=[secrets[1]]))
    assert out.unit_status == testing.WaitingStatus(
        "Waiting for access to Kafka's secret-user secret"
    )


def test_non_leader_unit_also_runs_workload(ctx):
    rel, secrets = kafka_relation("track-3-secrets")
    out = answered(ctx, rel, secrets, leader=False)
    assert service_env(out)["KTA_PASSWORD"] == PASSWORD
    assert service_status(out) == pebble.ServiceStatus.ACTIVE


# -- producer lifecycle: finished stays finished, no replay -------------------


def finished_producer(ctx, generation="track-4"):
    rel, secrets = kafka_relation(generation, role="producer")
    running = answered(ctx, rel, secrets, config=PRODUCER)
    return ctx.run(ctx.on.update_status(), with_service(running, pebble.ServiceStatus.INACTIVE))


@pytest.mark.parametrize("generation", GENERATIONS[1:])
def test_finished_producer_is_recorded_parked_and_has_no_check(ctx, generation):
    out = finished_producer(ctx, generation)
    assert run_record(out) == workload.RunRecord(run_record(out).key, "finished", 1)
    svc = out.get_container("kafka-test-app").plan.services["kafka-test-app"]
    assert svc.startup == "disabled" and not svc.environment
    assert plan_checks(out) == {}
    assert service_status(out) == pebble.ServiceStatus.INACTIVE
    assert out.unit_status == testing.ActiveStatus(
        "Topic test-topic enabled with process producer: finished sending 10 messages"
    )


def test_pebble_ready_after_finished_does_not_send_again(ctx):
    done = finished_producer(ctx)
    fresh = container()  # the container restarted: Pebble's plan is empty
    out = ctx.run(ctx.on.pebble_ready(fresh), replace(done, containers={fresh}))
    assert "kafka-test-app" not in out.get_container("kafka-test-app").plan.services
    assert run_record(out).state == "finished"
    assert out.unit_status.message.endswith(": finished sending 10 messages")


def test_finished_producer_ignores_password_rotation(ctx):
    done = finished_producer(ctx)
    user = next(s for s in done.secrets if "password" in s.tracked_content)
    new_user = replace(user, latest_content={"username": USERNAME, "password": ROTATED})
    out = ctx.run(
        ctx.on.secret_changed(new_user),
        replace(done, secrets={*done.secrets} - {user} | {new_user}),
    )
    svc = out.get_container("kafka-test-app").plan.services["kafka-test-app"]
    assert svc.startup == "disabled" and not svc.environment
    assert service_status(out) == pebble.ServiceStatus.INACTIVE


def test_container_restart_mid_run_does_not_resend_and_says_so(ctx):
    rel, secrets = kafka_relation("track-4", role="producer")
    running = answered(ctx, rel, secrets, config=PRODUCER)
    fresh = container()
    out = ctx.run(ctx.on.pebble_ready(fresh), replace(running, containers={fresh}))
    assert "kafka-test-app" not in out.get_container("kafka-test-app").plan.services
    assert out.unit_status == testing.BlockedStatus(
        "Producer interrupted by a container restart, not re-sent to avoid duplicates; "
        "re-add the relation (or start-process) to send 10 again"
    )


def test_crashed_producer_is_restarted_and_status_says_it_resends(ctx):
    rel, secrets = kafka_relation("track-4", role="producer")
    running = answered(ctx, rel, secrets, config=PRODUCER)
    out = ctx.run(ctx.on.update_status(), with_service(running, pebble.ServiceStatus.ERROR))
    assert service_status(out) == pebble.ServiceStatus.ACTIVE
    assert run_record(out).starts == 2 and run_record(out).state == "running"
    message = "Topic test-topic enabled with process producer " + (
        "(restarted after a crash: start 2 re-sent all 10)"
    )
    assert out.unit_status == testing.ActiveStatus(message)
    later = ctx.run(ctx.on.update_status(), out)
    assert later.unit_status == testing.ActiveStatus(message)
    assert run_record(later).starts == 2


def test_running_producer_password_rotation_restarts_and_counts_it(ctx):
    rel, secrets = kafka_relation("track-4", role="producer")
    before = answered(ctx, rel, secrets, config=PRODUCER)
    out = run_rotation(ctx, "track-4", rel, secrets, before)
    assert service_env(out)["KTA_PASSWORD"] == ROTATED
    assert run_record(out).starts == 2
    assert out.unit_status == testing.ActiveStatus(
        "Topic test-topic enabled with process producer "
        "(restarted after a connection change: start 2 re-sent all 10)"
    )


def test_running_producer_endpoints_change_updates_plan_without_restart(ctx, monkeypatch):
    rel, secrets = kafka_relation("track-4", role="producer")
    before = answered(ctx, rel, secrets, config=PRODUCER)
    calls = []
    for name in ("replan", "restart", "start", "stop"):
        original = getattr(ops.Container, name)

        def spy(self, *args, _name=name, _original=original):
            calls.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(ops.Container, name, spy)
    old = before.get_relation(rel.id)
    servers = ENDPOINTS + ",kafka-k8s-2.kafka-k8s-endpoints:9092"
    scaled = replace(old, remote_app_data=dict(old.remote_app_data) | {"endpoints": servers})
    out = ctx.run(
        ctx.on.relation_changed(scaled, remote_unit=0),
        replace(before, relations={*before.relations} - {old} | {scaled}),
    )
    assert calls == []  # the running producer keeps going: no replay
    assert service_env(out)["KTA_BOOTSTRAP_SERVERS"] == servers  # for its next start
    assert run_record(out) == run_record(before)
    assert out.unit_status == testing.ActiveStatus(
        "Topic test-topic enabled with process producer"
    )


def test_unchanged_running_producer_is_left_alone(ctx):
    rel, secrets = kafka_relation("track-4", role="producer")
    before = answered(ctx, rel, secrets, config=PRODUCER)
    out = ctx.run(ctx.on.update_status(), before)
    assert run_record(out) == run_record(before)
    assert out.unit_status == testing.ActiveStatus(
        "Topic test-topic enabled with process producer"
    )


def test_finished_producer_stays_finished_after_topic_name_change(ctx):
    done = finished_producer(ctx)
    out = ctx.run(ctx.on.config_changed(), replace(done, config=PRODUCER | {"topic_name": "new"}))
    svc = out.get_container("kafka-test-app").plan.services["kafka-test-app"]
    assert svc.startup == "disabled" and not svc.environment
    assert service_status(out) == pebble.ServiceStatus.INACTIVE
    assert run_record(out).state == "finished"
    assert out.unit_status == testing.BlockedStatus(
        "Please remove relation and recreate a new one to track topic new"
    )


def test_new_relation_clears_the_run_record(ctx):
    done = finished_producer(ctx)
    rel = testing.Relation("kafka-cluster", remote_app_name="kafka-k8s")
    st = replace(done, relations={done.get_relations("app-peers")[0], rel})
    out = ctx.run(ctx.on.relation_created(rel), st)
    assert run_record(out) is None


def test_bounded_producer_waits_for_peer_relation(ctx):
    rel, secrets = kafka_relation("track-4", role="producer")
    st = testing.State(
        leader=True,
        config=PRODUCER,
        relations={rel},
        secrets=set(secrets),
        containers={container()},
    )
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), st)
    assert out.unit_status == testing.WaitingStatus(
        "Waiting for the app-peers relation to record the producer's run"
    )
    assert "kafka-test-app" not in out.get_container("kafka-test-app").plan.services


def test_endless_producer_is_restarted_by_pebble(ctx):
    rel, secrets = kafka_relation("track-4", role="producer")
    out = answered(ctx, rel, secrets, config={"role": "producer", "num_messages": 0})
    svc = out.get_container("kafka-test-app").plan.services["kafka-test-app"]
    assert svc.on_failure == "restart"
    assert run_record(out) is None


def test_get_report_after_finish_returns_the_record(ctx, monkeypatch):
    def refuse(url):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(KafkaTestAppCharm, "fetch_report", staticmethod(refuse))
    done = finished_producer(ctx)
    ctx.run(ctx.on.action("get-report"), done)
    assert ctx.action_results == {
        "role": "producer",
        "run-state": "finished",
        "starts": "1",
        "num-messages": "10",
        "topic": "test-topic",
        "note": "the producer sent all its messages and exited; its final report is in the "
        "workload's log",
    }


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
    assert env["KTA_USERNAME"] == "manual-user"
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
    rel, secrets = kafka_relation("track-4")
    before = answered(ctx, rel, secrets)
    with pytest.raises(testing.ActionFailed) as err:
        ctx.run(ctx.on.action("start-process", params=ACTION_PARAMS), before)
    assert "already running" in err.value.message


def test_stop_process_stops_and_stays_stopped(ctx):
    rel, secrets = kafka_relation("track-4")
    before = answered(ctx, rel, secrets)
    out = ctx.run(ctx.on.action("stop-process"), before)
    assert ctx.action_results == {"service": "kafka-test-app", "stopped": "true"}
    assert service_status(out) == pebble.ServiceStatus.INACTIVE
    assert plan_checks(out) == {}
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


def test_get_report_running_producer_adds_its_run_record(ctx, monkeypatch):
    body = {"sent": 4, "acked": 4, "failed": 0, "elapsed_s": 2.0, "rate": 2.0}
    monkeypatch.setattr(
        KafkaTestAppCharm, "fetch_report", staticmethod(lambda url: json.dumps(body))
    )
    rel, secrets = kafka_relation("track-4", role="producer")
    running = answered(ctx, rel, secrets, config=PRODUCER)
    ctx.run(ctx.on.action("get-report"), running)
    assert ctx.action_results["sent"] == "4"
    assert ctx.action_results["run-state"] == "running"
    assert ctx.action_results["starts"] == "1"


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
