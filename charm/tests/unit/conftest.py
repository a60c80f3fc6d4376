"""Shared fixtures: the Scenario context and small state builders.

The kafka-cluster relation fixtures per Charmed Kafka generation are in
``fixtures.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ops import pebble, testing

CHARM_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CHARM_ROOT / "src"))

from charm import KafkaTestAppCharm  # noqa: E402


@pytest.fixture
def ctx() -> testing.Context:
    return testing.Context(KafkaTestAppCharm)


def container(**kwargs) -> testing.Container:
    kwargs.setdefault("can_connect", True)
    return testing.Container("kafka-test-app", **kwargs)


def peer(stopped: bool = False, **data: str) -> testing.PeerRelation:
    unit = {"stopped": "true"} if stopped else {}
    return testing.PeerRelation("app-peers", local_unit_data=unit | data)


def service_env(state: testing.State) -> dict[str, str]:
    plan = state.get_container("kafka-test-app").plan
    return dict(plan.services["kafka-test-app"].environment)


def service_status(state: testing.State) -> pebble.ServiceStatus:
    return state.get_container("kafka-test-app").services["kafka-test-app"].current
