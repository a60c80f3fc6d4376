"""Unit tests of the report flattening in src/report.py."""

import json
import re

import pytest

from report import ReportError, flatten_report, result_key

KEY = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")

CONSUMER_REPORT = {
    "consumed": 200,
    "malformed": 1,
    "verdict": "fail",
    "origins": {
        "kafka-test-app/0": {
            "count": 120,
            "duplicates": 0,
            "lost": 2,
            "out_of_order": 1,
            "foreign": 0,
            "runs": {"r1": {"state": "finished"}},
            "latency_ms": {"p50": 3.5, "p99": 12.0, "p999": 20.25, "max": 31.0},
        },
        "Kafka_Test_App.0": {"count": 80, "duplicates": 3, "lost": 0, "out_of_order": 0},
    },
    "lost": 2,
    "duplicates": 3,
    "reasons": ["kafka-test-app/0: 2 lost (acknowledged, never seen)"],
    "incomplete": [],
}
PRODUCER_REPORT = {"sent": 1000, "acked": 998, "failed": 2, "elapsed_s": 500.5, "rate": 2.0}


def all_keys(results, prefix=""):
    for k, v in results.items():
        yield k
        if isinstance(v, dict):
            yield from all_keys(v)


def test_result_key():
    assert result_key("kafka-test-app/0") == "kafka-test-app-0"
    assert result_key("Out_Of_Order") == "out-of-order"
    assert result_key("///") == "origin"
    assert result_key("stdout") == "origin-stdout"


def test_consumer_report_flattened():
    results = flatten_report(json.dumps(CONSUMER_REPORT))
    assert results["role"] == "consumer"
    assert results["verdict"] == "fail"
    assert results["consumed"] == "200"
    assert results["malformed"] == "1"
    assert results["origin-count"] == "2"
    # Both origins sanitise to "kafka-test-app-0"; keys are given in sorted
    # order of the origin names, so the second one gets a "-2" suffix.
    assert set(results["origins"]) == {"kafka-test-app-0", "kafka-test-app-0-2"}
    by_name = {v["name"]: v for v in results["origins"].values()}
    first = by_name["kafka-test-app/0"]
    assert results["origins"]["kafka-test-app-0-2"] is first
    assert first["count"] == "120"
    assert first["lost"] == "2"
    assert first["out-of-order"] == "1"
    assert first["foreign"] == "0"
    assert first["runs"] == "1"
    assert results["lost"] == "2" and results["duplicates"] == "3"
    assert results["reasons"] == "kafka-test-app/0: 2 lost (acknowledged, never seen)"
    assert "incomplete" not in results
    assert first["latency-ms"] == {"p50": "3.5", "p99": "12", "p999": "20.25", "max": "31"}
    second = by_name["Kafka_Test_App.0"]
    assert second["count"] == "80" and second["duplicates"] == "3"
    assert json.loads(results["report"]) == CONSUMER_REPORT


def test_all_result_keys_are_valid_juju_keys():
    for report in (CONSUMER_REPORT, PRODUCER_REPORT):
        for key in all_keys(flatten_report(json.dumps(report))):
            assert KEY.match(key), key


def test_all_result_values_are_strings_or_dicts():
    def check(d):
        for v in d.values():
            assert isinstance(v, (str, dict))
            if isinstance(v, dict):
                check(v)

    check(flatten_report(json.dumps(CONSUMER_REPORT)))


def test_producer_report_flattened():
    results = flatten_report(json.dumps(PRODUCER_REPORT))
    assert results == {
        "role": "producer",
        "sent": "1000",
        "acked": "998",
        "failed": "2",
        "elapsed-s": "500.5",
        "rate": "2",
        "report": json.dumps(PRODUCER_REPORT, sort_keys=True),
    }


def test_empty_consumer_report_has_no_origins_key():
    results = flatten_report('{"consumed": 0, "malformed": 0, "verdict": "pass", "origins": {}}')
    assert results["origin-count"] == "0"
    assert "origins" not in results


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"origins": [1]}'])
def test_bad_reports_raise(body):
    with pytest.raises(ReportError):
        flatten_report(body)


def test_unknown_shape_still_returns_raw():
    results = flatten_report('{"hello": 1}')
    assert results["role"] == "unknown"
    assert json.loads(results["report"]) == {"hello": 1}
