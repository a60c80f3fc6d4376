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

/// Kills `child` if it still runs after `after`: a hung child fails the test instead of hanging it.
fn watchdog(child: &std::process::Child, after: Duration) {
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        std::thread::sleep(after);
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
}

/// A broker frozen (SIGSTOP) under a running producer: after 5 s without an acknowledgement the
/// producer warns and its /readyz turns 503 (/healthz stays 200); on SIGTERM the producer stops
/// within --flush-timeout in all, final report included, and the consumer within its 10 s.
#[test]
fn a_frozen_broker_stalls_the_producer_and_both_stop_within_their_bounds() {
    let broker = Broker::own("frozen", &[]);
    let topic = "frozen";
    crate::fleet::produce(&broker, topic, "warm-up (10.0.0.60)", 100);

    let consumer_addr = free_addr();
    let (consumer, mut consumer_err) = spawn(
        app()
            .args(["consume", "--topic", topic, "--output", "json"])
            .envs(broker.env())
            .env("KTA_HTTP_ADDR", &consumer_addr),
    );
    watchdog(&consumer, Duration::from_secs(120));
    wait_for_line(&mut consumer_err, "caught up");
    let consumer_err = crate::common::drain(consumer_err);

    let producer_addr = free_addr();
    let (producer, mut producer_err) = spawn(
        app()
            .args([
                "produce", "--topic", topic, "--output", "json", "--rate", "100",
            ])
            .args(["--num-messages", "0", "--flush-timeout", "6s"])
            .args(["--origin", "frozen (10.0.0.61)"])
            .envs(broker.env())
            .env("KTA_HTTP_ADDR", &producer_addr),
    );
    watchdog(&producer, Duration::from_secs(120));
    wait_for_code(&producer_addr, "/readyz", 200, Duration::from_secs(20));

    broker.kafka(&["stop", "1"]);
    let lines = wait_for_line(&mut producer_err, "no acknowledgement for 5s while");
    let warning = lines.last().unwrap();
    assert!(
        warning.contains("events are pending: the cluster is not taking writes"),
        "{warning}"
    );
    assert_eq!(get(&producer_addr, "/readyz").0, 503);
    assert_eq!(get(&producer_addr, "/healthz").0, 200);
    let producer_err = crate::common::drain(producer_err);

    let stopped = Instant::now();
    crate::common::signal(&producer, libc::SIGTERM);
    crate::common::signal(&consumer, libc::SIGTERM);
    let (producer_code, producer_out) = crate::common::finish(producer);
    let producer_took = stopped.elapsed();
    let (consumer_code, consumer_out) = crate::common::finish(consumer);
    let consumer_took = stopped.elapsed();
    let producer_err = producer_err.join().unwrap();
    let consumer_err = consumer_err.join().unwrap();
    broker.kafka(&["cont", "1"]);

    // Bounds as documented, with a margin for process exit on a loaded machine.
    let margin = Duration::from_millis(1500);
    assert!(
        producer_took <= Duration::from_secs(6) + margin,
        "producer took {producer_took:?}\n{producer_err}"
    );
    assert!(
        consumer_took <= Duration::from_secs(10) + margin,
        "consumer took {consumer_took:?}\n{consumer_err}"
    );
    let report: serde_json::Value = serde_json::from_str(&producer_out).unwrap();
    assert_eq!(producer_code, Some(1), "{report}");
    let (sent, acked, failed) = (
        report["sent"].as_u64().unwrap(),
        report["acked"].as_u64().unwrap(),
        report["failed"].as_u64().unwrap(),
    );
    assert_eq!(sent, acked + failed, "{report}");
    assert!(failed > 0, "{report}");
    assert_eq!(report["final_run_report"], "not_delivered", "{report}");
    assert!(
        report["longest_ack_gap_s"].as_f64().unwrap() >= 5.0,
        "{report}"
    );
    let consumed: serde_json::Value = serde_json::from_str(&consumer_out).unwrap();
    assert_eq!(consumer_code, Some(3), "{consumed}\n{consumer_err}");
    assert_eq!(consumed["lost"], 0, "{consumed}");
}
