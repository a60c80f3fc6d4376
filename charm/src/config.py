"""Charm configuration: parsing and validation of the Juju config options.

Everything here is pure: it takes the raw option mapping Juju gives the charm
and returns a typed ``CharmConfig`` or raises ``ConfigError`` naming the
offending option and the reason, so the charm can turn it into a
BlockedStatus instead of crashing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ROLES = ("producer", "consumer")

# Kafka's own rule for topic names (and what Charmed Kafka accepts): ASCII
# letters, digits, '.', '_' and '-', at most 249 characters, not '.' or '..'.
_KAFKA_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
MAX_TOPIC_LENGTH = 249


class ConfigError(ValueError):
    """An invalid config option; ``str()`` is a status-ready message."""

    def __init__(self, option: str, reason: str):
        self.option = option
        self.reason = reason
        super().__init__(f"invalid config option '{option}': {reason}")


@dataclass(frozen=True)
class CharmConfig:
    """The validated charm configuration."""

    role: str
    topic_name: str
    partitions: int
    replication_factor: int
    num_messages: int
    consumer_group_prefix: str
    rate: float
    topic_prefix_grant: bool = True


def kafka_roles(role: str) -> str:
    """Return the ``extra-user-roles`` value to request from Kafka for ``role``.

    Only the app's own role, never ``admin``: Charmed Kafka grants a producer
    CREATE, WRITE and DESCRIBE on the requested topic (so it may create it),
    a consumer READ and DESCRIBE plus its consumer group prefix.
    """
    if role in ROLES:
        return role
    raise ValueError(f"unknown role {role!r}")


def topic_name_problem(name: str) -> str | None:
    """Return why ``name`` is not a valid Kafka topic name, or None if it is."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_TOPIC_LENGTH:
        return f"must be at most {MAX_TOPIC_LENGTH} characters (got {len(name)})"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if not _KAFKA_NAME.match(name):
        return "may only contain ASCII letters, digits, '.', '_' and '-'"
    return None


def consumer_group_prefix_problem(prefix: str) -> str | None:
    """Return why ``prefix`` is not a usable consumer group prefix, or None.

    An empty prefix is valid: it means "use the one the relation provides".
    """
    if not prefix:
        return None
    if not _KAFKA_NAME.match(prefix):
        return "may only contain ASCII letters, digits, '.', '_' and '-'"
    return None


def _integer(raw: Mapping[str, Any], option: str, default: int, minimum: int) -> int:
    value = raw.get(option, default)
    # bool is an int subclass; a boolean here is a type mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(option, f"must be an integer (got {value!r})")
    if value < minimum:
        raise ConfigError(option, f"must be at least {minimum} (got {value})")
    return value


def _rate(raw: Mapping[str, Any]) -> float:
    value = raw.get("rate", 2)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError("rate", f"must be a number (got {value!r})")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError("rate", f"must be a positive number of events per second (got {value})")
    return float(value)


def _boolean(raw: Mapping[str, Any], option: str, default: bool) -> bool:
    value = raw.get(option, default)
    if not isinstance(value, bool):
        raise ConfigError(option, f"must be true or false (got {value!r})")
    return value


def _string(raw: Mapping[str, Any], option: str, default: str) -> str:
    value = raw.get(option, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ConfigError(option, f"must be a string (got {value!r})")
    return value.strip()


def parse_config(raw: Mapping[str, Any]) -> CharmConfig:
    """Validate the raw Juju config mapping and return a ``CharmConfig``.

    Raises ``ConfigError`` for the first invalid option, checked in a fixed
    order (role, topic_name, partitions, replication_factor, num_messages,
    consumer_group_prefix, rate, topic_prefix_grant).
    """
    role = _string(raw, "role", "consumer")
    if role not in ROLES:
        raise ConfigError("role", f"must be one of {', '.join(ROLES)} (got {role!r})")

    topic = _string(raw, "topic_name", "test-topic")
    if problem := topic_name_problem(topic):
        raise ConfigError("topic_name", problem)

    partitions = _integer(raw, "partitions", 5, minimum=1)
    replication_factor = _integer(raw, "replication_factor", 1, minimum=1)
    num_messages = _integer(raw, "num_messages", 1000, minimum=0)

    prefix = _string(raw, "consumer_group_prefix", "")
    if problem := consumer_group_prefix_problem(prefix):
        raise ConfigError("consumer_group_prefix", problem)

    return CharmConfig(
        role=role,
        topic_name=topic,
        partitions=partitions,
        replication_factor=replication_factor,
        num_messages=num_messages,
        consumer_group_prefix=prefix,
        rate=_rate(raw),
        topic_prefix_grant=_boolean(raw, "topic_prefix_grant", True),
    )
