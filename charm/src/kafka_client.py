"""A small requirer for the ``kafka_client`` interface, data-interfaces protocol **v0**.

Pure functions only: what the requirer writes, and how to read what a
Charmed Kafka provider wrote back. The charm does the Juju calls.

Why v0: every Charmed Kafka generation speaks it (source read in
canonical/kafka-k8s-operator and canonical/data-platform-libs, see
``tests/unit/fixtures.py`` for the revisions and commits):

* early track 3 (kafka-k8s revisions up to 47, data_interfaces v0 LIBPATCH
  <= 16): the credentials come back as plain databag keys (``username``,
  ``password``, ``tls``, ``endpoints``, ``topic``, ``consumer-group-prefix``,
  ``zookeeper-uris``; no ``tls-ca``); ``requested-secrets`` is ignored;
* late track 3 (revisions 49-84 and the ``3/edge`` branch, LIBPATCH 26-46):
  the fields listed in our ``requested-secrets`` go into Juju secrets
  announced as ``secret-user`` (``username``, ``password``) and ``secret-tls``
  (``tls``, ``tls-ca``); the rest stays in the databag;
* track 4 (KRaft; revisions 85-94 with the v0 library, 95+ with the v1
  library, whose ``ResourceProviderEventHandler`` still answers a requirer
  without ``version: v1`` the v0 way): same as late track 3, plus
  ``resource``, ``salt`` and ``version: v0`` keys; secrets always.

``tls`` is ``enabled``/``disabled`` from every v0 answer (track 4 writes
``true``/``false`` only to v1 requirers); both spellings are accepted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

# What we ask the provider to put in Juju secrets rather than the databag.
REQUESTED_SECRETS = ("username", "password", "tls", "tls-ca")
# The only roles this charm ever requests. "admin" is deliberately absent:
# Charmed Kafka makes an admin relation user a super-user and rolls the
# brokers to apply it.
ROLES = ("producer", "consumer")
# Charmed Kafka turns a topic request ending in "*" into a PREFIXED ACL when
# the name is longer than 3 characters (managers/auth.py, revision 75 on);
# the v0 requirer library refuses "*" in the first 3 characters.
WILDCARD = "*"

Generation = Literal["track-3-plain", "track-3-secrets", "track-4", "unknown"]


@dataclass(frozen=True)
class TopicRequest:
    """What to ask Kafka for, and what the workload then uses."""

    requested: str  # the value of the ``topic`` field
    data_topic: str  # the topic the workload produces to / consumes from
    covers_control: bool  # whether the grant also covers ``<data_topic>-kta-control``

    @property
    def wildcard(self) -> bool:
        """Whether the request is a prefix (wildcard) request."""
        return self.requested.endswith(WILDCARD)


def topic_request(topic: str, prefix_grant: bool) -> TopicRequest:
    """Return the topic request for ``topic``.

    With ``prefix_grant`` (and a topic long enough for Charmed Kafka to treat
    the ``*`` as a prefix), ``<topic>*`` covers the data topic and the control
    topic ``<topic>-kta-control`` with one grant; otherwise the topic itself.
    """
    if prefix_grant and len(topic) >= 3:
        return TopicRequest(f"{topic}{WILDCARD}", topic, covers_control=True)
    return TopicRequest(topic, topic, covers_control=False)


def data_topic_of(granted: str) -> str:
    """Return the data topic a granted ``topic`` value stands for."""
    return granted[: -len(WILDCARD)] if granted.endswith(WILDCARD) else granted


def build_request(role: str, request: TopicRequest, consumer_group_prefix: str) -> dict[str, str]:
    """Return the requirer's application databag for the v0 protocol.

    Field names and encodings are those of data_interfaces v0
    ``KafkaRequirerEventHandlers._on_relation_created_event``: ``topic``,
    ``extra-user-roles``, ``consumer-group-prefix`` only when set, and
    ``requested-secrets`` as a JSON list.
    """
    if role not in ROLES:
        raise ValueError(f"refusing to request role {role!r}")
    data = {
        "topic": request.requested,
        "extra-user-roles": role,
        "requested-secrets": json.dumps(list(REQUESTED_SECRETS)),
    }
    if consumer_group_prefix and role == "consumer":
        data["consumer-group-prefix"] = consumer_group_prefix
    return data


@dataclass(frozen=True)
class Response:
    """What the provider answered, secrets resolved. ``password`` is kept out of ``repr``."""

    generation: Generation
    topic: str = ""
    endpoints: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    tls: bool = False
    tls_ca: str = ""
    consumer_group_prefix: str = ""
    unreadable: tuple[str, ...] = ()  # secret fields announced but not readable (yet)

    def missing(self) -> list[str]:
        """Return the fields still needed before the workload can connect."""
        return [name for name in ("endpoints", "username", "password") if not getattr(self, name)]


def parse_tls(value: str | None) -> bool:
    """Return whether a ``tls`` value means TLS is on (``enabled`` or ``true``)."""
    return (value or "").strip().lower() in ("enabled", "true")


def generation_of(data: Mapping[str, str]) -> Generation:
    """Tell which provider generation wrote ``data`` (the remote application databag)."""
    secrets = any(data.get(k) for k in ("secret-user", "secret-tls"))
    if data.get("zookeeper-uris"):
        return "track-3-secrets" if secrets else "track-3-plain"
    if secrets:
        return "track-4"
    if data.get("password"):
        return "track-3-plain"  # plain credentials and no ZooKeeper: treat as the old kind
    return "unknown"


def parse_response(
    data: Mapping[str, str], read_secret: Callable[[str], Mapping[str, str] | None]
) -> Response | None:
    """Read the provider's application databag; None if it has not answered at all.

    ``read_secret(uri)`` returns a secret's content, or None if it cannot be
    read (yet). A field in a secret wins over the same field in the databag.
    """
    if not any(data.get(k) for k in ("topic", "resource", "endpoints", "secret-user", "password")):
        return None
    values = {k: data.get(k, "") for k in ("username", "password", "tls", "tls-ca")}
    unreadable = []
    for secret_field in ("secret-user", "secret-tls"):
        uri = data.get(secret_field)
        if not uri:
            continue
        content = read_secret(uri)
        if content is None:
            unreadable.append(secret_field)
            continue
        values.update({k: v for k, v in content.items() if k in values and v})
    return Response(
        generation=generation_of(data),
        topic=data.get("topic") or data.get("resource") or "",
        endpoints=data.get("endpoints", ""),
        username=values["username"],
        password=values["password"],
        tls=parse_tls(values["tls"]),
        tls_ca=values["tls-ca"],
        consumer_group_prefix=data.get("consumer-group-prefix", ""),
        unreadable=tuple(unreadable),
    )
