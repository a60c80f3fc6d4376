"""The kafka-test-app workload: connection details, environment, Pebble layer.

Pure functions only (no ops model access, no I/O except ``fetch_report``), so
that every decision the charm takes can be unit-tested without Juju:

* ``connection_from_response`` / ``connection_from_action`` turn what the
  ``kafka-cluster`` relation or the ``start-process`` action provide into a
  ``Connection``;
* ``build_environment`` and ``build_layer`` turn config plus connection into
  the Pebble layer (credentials only ever in the environment, never in argv);
* ``decide`` combines everything into a ``Plan``: the unit status and what to
  do with the service (run it with a layer, stop it, or leave it alone).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import ops

from config import CharmConfig, ConfigError, consumer_group_prefix_problem, topic_name_problem

SERVICE = "kafka-test-app"
CONTAINER = "kafka-test-app"
LAYER = "kafka-test-app"
BINARY = "/usr/local/bin/kafka-test-app"
CA_PATH = "/etc/kafka-test-app/ca.pem"
HTTP_PORT = 8080
HTTP_ADDR = f"0.0.0.0:{HTTP_PORT}"
HEALTH_URL = f"http://localhost:{HTTP_PORT}/healthz"
REPORT_URL = f"http://localhost:{HTTP_PORT}/report"
SASL_MECHANISM = "SCRAM-SHA-512"

NO_RELATION_MESSAGE = (
    "Please relate with Kafka or use the action to run the application without the relation."
)
STOPPED_MESSAGE = "Process stopped by the stop-process action; run start-process to start it again"

SUBCOMMANDS = {"producer": "produce", "consumer": "consume"}


@dataclass(frozen=True)
class Connection:
    """Everything needed to reach Kafka; ``password`` is kept out of ``repr``."""

    servers: str
    username: str
    password: str = field(repr=False)
    topic: str
    tls: bool = False
    tls_ca: str | None = None
    consumer_group_prefix: str = ""
    source: Literal["relation", "action"] = "relation"


@dataclass(frozen=True)
class RelationView:
    """What the charm could learn from the ``kafka-cluster`` relation.

    ``state`` is one of ``absent`` (no relation), ``waiting`` (related but the
    credentials are not there yet; ``reason`` says why) or ``ready``
    (``connection`` is set).
    """

    state: Literal["absent", "waiting", "ready"]
    reason: str = ""
    connection: Connection | None = None


@dataclass(frozen=True)
class Plan:
    """The decision for one hook: status plus what to do with the service.

    ``action`` is ``run`` (apply ``layer``, push ``ca_cert`` first if set),
    ``stop`` (stop the service if it exists) or ``keep`` (touch nothing).
    """

    status: ops.StatusBase
    action: Literal["run", "stop", "keep"]
    layer: dict[str, Any] | None = None
    ca_cert: str | None = None


def active_message(topic: str, role: str) -> str:
    """Return the status message of a running workload (same as the original charm)."""
    return f"Topic {topic} enabled with process {role}"


def connection_from_response(response: Any, requested_topic: str) -> RelationView:
    """Build a ``RelationView`` from a data-interfaces ``KafkaResponseModel``.

    ``response`` is duck-typed (``endpoints``, ``username``, ``password``,
    ``tls``, ``tls_ca``, ``consumer_group_prefix``, ``resource``) so tests can
    pass a plain namespace; None means Kafka has not answered yet.
    """
    if response is None:
        return RelationView(
            "waiting",
            reason=(
                f"Waiting for Kafka to grant topic {requested_topic} "
                "(needs a Kafka charm speaking data-interfaces v1)"
            ),
        )
    missing = [
        name for name in ("endpoints", "username", "password") if not getattr(response, name, None)
    ]
    if missing:
        return RelationView("waiting", reason=f"Waiting for Kafka to provide {', '.join(missing)}")
    tls = bool(getattr(response, "tls", None))
    tls_ca = getattr(response, "tls_ca", None) or None
    if tls and not tls_ca:
        return RelationView("waiting", reason="Waiting for Kafka to provide its TLS CA")
    return RelationView(
        "ready",
        connection=Connection(
            servers=response.endpoints,
            username=response.username,
            password=response.password,
            topic=getattr(response, "resource", None) or requested_topic,
            tls=tls,
            tls_ca=tls_ca,
            consumer_group_prefix=getattr(response, "consumer_group_prefix", None) or "",
            source="relation",
        ),
    )


def connection_from_action(params: Mapping[str, Any]) -> Connection:
    """Build a ``Connection`` from ``start-process`` action parameters.

    Raises ``ValueError`` with a user-facing message (never containing the
    password) when a parameter is missing or invalid.
    """
    values = {}
    for name in ("servers", "username", "password", "topic-name"):
        value = params.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"parameter '{name}' is required and must be a non-empty string")
        values[name] = value.strip()
    servers = ",".join(s.strip() for s in values["servers"].split(",") if s.strip())
    if problem := topic_name_problem(values["topic-name"]):
        raise ValueError(f"parameter 'topic-name' {problem}")
    prefix = params.get("consumer-group-prefix") or ""
    if not isinstance(prefix, str):
        raise ValueError("parameter 'consumer-group-prefix' must be a string")
    if problem := consumer_group_prefix_problem(prefix.strip()):
        raise ValueError(f"parameter 'consumer-group-prefix' {problem}")
    return Connection(
        servers=servers,
        username=values["username"],
        password=values["password"],
        topic=values["topic-name"],
        consumer_group_prefix=prefix.strip(),
        source="action",
    )


def connection_to_secret(conn: Connection) -> dict[str, str]:
    """Serialise an action-provided connection as Juju secret content.

    Juju secret keys must be lowercase letters, digits and hyphens; empty
    values are left out because Juju rejects them.
    """
    content = {
        "servers": conn.servers,
        "username": conn.username,
        "password": conn.password,
        "topic": conn.topic,
        "consumer-group-prefix": conn.consumer_group_prefix,
    }
    return {k: v for k, v in content.items() if v}


def connection_from_secret(content: Mapping[str, str]) -> Connection | None:
    """Inverse of ``connection_to_secret``; None if the content is incomplete."""
    if not all(content.get(k) for k in ("servers", "username", "password", "topic")):
        return None
    return Connection(
        servers=content["servers"],
        username=content["username"],
        password=content["password"],
        topic=content["topic"],
        consumer_group_prefix=content.get("consumer-group-prefix", ""),
        source="action",
    )


def format_number(value: float) -> str:
    """Render a number for an environment variable: ``2.0`` -> ``2``, ``0.5`` -> ``0.5``."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def resolve_consumer_group_prefix(conn: Connection, config: CharmConfig) -> str:
    """Pick the consumer group prefix for the workload.

    The connection's (relation or action) wins; otherwise the
    ``consumer_group_prefix`` config option, which may be empty.
    """
    return conn.consumer_group_prefix or config.consumer_group_prefix


def build_environment(config: CharmConfig, conn: Connection) -> dict[str, str]:
    """Return the workload's environment (the only place credentials go)."""
    env = {
        "KTA_BOOTSTRAP_SERVERS": conn.servers,
        "KTA_SECURITY_PROTOCOL": "SASL_SSL" if conn.tls else "SASL_PLAINTEXT",
        "KTA_SASL_MECHANISM": SASL_MECHANISM,
        "KTA_USERNAME": conn.username,
        "KTA_PASSWORD": conn.password,
        "KTA_TOPIC": conn.topic,
        "KTA_HTTP_ADDR": HTTP_ADDR,
        "KTA_LOG_FORMAT": "json",
    }
    if conn.tls:
        env["KTA_CA_FILE"] = CA_PATH
    if config.role == "producer":
        env.update(
            {
                "KTA_RATE": format_number(config.rate),
                "KTA_NUM_MESSAGES": str(config.num_messages),
                "KTA_PARTITIONS": str(config.partitions),
                "KTA_REPLICATION_FACTOR": str(config.replication_factor),
            }
        )
    elif prefix := resolve_consumer_group_prefix(conn, config):
        env["KTA_CONSUMER_GROUP_PREFIX"] = prefix
    return env


def build_command(role: str) -> str:
    """Return the service command for ``role``; it never carries a secret."""
    return f"{BINARY} {SUBCOMMANDS[role]}"


def build_layer(role: str, environment: Mapping[str, str]) -> dict[str, Any]:
    """Return the Pebble layer running the workload with ``environment``.

    A producer exits 0 after ``num_messages`` events: ``on-success: ignore``
    keeps it from being restarted then, ``on-failure: restart`` retries a
    crash. The alive check polls ``/healthz``.
    """
    return {
        "summary": "kafka-test-app layer",
        "description": "Kafka test producer/consumer managed by the kafka-test-app charm",
        "services": {
            SERVICE: {
                "override": "replace",
                "summary": f"kafka-test-app {role}",
                "command": build_command(role),
                "startup": "enabled",
                "on-success": "ignore",
                "on-failure": "restart",
                "kill-delay": "10s",
                "environment": dict(environment),
            }
        },
        "checks": {
            "kafka-test-app-alive": {
                "override": "replace",
                "level": "alive",
                "period": "10s",
                "timeout": "3s",
                "threshold": 3,
                "http": {"url": HEALTH_URL},
            }
        },
    }


def stopped_layer(role: str) -> dict[str, Any]:
    """Return the layer that parks the service.

    The service is not started by a replan, and has no environment left, so
    no credentials linger in the Pebble plan.
    """
    return {
        "summary": "kafka-test-app layer (stopped)",
        "services": {
            SERVICE: {
                "override": "replace",
                "summary": "kafka-test-app (stopped)",
                "command": build_command(role),
                "startup": "disabled",
            }
        },
    }


def _run_plan(config: CharmConfig, conn: Connection, status: ops.StatusBase) -> Plan:
    layer = build_layer(config.role, build_environment(config, conn))
    return Plan(
        status=status, action="run", layer=layer, ca_cert=conn.tls_ca if conn.tls else None
    )


def decide(
    config: CharmConfig | ConfigError,
    can_connect: bool,
    stopped: bool,
    manual: Connection | None,
    relation: RelationView,
) -> Plan:
    """Decide status and service action from everything the charm knows.

    Precedence: invalid config, unreachable container, stopped by action,
    action-provided connection, then the relation.
    """
    if isinstance(config, ConfigError):
        return Plan(ops.BlockedStatus(str(config)), "keep")
    if not can_connect:
        return Plan(ops.WaitingStatus("Waiting for the kafka-test-app container"), "keep")
    if stopped:
        return Plan(ops.BlockedStatus(STOPPED_MESSAGE), "stop")
    if manual is not None:
        return _run_plan(
            config, manual, ops.ActiveStatus(active_message(manual.topic, config.role))
        )
    if relation.state == "absent":
        return Plan(ops.BlockedStatus(NO_RELATION_MESSAGE), "stop")
    if relation.state == "waiting" or relation.connection is None:
        return Plan(ops.WaitingStatus(relation.reason or "Waiting for Kafka"), "keep")
    conn = relation.connection
    if conn.topic != config.topic_name:
        # The relation granted access to another topic: keep running on it,
        # but tell the operator how to move to the configured one.
        status = ops.BlockedStatus(
            f"Please remove relation and recreate a new one to track topic {config.topic_name}"
        )
        return _run_plan(config, conn, status)
    return _run_plan(config, conn, ops.ActiveStatus(active_message(conn.topic, config.role)))


def fetch_report(url: str = REPORT_URL, timeout: float = 5.0) -> str:
    """GET the workload's ``/report`` endpoint and return the body as text.

    Kept tiny and separate so tests can replace it; raises ``OSError`` (incl.
    ``urllib.error.URLError``) on connection problems.
    """
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed local URL)
        return response.read().decode("utf-8")
