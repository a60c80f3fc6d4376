"""Turn the workload's ``/report`` JSON into Juju action results.

Juju action result keys must be lowercase letters, digits and hyphens
(starting and ending with a letter or digit); values may be nested dicts.
``flatten_report`` maps the consumer and producer report shapes onto such
keys and always adds the raw JSON under ``report``.
"""

from __future__ import annotations

import json
import re
from typing import Any

_NON_KEY = re.compile(r"[^a-z0-9]+")
# Keys ops/Juju reserve for themselves in action results.
_RESERVED = {"stdout", "stderr", "stdout-encoding", "stderr-encoding"}


class ReportError(ValueError):
    """The report body is not the JSON object the contract describes."""


def result_key(name: str, fallback: str = "origin") -> str:
    """Return ``name`` as a valid action result key.

    Lowercases it and replaces every run of other characters with one
    hyphen, e.g. ``kafka-test-app/0`` -> ``kafka-test-app-0``.
    """
    key = _NON_KEY.sub("-", str(name).lower()).strip("-")
    if not key or key in _RESERVED:
        key = f"{fallback}-{key}" if key else fallback
    return key


def _value(value: Any) -> str:
    """Render a scalar the way it should read in ``juju run`` output."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _scalars(data: dict[str, Any]) -> dict[str, str]:
    """Every number, string and boolean of ``data``, under valid result keys."""
    return {
        result_key(k, fallback="field"): _value(v)
        for k, v in data.items()
        if isinstance(v, (int, float, str, bool)) and v is not None
    }


def _origin_results(origins: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in sorted(origins):
        stats = origins[name]
        if not isinstance(stats, dict):
            raise ReportError(f"origin {name!r} is not an object")
        key = result_key(name)
        suffix = 2
        base = key
        while key in results:  # two origins that differ only in punctuation/case
            key = f"{base}-{suffix}"
            suffix += 1
        entry = {"name": str(name)}
        # Every scalar the report has (count and every anomaly class), so a class added to
        # the tool shows here without a list to keep.
        entry.update(_scalars(stats))
        latency = stats.get("latency_ms")
        if isinstance(latency, dict):
            entry["latency-ms"] = {result_key(k): _value(v) for k, v in latency.items()}
        runs = stats.get("runs")
        if isinstance(runs, dict):
            entry["runs"] = str(len(runs))
        results[key] = entry
    return results


def flatten_report(body: str) -> dict[str, Any]:
    """Return action results for a consumer or producer report JSON ``body``.

    Consumer reports give ``role=consumer``, ``verdict``, ``consumed``,
    ``malformed``, ``origin-count`` and ``origins.<origin>.{count,...}``;
    producer reports give ``role=producer``, ``sent``, ``acked``,
    ``failed``, ``elapsed-s`` and ``rate``. Raises ``ReportError`` if the body
    is not a JSON object.
    """
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        raise ReportError(f"report is not valid JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise ReportError("report is not a JSON object")

    results: dict[str, Any] = {}
    if "consumed" in data or "origins" in data or "verdict" in data:
        results["role"] = "consumer"
        # verdict, consumed, malformed and the total of every anomaly class.
        results.update(_scalars(data))
        for name in ("reasons", "incomplete", "notes"):
            if isinstance(data.get(name), list) and data[name]:
                results[name] = "; ".join(str(r) for r in data[name])
        origins = data.get("origins") or {}
        if not isinstance(origins, dict):
            raise ReportError("'origins' is not an object")
        results["origin-count"] = str(len(origins))
        if origins:
            results["origins"] = _origin_results(origins)
    elif "sent" in data:
        results["role"] = "producer"
        results.update(_scalars(data))
    else:
        results["role"] = "unknown"
    results["report"] = json.dumps(data, sort_keys=True)
    return results
