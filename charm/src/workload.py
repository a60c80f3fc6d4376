"""The kafka-test-app workload: connection details, environment, Pebble layer.

Pure functions only (no ops model access, no I/O except ``fetch_report``), so
that every decision the charm takes can be unit-tested without Juju:

* ``connection_from_response`` / ``connection_from_action`` turn what the
  ``kafka-cluster`` relation or the ``start-process`` action provide into a
  ``Connection``;
* ``build_environment`` and ``build_layer`` turn config plus connection into
  the Pebble layer (credentials only ever in the environment, never in argv);
* ``RunRecord`` remembers what a bounded producer did (kept by the charm in
  the peer unit databag), so that a finished run is never sent again;
* ``decide`` combines everything into a ``Plan``: the unit status and what to
  do with the service (run it with a layer, update the plan only, park it,
  or leave it alone).
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
    granted: str = ""  # the topic value Kafka granted ("<topic>*" for a prefix grant)
    covers_control: bool = False  # the grant also covers the control topic


@dataclass(frozen=True)
class RelationView:
    """What the charm could learn from the ``kafka-cluster`` relation.

    ``state`` is one of ``absent`` (no relation), ``waiting`` (related but the
    credentials are not there yet; ``reason`` says why), ``blocked`` (the
    provider cannot serve what was requested; ``reason`` says what to do) or
    ``ready`` (``connection`` is set). ``generation`` names the provider kind.
    """

    state: Literal["absent", "waiting", "blocked", "ready"]
    reason: str = ""
    connection: Connection | None = None
    generation: str = ""


@dataclass(frozen=True)
class Plan:
    """The decision for one hook: status plus what to do with the service.

    ``action`` is ``run`` (apply ``layer``, push ``ca_cert`` first if set),
    ``plan`` (put ``layer`` in Pebble's plan without restarting the running
    service), ``stop`` (park the service if it exists) or ``keep`` (touch
    nothing).
    """

    status: ops.StatusBase
    action: Literal["run", "plan", "stop", "keep"]
    layer: dict[str, Any] | None = None
    ca_cert: str | None = None
    record: RunRecord | None = None  # to store in the peer unit databag, if set
    restart: bool = False  # restart the service even if its definition is unchanged


def active_message(topic: str, role: str) -> str:
    """Return the status message of a running workload (same as the original charm)."""
    return f"Topic {topic} enabled with process {role}"


def connection_from_response(response: Any, request: Any) -> RelationView:
    """Build a ``RelationView`` from a parsed ``kafka_client.Response``.

    ``request`` is the ``kafka_client.TopicRequest`` the charm would send now;
    ``response`` None means Kafka has not answered yet. Both are duck-typed so
    tests can pass plain namespaces.
    """
    if response is None:
        return RelationView(
            "waiting", reason=f"Waiting for Kafka to grant topic {request.requested}"
        )
    if response.unreadable:
        return RelationView(
            "waiting",
            reason=f"Waiting for access to Kafka's {', '.join(response.unreadable)} secret",
        )
    if missing := response.missing():
        return RelationView("waiting", reason=f"Waiting for Kafka to provide {', '.join(missing)}")
    granted = response.topic or request.requested
    if granted.endswith("*") and response.generation == "track-3-plain":
        # Revisions that hand out plain databag credentials (kafka-k8s <= 47)
        # grant "<topic>*" as a LITERAL ACL: the producer could not write.
        return RelationView(
            "blocked",
            reason=(
                f"This Kafka cannot grant the topic prefix {granted}: set "
                "topic_prefix_grant=false, then remove and re-add the relation"
            ),
        )
    if response.tls and not response.tls_ca:
        if response.generation == "track-3-plain":
            return RelationView(
                "blocked",
                reason="Kafka has TLS on but this revision sends no CA (needs kafka-k8s 60+)",
            )
        return RelationView("waiting", reason="Waiting for Kafka to provide its TLS CA")
    return RelationView(
        "ready",
        connection=Connection(
            servers=response.endpoints,
            username=response.username,
            password=response.password,
            topic=granted[:-1] if granted.endswith("*") else granted,
            tls=response.tls,
            tls_ca=response.tls_ca or None,
            consumer_group_prefix=response.consumer_group_prefix or "",
            source="relation",
            granted=granted,
            covers_control=granted.endswith("*"),
        ),
        generation=response.generation,
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


def control_topic(topic: str) -> str:
    """Return the control topic the workload uses for ``topic`` (its default)."""
    return f"{topic}-kta-control"


def bounded_producer(config: CharmConfig) -> bool:
    """Whether the workload is a producer that exits after ``num_messages``."""
    return config.role == "producer" and config.num_messages > 0


def build_environment(config: CharmConfig, conn: Connection) -> dict[str, str]:
    """Return the workload's environment (the only place credentials go).

    Run reports (producer) go to the control topic only when the grant covers
    it; a consumer never writes member reports, as the ``consumer`` role
    grants no WRITE.
    """
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
        if conn.covers_control or conn.source == "action":
            env["KTA_CONTROL_TOPIC"] = control_topic(conn.topic)
        else:
            env["KTA_NO_RUN_REPORTS"] = "true"
    else:
        env["KTA_NO_MEMBER_REPORTS"] = "true"
        if prefix := resolve_consumer_group_prefix(conn, config):
            env["KTA_CONSUMER_GROUP_PREFIX"] = prefix
    return env


def build_command(role: str) -> str:
    """Return the service command for ``role``; it never carries a secret."""
    return f"{BINARY} {SUBCOMMANDS[role]}"


def build_layer(config: CharmConfig, environment: Mapping[str, str]) -> dict[str, Any]:
    """Return the Pebble layer running the workload with ``environment``.

    No health check: Juju points the container's Kubernetes liveness probe at
    Pebble's ``alive`` checks, and an HTTP check fails as soon as a producer
    has sent ``num_messages`` and exited, so the kubelet would restart the
    container and the producer would send everything again. Pebble itself
    supervises the process.

    A bounded producer exits 0 when done (``on-success: ignore`` leaves it
    ``inactive``) and is not restarted by Pebble on failure either
    (``on-failure: ignore`` leaves it in ``error``): a restart sends
    ``num_messages`` again, so the charm decides, and says so. A consumer or
    an endless producer is restarted by Pebble (a consumer resumes from its
    group's committed offsets).
    """
    return {
        "summary": "kafka-test-app layer",
        "description": "Kafka test producer/consumer managed by the kafka-test-app charm",
        "services": {
            SERVICE: {
                "override": "replace",
                "summary": f"kafka-test-app {config.role}",
                "command": build_command(config.role),
                "startup": "enabled",
                "on-success": "ignore",
                "on-failure": "ignore" if bounded_producer(config) else "restart",
                "kill-delay": "10s",
                "environment": dict(environment),
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


@dataclass(frozen=True)
class RunRecord:
    """What this unit's bounded producer did, kept in the peer unit databag.

    ``key`` identifies the run (config and target, not credentials);
    ``state`` is ``running`` (started, not seen finished) or ``finished``
    (exited 0: all ``num_messages`` sent); ``starts`` counts how often the
    charm started it (every start sends ``num_messages`` from the beginning)
    and ``why`` says what caused the last restart.
    """

    key: str
    state: Literal["running", "finished"]
    starts: int = 1
    why: str = ""

    def to_json(self) -> str:
        """Serialise for the databag."""
        data = {"key": self.key, "state": self.state, "starts": self.starts}
        return json.dumps(data | ({"why": self.why} if self.why else {}))

    @staticmethod
    def from_json(raw: str | None) -> RunRecord | None:
        """Inverse of ``to_json``; None for a missing or unreadable value."""
        try:
            data = json.loads(raw or "")
            state = data["state"]
            if state not in ("running", "finished"):
                return None
            return RunRecord(str(data["key"]), state, int(data["starts"]), data.get("why", ""))
        except (ValueError, KeyError, TypeError):
            return None

    def restarted_note(self, n: int) -> str:
        """Return the status suffix for a run started more than once ('' otherwise)."""
        if self.starts < 2:
            return ""
        return f" (restarted after a {self.why or 'restart'}: start {self.starts} re-sent all {n})"


def run_key(config: CharmConfig, conn: Connection) -> str:
    """Identify a producer run: same key, same run (credential rotation keeps it)."""
    ident = {
        "role": config.role,
        "topic": conn.topic,
        "num_messages": config.num_messages,
        "rate": config.rate,
        "partitions": config.partitions,
        "replication_factor": config.replication_factor,
        "source": conn.source,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def service_definition(layer: Mapping[str, Any]) -> dict[str, Any]:
    """Return the service as Pebble reports it in its plan (``Service.to_dict()``)."""
    return ops.pebble.Layer(dict(layer)).services[SERVICE].to_dict()


ServiceState = Literal["absent", "active", "inactive", "error", "backoff"]


def _run_plan(
    config: CharmConfig,
    conn: Connection,
    status: ops.StatusBase,
    record: RunRecord | None = None,
    restart: bool = False,
) -> Plan:
    layer = build_layer(config, build_environment(config, conn))
    return Plan(
        status=status,
        action="run",
        layer=layer,
        ca_cert=conn.tls_ca if conn.tls else None,
        record=record,
        restart=restart,
    )


def _producer_plan(
    config: CharmConfig,
    conn: Connection,
    base: str,
    service: ServiceState,
    run: RunRecord | None,
    change: Literal["none", "endpoints", "restart"],
) -> Plan:
    """Plan a bounded producer so that it never silently sends its messages twice.

    ``change`` is how the desired service differs from Pebble's: not at all,
    only in the bootstrap servers (librdkafka finds the brokers from the
    cluster's metadata, so the running process needs no restart: the plan is
    updated for its next start), or otherwise (credentials, CA: restart).
    """
    key = run_key(config, conn)
    n = config.num_messages
    if run is None or run.key != key:
        return _run_plan(config, conn, ops.ActiveStatus(base), RunRecord(key, "running"))
    if run.state == "finished" or service == "inactive":
        done = RunRecord(key, "finished", run.starts, run.why)
        message = f"{base}: finished sending {n} messages"
        if run.starts > 1:
            message += f" (started {run.starts} times)"
        return Plan(ops.ActiveStatus(message), "stop", record=done if done != run else None)
    if service == "absent":
        # The container restarted (Pebble's plan is gone) while the run was
        # going or after it ended unseen: the binary cannot resume, so do not
        # send again behind the operator's back.
        return Plan(
            ops.BlockedStatus(
                f"Producer interrupted by a container restart, not re-sent to avoid "
                f"duplicates; re-add the relation (or start-process) to send {n} again"
            ),
            "keep",
        )
    if service in ("active", "backoff") and change == "endpoints":
        plan = _run_plan(config, conn, ops.ActiveStatus(base + run.restarted_note(n)))
        return replace(plan, action="plan")
    if service == "error" or change != "none":
        # A crash (exit != 0), or new credentials/endpoints: restart. The
        # binary cannot resume, so the new start sends all n messages again.
        why = "crash" if service == "error" else "connection change"
        again = RunRecord(key, "running", run.starts + 1, why)
        status = ops.ActiveStatus(base + again.restarted_note(n))
        return _run_plan(config, conn, status, again, restart=True)
    return _run_plan(config, conn, ops.ActiveStatus(base + run.restarted_note(n)))


def decide(
    config: CharmConfig | ConfigError,
    can_connect: bool,
    stopped: bool,
    manual: Connection | None,
    relation: RelationView,
    service: ServiceState = "absent",
    run: RunRecord | None = None,
    current_layer: Mapping[str, Any] | None = None,
    can_persist: bool = True,
) -> Plan:
    """Decide status and service action from everything the charm knows.

    Precedence: invalid config, unreachable container, stopped by action,
    action-provided connection, then the relation. A bounded producer also
    follows its ``RunRecord`` (see ``_producer_plan``); ``current_layer`` is
    the service's ``to_dict()`` in Pebble's plan now (to notice changes),
    ``can_persist`` whether the peer relation exists to store the record.
    """
    if isinstance(config, ConfigError):
        return Plan(ops.BlockedStatus(str(config)), "keep")
    if not can_connect:
        return Plan(ops.WaitingStatus("Waiting for the kafka-test-app container"), "keep")
    if stopped:
        return Plan(ops.BlockedStatus(STOPPED_MESSAGE), "stop")
    if manual is not None:
        conn = manual
    else:
        if relation.state == "absent":
            return Plan(ops.ActiveStatus(NO_RELATION_MESSAGE), "stop")
        if relation.state == "blocked":
            return Plan(ops.BlockedStatus(relation.reason), "keep")
        if relation.state == "waiting" or relation.connection is None:
            return Plan(ops.WaitingStatus(relation.reason or "Waiting for Kafka"), "keep")
        conn = relation.connection
    plan = _connected_plan(config, conn, service, run, current_layer, can_persist)
    if manual is None and conn.topic != config.topic_name:
        # The relation granted access to another topic: keep running on it
        # (or keep the producer finished), but tell the operator how to move
        # to the configured one.
        status = ops.BlockedStatus(
            f"Please remove relation and recreate a new one to track topic {config.topic_name}"
        )
        return replace(plan, status=status)
    return plan


def _connected_plan(
    config: CharmConfig,
    conn: Connection,
    service: ServiceState,
    run: RunRecord | None,
    current_layer: Mapping[str, Any] | None,
    can_persist: bool,
) -> Plan:
    base = active_message(conn.topic, config.role)
    if not bounded_producer(config):
        return _run_plan(config, conn, ops.ActiveStatus(base))
    if not can_persist:
        return Plan(
            ops.WaitingStatus("Waiting for the app-peers relation to record the producer's run"),
            "keep",
        )
    desired = service_definition(build_layer(config, build_environment(config, conn)))
    return _producer_plan(config, conn, base, service, run, service_change(current_layer, desired))


def service_change(
    current: Mapping[str, Any] | None, desired: Mapping[str, Any]
) -> Literal["none", "endpoints", "restart"]:
    """Classify how ``desired`` differs from the ``current`` service definition."""
    if current is None or dict(current) == dict(desired):
        return "none"

    def without_servers(service: Mapping[str, Any]) -> dict[str, Any]:
        env = dict(service.get("environment") or {})
        env.pop("KTA_BOOTSTRAP_SERVERS", None)
        return dict(service) | {"environment": env}

    return "endpoints" if without_servers(current) == without_servers(desired) else "restart"


def finished_report(config: CharmConfig | ConfigError, record: RunRecord) -> dict[str, str]:
    """Return ``get-report`` results for a producer that finished and exited."""
    results = {"role": "producer", "run-state": record.state, "starts": str(record.starts)}
    if not isinstance(config, ConfigError):
        results["num-messages"] = str(config.num_messages)
        results["topic"] = config.topic_name
    results["note"] = (
        "the producer sent all its messages and exited; its final report is in the workload's log"
    )
    return results


def fetch_report(url: str = REPORT_URL, timeout: float = 5.0) -> str:
    """GET the workload's ``/report`` endpoint and return the body as text.

    Kept tiny and separate so tests can replace it; raises ``OSError`` (incl.
    ``urllib.error.URLError``) on connection problems.
    """
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed local URL)
        return response.read().decode("utf-8")
