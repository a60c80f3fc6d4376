"""Shared fixtures: the Scenario context and builders for the Kafka relation.

The relation data mirrors what Charmed Kafka K8s (data-interfaces v1
provider, ``KafkaCompatibilityResponseModel``) writes for a v1 requirer: the
application databag holds ``version``, ``requests`` (one response per request,
with ``secret-user`` and ``secret-tls`` URIs, plain ``endpoints``, ``resource``
and ``consumer-group-prefix``) and ``data`` (the provider's copy of our
request, which the requirer library uses to match responses to requests).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from ops import pebble, testing

CHARM_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CHARM_ROOT / "src"))

from charm import KafkaTestAppCharm  # noqa: E402

REQUEST_ID = "c759221a6c14c72a"
SALT = "kkkkkkkkkkkkkkkk"
PASSWORD = "Sup3r-s3cret-pa55word"  # a value that must never leak into argv, logs or status
USERNAME = "relation-7"
ENDPOINTS = "kafka-k8s-0.kafka-k8s-endpoints:9092,kafka-k8s-1.kafka-k8s-endpoints:9092"
TLS_ENDPOINTS = "kafka-k8s-0.kafka-k8s-endpoints:9093"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n"
GROUP_PREFIX = "relation-7-"


@pytest.fixture
def ctx() -> testing.Context:
    return testing.Context(KafkaTestAppCharm)


def container(**kwargs) -> testing.Container:
    kwargs.setdefault("can_connect", True)
    return testing.Container("kafka-test-app", **kwargs)


def peer(stopped: bool = False) -> testing.PeerRelation:
    return testing.PeerRelation(
        "app-peers", local_unit_data={"stopped": "true"} if stopped else {}
    )


def kafka_relation(
    *,
    topic: str = "test-topic",
    roles: str = "consumer",
    tls: bool = False,
    ca: str | None = CA_PEM,
    password: str = PASSWORD,
    endpoints: str | None = None,
    prefix: str | None = GROUP_PREFIX,
    answered: bool = True,
    relation_id: int | None = None,
) -> tuple[testing.Relation, list[testing.Secret]]:
    """Return the kafka-cluster relation as Charmed Kafka fills it, plus its secrets."""
    if not answered:
        kwargs = {"id": relation_id} if relation_id is not None else {}
        return testing.Relation("kafka-cluster", remote_app_name="kafka-k8s", **kwargs), []
    user = testing.Secret({"username": USERNAME, "password": password})
    tls_content = {"tls": json.dumps(tls)}
    if tls and ca:
        tls_content["tls-ca"] = ca
    tls_secret = testing.Secret(tls_content)
    response = {
        "request-id": REQUEST_ID,
        "salt": SALT,
        "resource": topic,
        "endpoints": endpoints or (TLS_ENDPOINTS if tls else ENDPOINTS),
        "secret-user": user.id,
        "secret-tls": tls_secret.id,
        "version": "v1",
    }
    if prefix:
        response["consumer-group-prefix"] = prefix
    remote_app_data = {
        "version": "v1",
        "requests": json.dumps([response]),
        "data": json.dumps(
            {
                REQUEST_ID: {
                    "request-id": REQUEST_ID,
                    "salt": SALT,
                    "resource": topic,
                    "extra-user-roles": roles,
                }
            }
        ),
    }
    # What the requirer library wrote on relation-created (our own request).
    local_app_data = {
        "version": "v1",
        "requests": json.dumps(
            [
                {
                    "resource": topic,
                    "request-id": REQUEST_ID,
                    "salt": SALT,
                    "extra-user-roles": roles,
                }
            ]
        ),
    }
    kwargs = {"id": relation_id} if relation_id is not None else {}
    relation = testing.Relation(
        "kafka-cluster",
        remote_app_name="kafka-k8s",
        local_app_data=local_app_data,
        remote_app_data=remote_app_data,
        remote_units_data={0: {}},
        **kwargs,
    )
    return relation, [user, tls_secret]


def service_env(state: testing.State) -> dict[str, str]:
    plan = state.get_container("kafka-test-app").plan
    return dict(plan.services["kafka-test-app"].environment)


def service_status(state: testing.State) -> pebble.ServiceStatus:
    return state.get_container("kafka-test-app").services["kafka-test-app"].current
