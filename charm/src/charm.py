#!/usr/bin/env python3
"""Kubernetes sidecar charm running the Rust kafka-test-app as a Kafka producer or consumer.

The charm only gathers facts (config, the ``kafka-cluster`` relation read
with the v0 requirer in ``kafka_client``, the ``start-process`` secret, the
stop flag, the producer's run record, the Pebble service state) and applies
the ``Plan`` that the pure ``workload.decide`` returns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import ops

import kafka_client
import workload
from config import CharmConfig, ConfigError, kafka_roles, parse_config
from report import ReportError, flatten_report

logger = logging.getLogger(__name__)

RELATION = "kafka-cluster"
PEER = "app-peers"
MANUAL_SECRET_LABEL = "kafka-test-app-manual-connection"  # noqa: S105 (a label, not a secret)
RUN_KEY = "producer-run"  # peer unit databag key holding a workload.RunRecord


class KafkaTestAppCharm(ops.CharmBase):
    """Charm the kafka-test-app workload."""

    # Replaceable in tests: GET the workload's /report and return the body.
    fetch_report = staticmethod(workload.fetch_report)

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._config = self._load_config()
        self._broken_relation_id: int | None = None
        for event in (
            self.on.install,
            self.on.start,
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.update_status,
            self.on.leader_elected,
            self.on.kafka_test_app_pebble_ready,
            self.on.secret_changed,
            self.on[RELATION].relation_joined,
            self.on[RELATION].relation_changed,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(self.on[RELATION].relation_created, self._on_relation_created)
        framework.observe(self.on[RELATION].relation_broken, self._on_relation_broken)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        framework.observe(self.on.start_process_action, self._on_start_process)
        framework.observe(self.on.stop_process_action, self._on_stop_process)
        framework.observe(self.on.get_report_action, self._on_get_report)

    # -- facts -------------------------------------------------------------

    def _load_config(self) -> CharmConfig | ConfigError:
        try:
            return parse_config(dict(self.config))
        except ConfigError as e:
            return e

    def _topic_request(self) -> kafka_client.TopicRequest | None:
        """Return what to ask Kafka for; None while the config is invalid."""
        if isinstance(self._config, ConfigError):
            return None
        return kafka_client.topic_request(self._config.topic_name, self._config.topic_prefix_grant)

    @property
    def _container(self) -> ops.Container:
        return self.unit.get_container(workload.CONTAINER)

    def _kafka_relation(self) -> ops.Relation | None:
        relation = self.model.get_relation(RELATION)
        if relation is None or relation.app is None or relation.id == self._broken_relation_id:
            return None
        return relation

    def _read_secret(self, uri: str) -> Mapping[str, str] | None:
        """Return a provider secret's latest content; None if it cannot be read (yet)."""
        try:
            return self.model.get_secret(id=uri).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError) as e:
            logger.warning("cannot read a %s secret yet: %s", RELATION, type(e).__name__)
            return None

    def _relation_view(self) -> workload.RelationView:
        relation = self._kafka_relation()
        request = self._topic_request()
        if relation is None or request is None:
            return workload.RelationView("absent")
        response = kafka_client.parse_response(relation.data[relation.app], self._read_secret)
        view = workload.connection_from_response(response, request)
        if view.state == "ready" and view.connection is not None:
            logger.debug(
                "Kafka (%s) granted %s", view.generation, view.connection.granted
            )  # no credential here
        return view

    def _manual_secret(self) -> ops.Secret | None:
        try:
            return self.model.get_secret(label=MANUAL_SECRET_LABEL)
        except ops.SecretNotFoundError:
            return None

    def _manual_connection(self) -> workload.Connection | None:
        secret = self._manual_secret()
        return workload.connection_from_secret(secret.peek_content()) if secret else None

    def _peer_data(self) -> ops.RelationDataContent | None:
        peer = self.model.get_relation(PEER)
        return peer.data[self.unit] if peer else None

    def _stopped(self) -> bool:
        data = self._peer_data()
        return bool(data and data.get("stopped") == "true")

    def _set_stopped(self, stopped: bool) -> bool:
        """Record the stop flag in the peer unit databag; False if there is no peer relation."""
        data = self._peer_data()
        if data is None:
            return False
        if stopped:
            data["stopped"] = "true"
        else:
            data.pop("stopped", None)
        return True

    def _run_record(self) -> workload.RunRecord | None:
        data = self._peer_data()
        return workload.RunRecord.from_json(data.get(RUN_KEY)) if data is not None else None

    def _set_run_record(self, record: workload.RunRecord | None) -> None:
        data = self._peer_data()
        if data is None:
            return
        if record is None:
            data.pop(RUN_KEY, None)
        else:
            data[RUN_KEY] = record.to_json()

    def _service_facts(self) -> tuple[workload.ServiceState, dict[str, Any] | None]:
        """Return the service's state and its definition in Pebble's plan."""
        container = self._container
        if not container.can_connect():
            return "absent", None
        service = container.get_plan().services.get(workload.SERVICE)
        if service is None:
            return "absent", None
        info = container.get_services(workload.SERVICE).get(workload.SERVICE)
        state = info.current.value if info else "inactive"
        return state, service.to_dict()  # type: ignore[return-value]

    def _plan(self) -> workload.Plan:
        container = self._container
        service, definition = self._service_facts()
        return workload.decide(
            self._config,
            can_connect=container.can_connect(),
            stopped=self._stopped(),
            manual=self._manual_connection(),
            relation=self._relation_view(),
            service=service,
            run=self._run_record(),
            current_layer=definition,
            can_persist=self._peer_data() is not None,
        )

    # -- effects -----------------------------------------------------------

    def _ensure_request(self) -> None:
        """Leader: write the topic request unless it is there (v0 providers act on it once)."""
        relation = self._kafka_relation()
        request = self._topic_request()
        if relation is None or request is None or not self.unit.is_leader():
            return
        if relation.data[self.app].get("topic"):
            return
        config = self._config
        assert isinstance(config, CharmConfig)  # noqa: S101 (request is None otherwise)
        relation.data[self.app].update(
            kafka_client.build_request(
                kafka_roles(config.role), request, config.consumer_group_prefix
            )
        )

    def _apply(self, plan: workload.Plan) -> None:
        container = self._container
        if plan.record is not None:
            self._set_run_record(plan.record)
        if plan.action == "keep" or not container.can_connect():
            return
        services = container.get_plan().services
        if plan.action == "stop":
            if workload.SERVICE in services:
                role = "consumer" if isinstance(self._config, ConfigError) else self._config.role
                parked = workload.stopped_layer(role)
                if services[workload.SERVICE].to_dict() != workload.service_definition(parked):
                    container.add_layer(workload.LAYER, parked, combine=True)
                if container.get_service(workload.SERVICE).is_running():
                    container.stop(workload.SERVICE)
            return
        if plan.layer is None:  # "run" and "plan" always carry a layer
            return
        if plan.action == "plan":
            container.add_layer(workload.LAYER, plan.layer, combine=True)  # no replan
            return
        ca_changed = plan.ca_cert is not None and self._push_ca(container, plan.ca_cert)
        current = services.get(workload.SERVICE)
        if current is None or current.to_dict() != workload.service_definition(plan.layer):
            container.add_layer(workload.LAYER, plan.layer, combine=True)
            container.replan()
        elif ca_changed or plan.restart:
            container.restart(workload.SERVICE)

    @staticmethod
    def _push_ca(container: ops.Container, ca: str) -> bool:
        """Write the CA into the workload container; True if it changed."""
        try:
            if container.pull(workload.CA_PATH).read() == ca:
                return False
        except ops.pebble.PathError:
            pass
        container.push(workload.CA_PATH, ca, make_dirs=True, permissions=0o644)
        return True

    def _reconcile(self, _: ops.EventBase | None = None) -> workload.Plan:
        self._ensure_request()
        plan = self._plan()
        self._apply(plan)
        return plan

    # -- handlers ----------------------------------------------------------

    def _on_relation_created(self, event: ops.RelationCreatedEvent) -> None:
        self._set_stopped(False)  # a new relation is an explicit request to run...
        self._set_run_record(None)  # ...and so to send num_messages again
        self._reconcile(event)

    def _on_relation_broken(self, event: ops.RelationBrokenEvent) -> None:
        self._broken_relation_id = event.relation.id
        self._reconcile(event)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(self._plan().status)

    def _on_start_process(self, event: ops.ActionEvent) -> None:
        if isinstance(self._config, ConfigError):
            event.fail(str(self._config))
            return
        try:
            conn = workload.connection_from_action(event.params)
        except ValueError as e:
            event.fail(str(e))
            return
        container = self._container
        if not container.can_connect():
            event.fail("The kafka-test-app container is not ready yet; try again shortly")
            return
        if workload.SERVICE in container.get_plan().services and (
            container.get_service(workload.SERVICE).is_running()
        ):
            event.fail("kafka-test-app is already running; run stop-process first")
            return
        content = workload.connection_to_secret(conn)
        if secret := self._manual_secret():
            secret.set_content(content)
        else:
            self.unit.add_secret(content, label=MANUAL_SECRET_LABEL)
        self._set_stopped(False)
        self._set_run_record(None)  # an explicit request to send again
        self._reconcile()
        event.set_results(
            {"service": workload.SERVICE, "role": self._config.role, "topic": conn.topic}
        )

    def _on_stop_process(self, event: ops.ActionEvent) -> None:
        container = self._container
        if not container.can_connect():
            event.fail("The kafka-test-app container is not ready yet; try again shortly")
            return
        if workload.SERVICE not in container.get_plan().services:
            event.fail("No process to stop!")
            return
        if not self._set_stopped(True):
            event.fail(f"The {PEER} peer relation is not ready yet; try again shortly")
            return
        if secret := self._manual_secret():
            secret.remove_all_revisions()
        self._apply(workload.Plan(ops.BlockedStatus(workload.STOPPED_MESSAGE), "stop"))
        event.set_results({"service": workload.SERVICE, "stopped": "true"})

    def _on_get_report(self, event: ops.ActionEvent) -> None:
        record = self._run_record()
        try:
            body = self.fetch_report(workload.REPORT_URL)
        except OSError as e:
            if record is not None and record.state == "finished":
                # The producer sent everything and exited: nothing serves /report.
                event.set_results(workload.finished_report(self._config, record))
                return
            event.fail(f"Could not fetch the report from {workload.REPORT_URL}: {e}")
            return
        try:
            results = flatten_report(body)
        except ReportError as e:
            event.fail(f"The workload returned an unusable report: {e}")
            return
        if record is not None:
            results.update({"run-state": record.state, "starts": str(record.starts)})
        event.set_results(results)


if __name__ == "__main__":  # pragma: nocover
    ops.main(KafkaTestAppCharm)
