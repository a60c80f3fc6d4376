"""The kafka-cluster relation as each Charmed Kafka K8s generation fills it for a v0 requirer.

Derived from the providers' source (canonical/kafka-k8s-operator; the
``revNN`` git tags are made by its release workflow and name Charmhub
revisions), not from a deployment:

* ``track-3-plain`` -- early track 3, tag ``rev47``
  (ea8c8f4d798f8b78b646931ca51eab3473cec871, 2023-11-28), data_interfaces v0
  LIBPATCH 16 (no Juju secrets). ``src/provider.py`` ``on_topic_requested``
  writes, in this order, in one hook: ``endpoints``,
  ``consumer-group-prefix`` (``<username>-`` for a consumer unless requested;
  empty, so absent, for a producer), ``username`` (``relation-<id>``) and
  ``password``, ``tls`` (``enabled``/``disabled``), ``zookeeper-uris``,
  ``topic`` (the requested value). No ``tls-ca`` (first written in ``rev60``).
  ACLs are LITERAL: a ``<topic>*`` request is granted as the literal name.
* ``track-3-secrets`` -- late track 3, tag ``rev84``
  (224b79f0b928c69fbbc1f2414e70a930d2604c45, 2025-06-20; the ``3/edge``
  branch head 97a09ddcea5904c5338cfab26719ccbdc7309daf, 2026-03-18, is the
  same here), v0 LIBPATCH 46 (38 on 3/edge). ``src/events/broker.py``
  ``update_client_data`` writes ``endpoints``, ``zookeeper-uris``,
  ``consumer-group-prefix``, ``topic``, ``username``, ``password``, ``tls``,
  ``tls-ca`` in one update; the library puts the fields the requirer listed
  in ``requested-secrets`` into secrets: ``secret-user`` (``username``,
  ``password``) and ``secret-tls`` (``tls``, ``tls-ca``). Secrets since
  ``rev49`` (d5140f8941e0a77d5670cc95c5bb4fba1ee25733, LIBPATCH 26); prefix
  (``*``) topic grants since ``rev75``
  (15800bae1af113e8bbb29abffa04d3355610cf61, ``managers/auth.py``).
* ``track-4`` -- KRaft, tag ``rev116``
  (92a4a206a6f5e073ff8d34a20451f5e3d14cccf2, 2026-06-11), the v1 library
  (since ``rev95``, afd1051780ed371d061a20796b4b3d9e48961082).
  ``src/events/provider.py`` ``reconcile`` builds a
  ``KafkaCompatibilityResponseModel`` (``tls`` stays ``enabled``/``disabled``
  for a v0 client) and ``ResourceProviderEventHandler.set_response`` writes it
  flat for a requirer without ``version: v1``: ``resource``, ``salt``,
  ``endpoints``, ``consumer-group-prefix``, ``version: v0``, and always
  ``secret-user``/``secret-tls``; its relation-changed handler also writes
  ``topic`` back (the "v0 compatibility" patch). Usernames are
  ``relation-<id>`` (no request id in v0).

Every provider library also keeps its copy of the requirer's databag in
``data`` (a JSON object), which a requirer must ignore.
"""

from __future__ import annotations

import json

from ops import testing

PASSWORD = "Sup3r-s3cret-pa55word"  # must never leak into argv, logs or status
ROTATED = "r0tated-Pa55word-2"
RELATION_ID = 7
USERNAME = f"relation-{RELATION_ID}"
ENDPOINTS = "kafka-k8s-0.kafka-k8s-endpoints:9092,kafka-k8s-1.kafka-k8s-endpoints:9092"
TLS_ENDPOINTS = "kafka-k8s-0.kafka-k8s-endpoints:9093,kafka-k8s-1.kafka-k8s-endpoints:9093"
ZK_URIS = "zookeeper-k8s-0.zookeeper-k8s-endpoints:2181/kafka-k8s"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n"
SALT = "kkkkkkkkkkkkkkkk"
GENERATIONS = ("track-3-plain", "track-3-secrets", "track-4")
REQUESTED_SECRETS = '["username", "password", "tls", "tls-ca"]'


def requirer_data(topic: str, role: str, prefix: str = "") -> dict[str, str]:
    """What this charm's leader writes (the v0 KafkaRequires field names)."""
    data = {"topic": topic, "extra-user-roles": role, "requested-secrets": REQUESTED_SECRETS}
    if prefix:
        data["consumer-group-prefix"] = prefix
    return data


def kafka_relation(
    generation: str,
    *,
    topic: str = "test-topic*",
    role: str = "consumer",
    tls: bool = False,
    ca: str | None = CA_PEM,
    password: str = PASSWORD,
    prefix: str = "",
    answered: bool = True,
) -> tuple[testing.Relation, list[testing.Secret]]:
    """Return the relation as ``generation`` fills it after our request, plus its secrets."""
    local = requirer_data(topic, role, prefix)
    if not answered:
        relation = testing.Relation(
            "kafka-cluster",
            id=RELATION_ID,
            remote_app_name="kafka-k8s",
            local_app_data=local,
            remote_units_data={0: {}},
        )
        return relation, []
    group = prefix or (f"{USERNAME}-" if role == "consumer" else "")
    tls_value = "enabled" if tls else "disabled"
    endpoints = TLS_ENDPOINTS if tls else ENDPOINTS
    remote: dict[str, str] = {"data": json.dumps(local)}
    secrets: list[testing.Secret] = []
    if generation == "track-3-plain":
        remote |= {"endpoints": endpoints}
        if group:
            remote["consumer-group-prefix"] = group
        remote |= {"username": USERNAME, "password": password, "tls": tls_value}
        remote |= {"zookeeper-uris": ZK_URIS, "topic": topic}
    else:
        user = testing.Secret({"username": USERNAME, "password": password})
        tls_content = {"tls": tls_value}
        if tls and ca:
            tls_content["tls-ca"] = ca
        tls_secret = testing.Secret(tls_content)
        secrets = [user, tls_secret]
        remote |= {"endpoints": endpoints, "secret-user": user.id, "secret-tls": tls_secret.id}
        if group:
            remote["consumer-group-prefix"] = group
        remote["topic"] = topic
        if generation == "track-3-secrets":
            remote["zookeeper-uris"] = ZK_URIS
        elif generation == "track-4":
            remote |= {"resource": topic, "salt": SALT, "version": "v0"}
        else:
            raise ValueError(generation)
    relation = testing.Relation(
        "kafka-cluster",
        id=RELATION_ID,
        remote_app_name="kafka-k8s",
        local_app_data=local,
        remote_app_data=remote,
        remote_units_data={0: {}},
    )
    return relation, secrets
