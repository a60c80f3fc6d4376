#!/usr/bin/env python3
"""Kubernetes sidecar charm running the Rust kafka-test-app as a Kafka producer or consumer.

The charm only gathers facts (config, the ``kafka-cluster`` relation via
dpcharmlibs-interfaces, the ``start-process`` secret, the stop flag) and
applies the ``Plan`` that the pure ``workload.decide`` returns.
"""

from __future__ import annotations

import json
import logging

import ops
from dpcharmlibs.interfaces import (
    KafkaRequestModel,
    KafkaResponseModel,
    RequirerDataContractV1,
    ResourceRequirerEventHandler,
    gen_hash,
)

import workload
from config import CharmConfig, ConfigError, kafka_roles, parse_config
from report import ReportError, flatten_report

logger = logging.getLogger(__name__)

RELATION = "kafka-cluster"
PEER = "app-peers"
MANUAL_SECRET_LABEL = "kafka-test-app-manual-connection"  # noqa: S105 (a label, not a secret)


class KafkaTestAppCharm(ops.CharmBase):
    """Charm the kafka-test-app workload."""

    # Replaceable in tests: GET the workload's /report and return the body.
    fetch_report = staticmethod(workload.fetch_report)

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._config = self._load_config()
        self.kafka = ResourceRequirerEventHandler(
            self, RELATION, requests=self._requests(), response_model=KafkaResponseModel
        )
        for event in (
            self.on.install,
            self.on.start,
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.update_status,
            self.on.leader_elected,
            self.on.kafka_test_app_pebble_ready,
            self.on.secret_changed,
            self.on[RELATION].relation_changed,
            self.on[RELATION].relation_broken,
            self.kafka.on.resource_created,
            self.kafka.on.endpoints_changed,
            self.kafka.on.authentication_updated,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(self.on[RELATION].relation_created, self._on_relation_created)
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

    def _requests(self) -> list[KafkaRequestModel]:
        """Return the topic request for Kafka; none while the config is invalid."""
        if isinstance(self._config, ConfigError):
            return []
        prefix = self._config.consumer_group_prefix if self._config.role == "consumer" else ""
        return [
            KafkaRequestModel(
                resource=self._config.topic_name,
                extra_user_roles=kafka_roles(self._config.role),
                consumer_group_prefix=prefix or None,
            )
        ]

    @property
    def _container(self) -> ops.Container:
        return self.unit.get_container(workload.CONTAINER)

    def _relation_view(self) -> workload.RelationView:
        relation = self.model.get_relation(RELATION)
        if relation is None or relation.app is None:
            return workload.RelationView("absent")
        topic = "" if isinstance(self._config, ConfigError) else self._config.topic_name
        try:
            data = self.kafka.interface.build_model(relation.id, component=relation.app)
        except (ValueError, ops.ModelError) as e:  # pydantic.ValidationError is a ValueError
            logger.warning("cannot read %s relation data yet: %s", RELATION, type(e).__name__)
            return workload.RelationView(
                "waiting", reason="Waiting for readable Kafka relation data"
            )
        response = next((r for r in data.requests if r.secret_user or r.username), None)
        return workload.connection_from_response(response, topic)

    def _manual_secret(self) -> ops.Secret | None:
        try:
            return self.model.get_secret(label=MANUAL_SECRET_LABEL)
        except ops.SecretNotFoundError:
            return None

    def _manual_connection(self) -> workload.Connection | None:
        secret = self._manual_secret()
        return workload.connection_from_secret(secret.peek_content()) if secret else None

    def _stopped(self) -> bool:
        peer = self.model.get_relation(PEER)
        return bool(peer and peer.data[self.unit].get("stopped") == "true")

    def _set_stopped(self, stopped: bool) -> bool:
        """Record the stop flag in the peer unit databag; False if there is no peer relation."""
        peer = self.model.get_relation(PEER)
        if peer is None:
            return False
        if stopped:
            peer.data[self.unit]["stopped"] = "true"
        else:
            peer.data[self.unit].pop("stopped", None)
        return True

    def _plan(self) -> workload.Plan:
        container = self._container
        return workload.decide(
            self._config,
            can_connect=container.can_connect(),
            stopped=self._stopped(),
            manual=self._manual_connection(),
            relation=self._relation_view(),
        )

    # -- effects -----------------------------------------------------------

    def _ensure_request(self) -> None:
        """Leader: send the topic request if relation-created could not (e.g. bad config then)."""
        relation = self.model.get_relation(RELATION)
        if not (relation and self.unit.is_leader()) or isinstance(self._config, ConfigError):
            return
        if json.loads(relation.data[self.app].get("requests") or "[]"):
            return
        requests = self._requests()
        for request in requests:
            request.request_id = gen_hash(request.resource, request.salt)
        contract = RequirerDataContractV1[KafkaRequestModel](version="v1", requests=requests)
        self.kafka.interface.write_model(relation.id, contract)

    def _apply(self, plan: workload.Plan) -> None:
        container = self._container
        if plan.action == "keep" or not container.can_connect():
            return
        services = container.get_plan().services
        if plan.action == "stop":
            if workload.SERVICE in services:
                role = "consumer" if isinstance(self._config, ConfigError) else self._config.role
                container.add_layer(workload.LAYER, workload.stopped_layer(role), combine=True)
                if container.get_service(workload.SERVICE).is_running():
                    container.stop(workload.SERVICE)
            return
        if plan.layer is None:  # a "run" plan always carries a layer
            return
        ca_changed = plan.ca_cert is not None and self._push_ca(container, plan.ca_cert)
        desired = ops.pebble.Layer(plan.layer).services[workload.SERVICE]
        current = services.get(workload.SERVICE)
        if current is None or current.to_dict() != desired.to_dict():
            container.add_layer(workload.LAYER, plan.layer, combine=True)
            container.replan()
        elif ca_changed:
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
        self._set_stopped(False)  # a new relation is an explicit request to run
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
        try:
            body = self.fetch_report(workload.REPORT_URL)
        except OSError as e:
            event.fail(f"Could not fetch the report from {workload.REPORT_URL}: {e}")
            return
        try:
            event.set_results(flatten_report(body))
        except ReportError as e:
            event.fail(f"The workload returned an unusable report: {e}")


if __name__ == "__main__":  # pragma: nocover
    ops.main(KafkaTestAppCharm)
