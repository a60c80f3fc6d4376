"""Checks for tests/docker/run-compose-test (run with the venv's python; needs prometheus-client, PyYAML).

Each subcommand prints what it found and exits 0 when the check holds, 1 when it does not:

  consumer-report REPORT_JSON EXPECTED_JSON   the consumer's report against {origin: count}
  metrics-consumer URL                        /metrics of a consumer against its /report (URL = http://127.0.0.1:PORT)
  metrics-producer URL                        /metrics of a running producer against its /report
  final-report LOG_FILE [EXPECT_SENT]         the last JSON object on a stopped container's stdout
  manifests DEPLOY_DIR                        deploy/compose.yaml and deploy/k8s/*.yaml parse and say what they must

Only ever fetches the URLs it is given (the test passes loopback addresses).
"""

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def fail(msg):
    print(f"  FAIL: {msg}")
    sys.exit(1)


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def samples(text):
    """{(sample name, frozenset(labels)): value} from the Prometheus text-format parser, after
    checking that the strict OpenMetrics parser (the format the endpoint announces) accepts it too."""
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as openmetrics_families,
    )
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    types = {f.name: f.type for f in openmetrics_families(text)}
    return out, types


def value(m, name, **labels):
    key = (name, frozenset(labels.items()))
    if key not in m:
        fail(f"metric {name}{labels or ''} is missing")
    return m[key]


def consumer_report(report_file, expected_file):
    report = json.loads(Path(report_file).read_text())
    expected = json.loads(Path(expected_file).read_text())
    origins = report.get("origins", {})
    print(f"  origins in the report: {sorted(origins)}")
    print(f"  origins expected (docker inspect): {sorted(expected)}")
    if len(origins) != 3:
        fail(f"expected exactly 3 origins, got {len(origins)}")
    if set(origins) != set(expected):
        fail("origins differ from '<container hostname> (<container IP>)' of the producers")
    for origin, count in expected.items():
        o = origins[origin]
        if (o["count"], o["duplicates"], o["lost"]) != (count, 0, 0):
            fail(f"{origin}: count {o['count']} (want {count}), duplicates {o['duplicates']}, lost {o['lost']}")
    if report.get("consumed") != sum(expected.values()):
        fail(f"consumed {report.get('consumed')}, want {sum(expected.values())}")
    if report.get("malformed") != 0:
        fail(f"malformed {report.get('malformed')}")
    if report.get("verdict") != "pass":
        fail(f"verdict {report.get('verdict')!r}")
    print(f"  {report['consumed']} events, {len(origins)} origins, exact counts, 0 lost, 0 duplicates, verdict pass")


def metrics_consumer(url):
    status, ctype, text = get(url + "/metrics")
    if status != 200:
        fail(f"/metrics answered {status}")
    m, types = samples(text)
    _, _, body = get(url + "/report")
    report = json.loads(body)
    for family, typ in [
        ("kta_events_consumed", "counter"),
        ("kta_events_duplicates", "gauge"),
        ("kta_events_lost", "gauge"),
        ("kta_records_malformed", "counter"),
        ("kta_end_to_end_latency_seconds", "histogram"),
    ]:
        if types.get(family) != typ:
            fail(f"{family} is {types.get(family)!r} in the OpenMetrics parse, want {typ}")
    for origin, o in report["origins"].items():
        got = (
            value(m, "kta_events_consumed_total", origin=origin),
            value(m, "kta_events_duplicates", origin=origin),
            value(m, "kta_events_lost", origin=origin),
        )
        if got != (o["count"], o["duplicates"], o["lost"]):
            fail(f"{origin}: metrics consumed/duplicates/lost {got} vs report {(o['count'], o['duplicates'], o['lost'])}")
    if value(m, "kta_records_malformed_total") != report["malformed"]:
        fail("kta_records_malformed_total differs from the report")
    if value(m, "kta_end_to_end_latency_seconds_count") != report["consumed"]:
        fail("kta_end_to_end_latency_seconds_count differs from the report's consumed")
    print(f"  {len(m)} samples ({ctype}); per-origin consumed/duplicates/lost, malformed and latency count match /report")


def metrics_producer(url):
    """The producer is running: take /report, /metrics, /report and compare when the two reports
    agree (nothing was sent in between); a few tries."""
    for attempt in range(20):
        _, _, r1 = get(url + "/report")
        status, ctype, text = get(url + "/metrics")
        _, _, r2 = get(url + "/report")
        a, b = json.loads(r1), json.loads(r2)
        keys = ("sent", "acked", "failed")
        if status != 200:
            fail(f"/metrics answered {status}")
        if [a[k] for k in keys] != [b[k] for k in keys]:
            time.sleep(0.05)
            continue
        m, types = samples(text)
        for family in ("kta_events_sent", "kta_events_acked", "kta_events_failed"):
            if types.get(family) != "counter":
                fail(f"{family} is {types.get(family)!r}, want counter")
        got = [value(m, f"kta_events_{k}_total") for k in keys]
        want = [a[k] for k in keys]
        if got != want:
            fail(f"metrics sent/acked/failed {got} vs report {want}")
        if a["sent"] <= 0:
            fail("the producer has sent nothing yet")
        target = value(m, "kta_rate_target_events_per_second")
        if target != a["target_rate"]:
            fail(f"kta_rate_target_events_per_second {target} vs report target_rate {a['target_rate']}")
        value(m, "kta_rate_achieved_events_per_second")
        print(f"  sent/acked/failed {got} match /report (try {attempt + 1}), target rate {target}/s")
        return
    fail("the producer's /report changed under every one of 20 tries")


def final_report(log_file, expect_sent=None):
    lines = [l for l in Path(log_file).read_text().splitlines() if l.strip().startswith("{")]
    reports = []
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if "sent" in obj or "consumed" in obj:
            reports.append(obj)
    if not reports:
        fail("no final JSON report on the container's stdout")
    r = reports[-1]
    print(f"  final report: {json.dumps({k: r[k] for k in r if k in ('sent', 'acked', 'failed', 'consumed', 'verdict')})}")
    if r.get("verdict") != "pass":
        fail(f"verdict {r.get('verdict')!r}")
    if "sent" in r:
        if r["sent"] <= 0 or r["acked"] != r["sent"] or r["failed"] != 0:
            fail("a producer stopped by SIGTERM must have acked all it sent")
        if expect_sent is not None and r["sent"] != int(expect_sent):
            fail(f"sent {r['sent']}, want {expect_sent}")


def manifests(deploy_dir):
    import yaml

    deploy = Path(deploy_dir)
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    services = compose["services"]
    if str(compose.get("version", "")).split(".")[0] not in ("2", "3"):
        fail("compose file format must be 2.x or 3.x for docker-compose 1.29")
    hostnames = [services[f"producer-{i}"]["hostname"] for i in range(3)]
    if len(set(hostnames)) != 3:
        fail(f"producer hostnames not distinct: {hostnames}")
    for name in ("kafka-0", "kafka-1", "kafka-2", "consumer"):
        if name not in services:
            fail(f"compose has no {name} service")
    # Three KRaft nodes, ids 1..3, one static quorum naming all three, each with a health check
    # that the apps wait for.
    voters = {services[f"kafka-{i}"]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for i in range(3)}
    if voters != {"1@kafka-0:9093,2@kafka-1:9093,3@kafka-2:9093"}:
        fail(f"the brokers' quorum voters differ or are not the three nodes: {voters}")
    ids = [str(services[f"kafka-{i}"]["environment"]["KAFKA_NODE_ID"]) for i in range(3)]
    if ids != ["1", "2", "3"]:
        fail(f"broker node ids {ids}, want 1, 2, 3")
    for i in range(3):
        k = services[f"kafka-{i}"]
        if k.get("hostname") != f"kafka-{i}" or "healthcheck" not in k:
            fail(f"kafka-{i} needs hostname kafka-{i} (its advertised name) and a healthcheck")
    bootstrap = "kafka-0:9092,kafka-1:9092,kafka-2:9092"
    for name in [f"producer-{i}" for i in range(3)] + ["consumer"]:
        svc = services[name]
        if svc["environment"].get("KTA_BOOTSTRAP_SERVERS") != bootstrap:
            fail(f"{name}: KTA_BOOTSTRAP_SERVERS must be {bootstrap}")
        deps = svc.get("depends_on", {})
        if any(deps.get(f"kafka-{i}", {}).get("condition") != "service_healthy" for i in range(3)):
            fail(f"{name} must wait for kafka-0..2 to be healthy")
        if name != "consumer":
            env = svc["environment"]
            rf = (env.get("KTA_PARTITIONS"), env.get("KTA_REPLICATION_FACTOR"))
            if rf != ("${KTA_PARTITIONS:-3}", "${KTA_REPLICATION_FACTOR:-3}"):
                fail(f"{name}: the topic must default to 3 partitions, replication factor 3 (got {rf})")
    docs = []
    for f in sorted((deploy / "k8s").glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            if d:
                docs.append((f.name, d))
    by_kind = {}
    for fname, d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    sts = [d for d in by_kind.get("StatefulSet", []) if d["metadata"]["name"] == "kafka-test-app"]
    if not sts:
        fail("no StatefulSet named kafka-test-app (pods kafka-test-app-0..2)")
    sts = sts[0]
    if sts["spec"]["replicas"] != 3:
        fail("the producer StatefulSet must have 3 replicas")
    services_k8s = {d["metadata"]["name"] for d in by_kind.get("Service", [])}
    if sts["spec"]["serviceName"] not in services_k8s:
        fail("the StatefulSet's serviceName has no Service")
    consumers = by_kind.get("Deployment", []) + by_kind.get("Job", [])
    if not consumers:
        fail("no Deployment or Job for the consumer")
    secrets = {d["metadata"]["name"]: d for d in by_kind.get("Secret", [])}
    for workload in [sts] + consumers:
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        grace = pod.get("terminationGracePeriodSeconds", 30)
        for c in pod["containers"]:
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            env = {e["name"]: e for e in c.get("env", [])}
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                h = c.get(probe, {}).get("httpGet")
                if not h or h["path"] != path or ports.get(h["port"], h["port"]) != 8080:
                    fail(f"{name}: {probe} must GET {path} on port 8080")
            for var, key in (("KTA_USERNAME", "username"), ("KTA_PASSWORD", "password")):
                ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef")
                if not ref:
                    fail(f"{name}: {var} must come from a secretKeyRef")
                if ref["name"] not in secrets or ref["key"] not in secrets[ref["name"]].get("stringData", {}):
                    fail(f"{name}: {var} refers to {ref['name']}/{ref['key']}, not in the example Secret")
            flush = env.get("KTA_FLUSH_TIMEOUT", {}).get("value", "10s")
            if not flush.endswith("s") or grace <= int(flush[:-1]):
                fail(f"{name}: terminationGracePeriodSeconds {grace} must exceed the flush timeout {flush}")
            sc = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
            if not sc.get("runAsNonRoot"):
                fail(f"{name}: must run as non-root")
    print(f"  compose: {len(services)} services, brokers kafka-0..2 (nodes 1-3, one quorum), producer hostnames {hostnames}; k8s: "
          + ", ".join(f"{k} x{len(v)}" for k, v in sorted(by_kind.items())))


if __name__ == "__main__":
    commands = {
        "consumer-report": consumer_report,
        "metrics-consumer": metrics_consumer,
        "metrics-producer": metrics_producer,
        "final-report": final_report,
        "manifests": manifests,
    }
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        sys.exit(2)
    try:
        commands[sys.argv[1]](*sys.argv[2:])
    except SystemExit:
        raise
    except Exception as e:  # a parse error or a missing field is a failed check, said plainly
        fail(f"{type(e).__name__}: {e}")
