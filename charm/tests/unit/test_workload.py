"""Unit tests of the pure workload functions in src/workload.py."""

import io
import shlex
import urllib.error

import ops
import pytest

import kafka_client
import workload
from config import ConfigError, parse_config

PASSWORD = "p4ss-w0rd-never-in-argv"

PRODUCER = parse_config(
    {
        "role": "producer",
        "topic_name": "t",
        "num_messages": 10,
        "partitions": 3,
        "replication_factor": 2,
        "rate": 0.5,
    }
)
CONSUMER = parse_config({"role": "consumer", "topic_name": "t", "consumer_group_prefix": "cfg-"})


def conn(**kwargs):
    base = dict(servers="k0:9092,k1:9092", username="u", password=PASSWORD, topic="t")
    return workload.Connection(**(base | kwargs))


def response(**kwargs):
    base = dict(
        generation="track-4",
        endpoints="k0:9092",
        username="u",
        password=PASSWORD,
        tls=False,
        tls_ca="",
        consumer_group_prefix="rel-",
        topic="t*",
    )
    return kafka_client.Response(**(base | kwargs))


PREFIX = kafka_client.topic_request("t", prefix_grant=False)  # "t" is too short for a prefix
WILD = kafka_client.topic_request("topic", prefix_grant=True)


# -- connections ----------------------------------------------------------


def test_connection_repr_hides_password():
    assert PASSWORD not in repr(conn())


def test_connection_from_response_ready_with_prefix_grant():
    view = workload.connection_from_response(response(topic="topic*"), WILD)
    assert view.state == "ready"
    assert view.connection == conn(
        servers="k0:9092",
        topic="topic",
        consumer_group_prefix="rel-",
        granted="topic*",
        covers_control=True,
    )


def test_connection_from_response_literal_grant_does_not_cover_control():
    view = workload.connection_from_response(response(topic="t"), PREFIX)
    assert view.connection.topic == "t" and not view.connection.covers_control


def test_connection_from_response_none_is_waiting_for_the_requested_topic():
    view = workload.connection_from_response(None, WILD)
    assert view == workload.RelationView("waiting", "Waiting for Kafka to grant topic topic*")


@pytest.mark.parametrize("missing", ["endpoints", "username", "password"])
def test_connection_from_response_missing_field_is_waiting(missing):
    view = workload.connection_from_response(response(**{missing: ""}), WILD)
    assert view == workload.RelationView("waiting", f"Waiting for Kafka to provide {missing}")


def test_connection_from_response_unreadable_secret_waits():
    view = workload.connection_from_response(response(unreadable=("secret-user",)), WILD)
    assert view.reason == "Waiting for access to Kafka's secret-user secret"


def test_connection_from_response_tls_needs_ca():
    assert workload.connection_from_response(response(tls=True), WILD).state == "waiting"
    old = workload.connection_from_response(
        response(tls=True, generation="track-3-plain", topic="t"), PREFIX
    )
    assert old.state == "blocked" and "sends no CA" in old.reason
    view = workload.connection_from_response(response(tls=True, tls_ca="CA"), WILD)
    assert view.state == "ready"
    assert view.connection.tls and view.connection.tls_ca == "CA"


def test_connection_from_response_prefix_on_plain_provider_is_blocked():
    view = workload.connection_from_response(
        response(generation="track-3-plain", topic="topic*"), WILD
    )
    assert view.state == "blocked" and "topic_prefix_grant=false" in view.reason


def test_connection_from_response_uses_granted_topic():
    view = workload.connection_from_response(response(topic="other*"), WILD)
    assert view.connection.topic == "other"


def test_connection_from_action_ok_and_normalises_servers():
    c = workload.connection_from_action(
        {
            "servers": " a:9092, b:9092 ,",
            "username": "u",
            "password": PASSWORD,
            "topic-name": "t",
            "consumer-group-prefix": "g-",
        }
    )
    assert c == conn(servers="a:9092,b:9092", consumer_group_prefix="g-", source="action")


@pytest.mark.parametrize(
    "params,needle",
    [
        ({"username": "u", "password": "p", "topic-name": "t"}, "'servers'"),
        ({"servers": "s", "password": "p", "topic-name": "t"}, "'username'"),
        ({"servers": "s", "username": "u", "password": " ", "topic-name": "t"}, "'password'"),
        (
            {"servers": "s", "username": "u", "password": "p", "topic-name": "bad topic"},
            "'topic-name'",
        ),
        (
            {
                "servers": "s",
                "username": "u",
                "password": "p",
                "topic-name": "t",
                "consumer-group-prefix": "a b",
            },
            "'consumer-group-prefix'",
        ),
    ],
)
def test_connection_from_action_rejects_bad_params(params, needle):
    with pytest.raises(ValueError, match=needle):
        workload.connection_from_action(params)


def test_connection_from_action_error_never_echoes_password():
    with pytest.raises(ValueError) as err:
        workload.connection_from_action(
            {"servers": "s", "username": "u", "password": PASSWORD, "topic-name": "no spaces"}
        )
    assert PASSWORD not in str(err.value)


def test_secret_round_trip_and_no_empty_values():
    c = conn(source="action")
    content = workload.connection_to_secret(c)
    assert "consumer-group-prefix" not in content  # empty values are dropped
    assert all(k == k.lower() for k in content)
    assert workload.connection_from_secret(content) == c
    assert workload.connection_from_secret({"servers": "s"}) is None


# -- environment and layer ------------------------------------------------


def test_format_number():
    assert workload.format_number(2.0) == "2"
    assert workload.format_number(0.5) == "0.5"
    assert workload.format_number(1000) == "1000"


def test_producer_environment():
    env = workload.build_environment(PRODUCER, conn())
    assert env == {
        "KTA_BOOTSTRAP_SERVERS": "k0:9092,k1:9092",
        "KTA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KTA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KTA_USERNAME": "u",
        "KTA_PASSWORD": PASSWORD,
        "KTA_TOPIC": "t",
        "KTA_HTTP_ADDR": "0.0.0.0:8080",
        "KTA_LOG_FORMAT": "json",
        "KTA_RATE": "0.5",
        "KTA_NUM_MESSAGES": "10",
        "KTA_PARTITIONS": "3",
        "KTA_REPLICATION_FACTOR": "2",
        "KTA_NO_RUN_REPORTS": "true",
    }
    covered = workload.build_environment(PRODUCER, conn(covers_control=True))
    assert covered["KTA_CONTROL_TOPIC"] == "t-kta-control"
    assert "KTA_NO_RUN_REPORTS" not in covered


def test_consumer_environment_prefers_connection_prefix_then_config():
    env = workload.build_environment(CONSUMER, conn(consumer_group_prefix="rel-"))
    assert env["KTA_CONSUMER_GROUP_PREFIX"] == "rel-"
    assert "KTA_REPLICATION_FACTOR" not in env and "KTA_NUM_MESSAGES" not in env
    env = workload.build_environment(CONSUMER, conn())
    assert env["KTA_CONSUMER_GROUP_PREFIX"] == "cfg-"
    no_prefix = parse_config({"role": "consumer"})
    assert "KTA_CONSUMER_GROUP_PREFIX" not in workload.build_environment(no_prefix, conn())


def test_tls_environment_points_at_ca_file():
    env = workload.build_environment(CONSUMER, conn(tls=True, tls_ca="CA"))
    assert env["KTA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["KTA_CA_FILE"] == workload.CA_PATH
    assert "KTA_CA_FILE" not in workload.build_environment(CONSUMER, conn())


@pytest.mark.parametrize(
    "config,sub,on_failure",
    [
        (PRODUCER, "produce", "ignore"),  # bounded: the charm decides about a restart
        (parse_config({"role": "producer", "num_messages": 0}), "produce", "restart"),
        (CONSUMER, "consume", "restart"),
    ],
)
def test_layer_command_restart_policy_and_no_health_check(config, sub, on_failure):
    env = {"KTA_PASSWORD": PASSWORD}
    layer = workload.build_layer(config, env)
    svc = layer["services"]["kafka-test-app"]
    assert shlex.split(svc["command"]) == ["/usr/local/bin/kafka-test-app", sub]
    assert svc["on-success"] == "ignore" and svc["on-failure"] == on_failure
    assert svc["startup"] == "enabled"
    assert svc["environment"] == env
    assert "checks" not in layer  # an alive check would restart a finished producer
    # The layer must be valid for Pebble/ops.
    assert ops.pebble.Layer(layer).services["kafka-test-app"].command == svc["command"]


def test_stopped_layer_has_no_environment_and_is_disabled():
    svc = workload.stopped_layer("producer")["services"]["kafka-test-app"]
    assert svc["startup"] == "disabled"
    assert "environment" not in svc


# -- decide ---------------------------------------------------------------

ABSENT = workload.RelationView("absent")
READY = workload.RelationView("ready", connection=conn())


def test_decide_invalid_config_blocks_and_keeps_workload():
    err = ConfigError("role", "must be one of producer, consumer (got 'x')")
    plan = workload.decide(err, True, False, None, READY)
    assert plan.status == ops.BlockedStatus(str(err))
    assert plan.action == "keep"


def test_decide_waits_for_container():
    plan = workload.decide(CONSUMER, False, False, None, READY)
    assert isinstance(plan.status, ops.WaitingStatus) and plan.action == "keep"


def test_decide_no_relation_is_the_original_message_and_stops():
    plan = workload.decide(CONSUMER, True, False, None, ABSENT)
    assert plan.status == ops.ActiveStatus(
        "Please relate with Kafka or use the action to run the application without the relation."
    )
    assert plan.action == "stop"


def test_decide_ready_runs_with_original_active_message():
    plan = workload.decide(PRODUCER, True, False, None, READY)
    assert plan.status == ops.ActiveStatus("Topic t enabled with process producer")
    assert plan.action == "run"
    assert plan.layer["services"]["kafka-test-app"]["environment"]["KTA_PASSWORD"] == PASSWORD
    assert plan.ca_cert is None


def test_decide_tls_carries_ca():
    ready = workload.RelationView("ready", connection=conn(tls=True, tls_ca="CA"))
    assert workload.decide(CONSUMER, True, False, None, ready).ca_cert == "CA"


def test_decide_waiting_relation_keeps_and_reports_reason():
    plan = workload.decide(CONSUMER, True, False, None, workload.RelationView("waiting", "why"))
    assert plan.status == ops.WaitingStatus("why") and plan.action == "keep"


def test_decide_topic_mismatch_blocks_but_keeps_running_on_granted_topic():
    other = workload.RelationView("ready", connection=conn(topic="old"))
    plan = workload.decide(CONSUMER, True, False, None, other)
    assert plan.status == ops.BlockedStatus(
        "Please remove relation and recreate a new one to track topic t"
    )
    assert plan.layer["services"]["kafka-test-app"]["environment"]["KTA_TOPIC"] == "old"


def test_decide_manual_beats_relation_and_stopped_beats_manual():
    manual = conn(topic="manual", source="action")
    plan = workload.decide(CONSUMER, True, False, manual, READY)
    assert plan.layer["services"]["kafka-test-app"]["environment"]["KTA_TOPIC"] == "manual"
    assert plan.status == ops.ActiveStatus("Topic manual enabled with process consumer")
    stopped = workload.decide(CONSUMER, True, True, manual, READY)
    assert stopped.action == "stop" and isinstance(stopped.status, ops.BlockedStatus)


# -- fetch_report ---------------------------------------------------------


def test_fetch_report_reads_body(monkeypatch):
    seen = {}

    def fake_urlopen(url, timeout):
        seen["url"], seen["timeout"] = url, timeout
        return io.BytesIO(b'{"sent": 1}')

    monkeypatch.setattr(workload.urllib.request, "urlopen", fake_urlopen)
    assert workload.fetch_report() == '{"sent": 1}'
    assert seen == {"url": "http://localhost:8080/report", "timeout": 5.0}


def test_fetch_report_connection_refused_is_oserror():
    # Port 9 on loopback ("discard") is closed here; nothing leaves the machine.
    with pytest.raises(OSError):
        workload.fetch_report("http://127.0.0.1:9/report", timeout=1)
    assert issubclass(urllib.error.URLError, OSError)


def test_service_change_classification():
    base = {"command": "c", "environment": {"KTA_BOOTSTRAP_SERVERS": "a:1", "KTA_PASSWORD": "p"}}
    servers = {
        "command": "c",
        "environment": {"KTA_BOOTSTRAP_SERVERS": "b:2", "KTA_PASSWORD": "p"},
    }
    password = {
        "command": "c",
        "environment": {"KTA_BOOTSTRAP_SERVERS": "a:1", "KTA_PASSWORD": "q"},
    }
    assert workload.service_change(None, base) == "none"
    assert workload.service_change(base, dict(base)) == "none"
    assert workload.service_change(base, servers) == "endpoints"
    assert workload.service_change(base, password) == "restart"
    assert workload.service_change(base, base | {"command": "d"}) == "restart"
