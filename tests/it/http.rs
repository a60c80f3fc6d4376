//! The HTTP endpoint of a real consumer and producer against a real broker: Prometheus text that a
//! parser accepts, counters that match the report, and readiness that follows the broker.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{app, json, run, spawn, wait_for_line, Broker};

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// GET `path` from `addr`; returns the status code and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

/// Polls `path` until it answers `code` (the endpoint reflects state that changes asynchronously).
fn wait_for_code(addr: &str, path: &str, code: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect(addr).is_ok() && get(addr, path).0 == code {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not answer {code} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sample(metrics: &prometheus_parse::Scrape, name: &str, origin: Option<&str>) -> f64 {
    let found = metrics
        .samples
        .iter()
        .find(|s| s.metric == name && origin.is_none_or(|o| s.labels.get("origin") == Some(o)))
        .unwrap_or_else(|| panic!("no sample {name} {origin:?}"));
    match found.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{name}: unexpected {other:?}"),
    }
}

#[test]
fn metrics_parse_and_match_the_report_and_readiness_follows_the_broker() {
    // A cluster of its own: the test kills it.
    let broker = Broker::own("http", &[]);
    let origin = "metrics-producer (10.0.0.9)";
    let produced = json(&run(
        app()
            .args([
                "produce",
                "--topic",
                "observed",
                "--rate",
                "0",
                "--num-messages",
                "3000",
            ])
            .args(["--origin", origin, "--output", "json"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(produced["acked"], 3000);

    let addr = free_addr();
    let (consumer, mut stderr) = spawn(
        app()
            .args(["consume", "--topic", "observed", "--output", "json"])
            .envs(broker.env())
            .env("KTA_HTTP_ADDR", &addr),
    );
    wait_for_line(&mut stderr, "caught up");
    let _stderr = crate::common::drain(stderr);
    wait_for_code(&addr, "/readyz", 200, Duration::from_secs(10));
    assert_eq!(get(&addr, "/healthz").0, 200);

    // The published report catches up within a second of the consumer.
    let deadline = Instant::now() + Duration::from_secs(10);
    let report: serde_json::Value = loop {
        let (code, body) = get(&addr, "/report");
        if code == 200 {
            let report: serde_json::Value = serde_json::from_str(&body).unwrap();
            if report["consumed"] == 3000 {
                break report;
            }
        }
        assert!(
            Instant::now() < deadline,
            "/report never showed 3000 events"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (code, text) = get(&addr, "/metrics");
    assert_eq!(code, 200);
    let metrics = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert_eq!(
        sample(&metrics, "kta_events_consumed_total", Some(origin)),
        3000.0
    );
    assert_eq!(report["origins"][origin]["count"], 3000);
    assert_eq!(sample(&metrics, "kta_events_lost", Some(origin)), 0.0);
    assert_eq!(sample(&metrics, "kta_events_duplicates", Some(origin)), 0.0);
    assert_eq!(sample(&metrics, "kta_records_malformed_total", None), 0.0);
    assert_eq!(sample(&metrics, "kta_ready", None), 1.0);
    let latency_count = metrics
        .samples
        .iter()
        .find(|s| s.metric == "kta_end_to_end_latency_seconds")
        .expect("latency histogram");
    match &latency_count.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let inf = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
            assert_eq!(inf.count, 3000.0);
        }
        other => panic!("latency is not a histogram: {other:?}"),
    }

    // Kill the broker: the consumer is no longer ready, but still alive.
    broker.kafka(&["kill", "1"]);
    wait_for_code(&addr, "/readyz", 503, Duration::from_secs(15));
    assert_eq!(get(&addr, "/healthz").0, 200);

    crate::common::signal(&consumer, libc::SIGTERM);
    let (code, stdout) = crate::common::finish(consumer);
    // With the broker gone the consumer cannot learn where the partitions end: it says so
    // (exit 3) rather than judging loss.
    assert_eq!(code, Some(3), "{stdout}");
    let final_report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(final_report["consumed"], 3000);
    assert_eq!(final_report["lost"], 0);
    assert_eq!(
        final_report["incomplete"],
        serde_json::json!([
            "the cluster did not say where its partitions end, so loss was not judged"
        ])
    );
}

#[test]
fn a_busy_http_address_is_a_usage_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(
        app()
            .args(["produce", "--topic", "t", "--http-addr", &addr])
            .args(["--bootstrap-servers", "127.0.0.1:1"]),
        2,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("error: cannot listen on {addr} (--http-addr)")),
        "{stderr}"
    );
}
