//! End-to-end tests: the real binary, as separate processes, against real Apache Kafka.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::{app, check, json, read_topic, run, spawn, wait_for_line, Broker};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

fn produce(broker: &Broker, topic: &str, origin: &str, count: u64) -> serde_json::Value {
    let output = run(
        app()
            .args([
                "produce", "--topic", topic, "--rate", "0", "--output", "json",
            ])
            .args(["--num-messages", &count.to_string(), "--origin", origin])
            .envs(broker.env()),
        0,
    );
    json(&output)
}

fn consume_expect(
    broker: &Broker,
    topic: &str,
    group: &str,
    expect: u64,
) -> (serde_json::Value, i32) {
    let output = app()
        .args([
            "consume",
            "--topic",
            topic,
            "--output",
            "json",
            "--idle-timeout",
            "60s",
        ])
        .args([
            "--expect",
            &expect.to_string(),
            "--consumer-group-prefix",
            group,
        ])
        .envs(broker.env())
        .output()
        .unwrap();
    // A run that went normally logs no error (not even from a library tearing the consumer down),
    // and its log to a pipe is plain text, without terminal colour codes.
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("consumer stderr:\n{stderr}");
    assert!(
        !stderr.contains("ERROR") && !stderr.contains('\x1b'),
        "the consumer's log has an error or colour codes:\n{stderr}"
    );
    (json(&output), output.status.code().unwrap())
}

#[test]
fn produce_then_consume_twenty_thousand_exactly() {
    let broker = Broker::start();
    let report = produce(broker, "round-trip", "producer-a (10.0.0.1)", 20_000);
    assert_eq!(report["sent"], 20_000);
    assert_eq!(report["acked"], 20_000);
    assert_eq!(report["failed"], 0);
    assert!(report["elapsed_s"].as_f64().unwrap() > 0.0);
    assert!(report["rate"].as_f64().unwrap() > 0.0);

    let (report, code) = consume_expect(broker, "round-trip", "rt-", 20_000);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["consumed"], 20_000);
    assert_eq!(report["malformed"], 0);
    assert_eq!(report["verdict"], "pass");
    let origins = report["origins"].as_object().unwrap();
    assert_eq!(origins.len(), 1);
    let origin = &origins["producer-a (10.0.0.1)"];
    assert_eq!(origin["count"], 20_000);
    assert_eq!(origin["duplicates"], 0);
    assert_eq!(origin["lost"], 0);
    assert_eq!(origin["out_of_order"], 0);
    for key in ["p50", "p99", "p999", "max"] {
        assert!(origin["latency_ms"][key].as_f64().unwrap() >= 0.0);
    }
}

#[test]
fn three_producers_give_three_rows_with_exact_counts() {
    let broker = Broker::start();
    // Create the topic first so the three producers do not race to create it.
    produce(broker, "three-rows", "kafka-test-app-0 (10.1.29.185)", 300);
    let children: Vec<_> = [
        ("kafka-test-app-1 (10.1.29.186)", 500),
        ("kafka-test-app-2 (10.1.29.187)", 700),
    ]
    .into_iter()
    .map(|(origin, count)| {
        app()
            .args([
                "produce",
                "--topic",
                "three-rows",
                "--rate",
                "0",
                "--output",
                "json",
            ])
            .args(["--num-messages", &count.to_string(), "--origin", origin])
            .envs(broker.env())
            .output()
    })
    .collect();
    for child in children {
        check(&child.unwrap(), 0);
    }
    let (report, code) = consume_expect(broker, "three-rows", "three-rows-", 1500);
    assert_eq!(code, 0, "{report}");
    let counts: BTreeMap<String, u64> = report["origins"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(origin, r)| (origin.clone(), r["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("kafka-test-app-0 (10.1.29.185)".to_owned(), 300),
            ("kafka-test-app-1 (10.1.29.186)".to_owned(), 500),
            ("kafka-test-app-2 (10.1.29.187)".to_owned(), 700),
        ])
    );
}

#[test]
fn scram_sha_512_round_trip_and_wrong_password() {
    let broker = Broker::scram();
    let (user, password) = broker.admin();
    let password = password.as_str();
    let with_credentials = |secret: &str| {
        let mut command = app();
        command.envs(broker.env()).env("KTA_PASSWORD", secret);
        command
    };

    let produced = json(&run(
        with_credentials(password)
            .args([
                "produce",
                "--topic",
                "secure",
                "--rate",
                "0",
                "--num-messages",
                "2000",
            ])
            .args(["--origin", "scram (10.0.0.2)", "--output", "json"]),
        0,
    ));
    assert_eq!(produced["acked"], 2000);
    let consumed = json(&run(
        with_credentials(password)
            .args([
                "consume", "--topic", "secure", "--expect", "2000", "--output", "json",
            ])
            .args(["--idle-timeout", "60s"]),
        0,
    ));
    assert_eq!(consumed["origins"]["scram (10.0.0.2)"]["count"], 2000);
    assert_eq!(consumed["verdict"], "pass");

    let wrong = "not-the-password-Zq7";
    for subcommand in [
        &["produce", "--topic", "secure"][..],
        &["consume", "--topic", "secure"],
    ] {
        let started = Instant::now();
        let output = run(with_credentials(wrong).args(subcommand), 2);
        assert!(started.elapsed() < Duration::from_secs(30));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let error_lines: Vec<_> = stderr.lines().filter(|l| l.contains("error:")).collect();
        assert_eq!(error_lines.len(), 1, "{stderr}");
        assert!(
            error_lines[0].contains(&format!("authentication failed for user '{user}'")),
            "{stderr}"
        );
        for text in [&stdout, &stderr] {
            assert!(!text.contains(wrong) && !text.contains(password), "{text}");
        }
    }
}

#[test]
fn rate_1000_for_10_seconds_measured_from_event_timestamps() {
    let broker = Broker::start();
    let report = json(&run(
        app()
            .args([
                "produce",
                "--topic",
                "paced",
                "--rate",
                "1000",
                "--duration",
                "10s",
            ])
            .args(["--output", "json"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(report["acked"], 10_000);
    let reported = report["rate"].as_f64().unwrap();
    assert!(
        (990.0..=1010.0).contains(&reported),
        "reported rate {reported}"
    );

    let values = read_topic(&broker.bootstrap(), "paced");
    assert!(
        (9_900..=10_100).contains(&values.len()),
        "{} events",
        values.len()
    );
    let mut timestamps: Vec<f64> = values
        .iter()
        .map(|v| {
            let event: serde_json::Value = serde_json::from_slice(v.as_deref().unwrap()).unwrap();
            event["timestamp"].as_f64().unwrap()
        })
        .collect();
    timestamps.sort_by(f64::total_cmp);
    let span = timestamps.last().unwrap() - timestamps.first().unwrap();
    let rate = (timestamps.len() - 1) as f64 / span;
    assert!(
        (990.0..=1010.0).contains(&rate),
        "achieved {rate:.1} events/s over {span:.3} s"
    );
}

#[test]
fn garbage_records_are_malformed_and_do_not_change_the_verdict() {
    let broker = Broker::start();
    // One partition, so the order is: 50 events of A, the garbage, 50 events of B.
    run(
        app()
            .args([
                "produce",
                "--topic",
                "mixed",
                "--partitions",
                "1",
                "--rate",
                "0",
            ])
            .args(["--num-messages", "50", "--origin", "a (10.0.0.1)"])
            .envs(broker.env()),
        0,
    );
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let id = "339e0f352b4843bfa0d512b796019a92";
    let garbage: Vec<Vec<u8>> = vec![
        b"plain text, not JSON".to_vec(),
        br#"{"timestamp": 1707128717.2, "origin": "a (10.0.0.1)"}"#.to_vec(),
        format!(r#"{{"timestamp": "soon", "_id": "{id}", "origin": "a (10.0.0.1)", "content": "Message #1"}}"#).into_bytes(),
        vec![0xff, 0xfe, 0xfd, b'{', b'}'],
        format!(r#"{{"timestamp": 1e300, "_id": "{id}", "origin": "a (10.0.0.1)", "content": "Message #2"}}"#).into_bytes(),
        format!(r#"{{"timestamp": 1707128717.2, "_id": "{id}", "origin": "a (10.0.0.1)", "content": "Message #99999999999999999999999"}}"#).into_bytes(),
    ];
    for value in &garbage {
        producer
            .send(BaseRecord::<(), _>::to("mixed").payload(value))
            .unwrap();
    }
    producer.send(BaseRecord::<(), ()>::to("mixed")).unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    run(
        app()
            .args(["produce", "--topic", "mixed", "--rate", "0"])
            .args(["--num-messages", "50", "--origin", "b (10.0.0.2)"])
            .envs(broker.env()),
        0,
    );

    let (report, code) = consume_expect(broker, "mixed", "mixed-", 100);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["consumed"], 100);
    assert_eq!(report["malformed"], 7);
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["origins"]["a (10.0.0.1)"]["count"], 50);
    assert_eq!(report["origins"]["a (10.0.0.1)"]["lost"], 0);
    assert_eq!(report["origins"]["b (10.0.0.2)"]["count"], 50);
}

#[test]
fn charm_command_lines_work_against_a_scram_broker() {
    let broker = Broker::scram();
    let bootstrap = broker.bootstrap();
    let (user, password) = broker.admin();
    // Both of the charm's command lines start like this (the password on the command line, as
    // the original charm passes it: the warning is what this checks).
    let connection = [
        "--username",
        &user,
        "--password",
        &password,
        "--servers",
        &bootstrap,
        "--topic",
        "charm-topic",
    ];
    // The charm's producer command line, verbatim apart from the message count (2 events/s).
    let output = run(
        app().args(connection).args([
            "--producer",
            "--replication-factor",
            "1",
            "--num-partitions",
            "5",
            "--num-messages",
            "6",
        ]),
        0,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("sent 6, acked 6, failed 0"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the password was given on the command line"),
        "{stderr}"
    );
    assert!(!stderr.contains(&password), "{stderr}");

    // The charm's consumer command line runs until stopped, then reports and exits 0.
    let (child, mut stderr) = spawn(app().args(connection).args([
        "--consumer",
        "--consumer-group-prefix",
        "relation-7-",
    ]));
    wait_for_line(&mut stderr, "caught up");
    let _stderr = crate::common::drain(stderr);
    crate::common::signal(&child, libc::SIGTERM);
    let (code, stdout) = crate::common::finish(child);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("consumed 6 events"), "{stdout}");
    assert!(stdout.contains("verdict: PASS"), "{stdout}");
}

#[test]
fn sigterm_stops_a_producer_with_a_complete_report() {
    let broker = Broker::start();
    let (child, mut stderr) = spawn(
        app()
            .args([
                "produce",
                "--topic",
                "endless",
                "--rate",
                "200",
                "--num-messages",
                "0",
            ])
            .args(["--output", "json"])
            .envs(broker.env()),
    );
    wait_for_line(&mut stderr, "producing");
    let _stderr = crate::common::drain(stderr);
    crate::common::signal(&child, libc::SIGTERM);
    let (code, stdout) = crate::common::finish(child);
    assert_eq!(code, Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["failed"], 0);
    assert_eq!(report["sent"], report["acked"]);
    let on_topic = read_topic(&broker.bootstrap(), "endless").len() as u64;
    assert_eq!(report["acked"].as_u64().unwrap(), on_topic);
}

/// PLAINTEXT to a SASL listener: Apache Kafka closes the connection at once, and librdkafka only
/// logs it; the one error line gives that cause and what it usually means.
#[test]
fn plaintext_to_a_sasl_listener_names_the_likely_cause() {
    let broker = Broker::scram();
    let bootstrap = broker.bootstrap();
    for subcommand in [
        &["produce", "--topic", "t"][..],
        &["consume", "--topic", "t"],
        &["verify", "--topic", "t"],
    ] {
        let output = run(
            app()
                .args(subcommand)
                .args(["--bootstrap-servers", &bootstrap, "--connect-timeout", "4s"])
                .args(["--security-protocol", "PLAINTEXT"]),
            2,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr.lines().last().unwrap_or_default();
        assert!(
            line.starts_with(&format!(
                "kafka-test-app: error: cannot reach the Kafka cluster at {bootstrap} within 4s: "
            )),
            "{subcommand:?}: {stderr}"
        );
        assert!(
            line.ends_with(
                " (the broker closed the connection at once, as a listener that wants SASL or TLS \
                 does); check --bootstrap-servers and --security-protocol"
            ),
            "{subcommand:?}: {stderr}"
        );
    }
}

#[test]
fn unreachable_broker_is_a_clear_exit_2() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for subcommand in [
        &["produce", "--topic", "t"][..],
        &["consume", "--topic", "t"],
    ] {
        let started = Instant::now();
        let output = run(
            app().args(subcommand).args([
                "--bootstrap-servers",
                &format!("127.0.0.1:{port}"),
                "--connect-timeout",
                "3s",
            ]),
            2,
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "error: cannot reach the Kafka cluster at 127.0.0.1:{port} within 3s"
            )),
            "{stderr}"
        );
    }
}

#[test]
fn kafka_python_reads_the_original_byte_shape() {
    let broker = Broker::start();
    // The default origin: this host's name and address, as the original computes it.
    run(
        app()
            .args([
                "produce",
                "--topic",
                "compat",
                "--rate",
                "0",
                "--num-messages",
                "500",
            ])
            .envs(broker.env()),
        0,
    );
    let python = std::env::var("KTA_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/read_topic.py");
    let output = std::process::Command::new(&python)
        .args([script, &broker.bootstrap(), "compat", "500"])
        .output()
        .unwrap();
    check(&output, 0);
    let counts: BTreeMap<String, u64> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    let (origin, count) = counts.into_iter().next().unwrap();
    assert_eq!(count, 500);
    assert_eq!(origin, kafka_test_app::testing::detect_origin());
}

#[test]
fn tls_and_sasl_ssl_round_trips_and_an_untrusted_certificate() {
    let broker = Broker::sasl_ssl();
    let (_, password) = broker.admin();
    let password = password.as_str();
    let ca = broker.ca_file();
    assert_eq!(broker.var("KTA_SECURITY_PROTOCOL"), Some("SASL_SSL"));
    let secure = |ca: &std::path::Path| {
        let mut command = app();
        command.envs(broker.env()).env("KTA_CA_FILE", ca);
        command
    };
    // SCRAM-SHA-512 over TLS, as the charm runs it when the relation says TLS is on.
    crate::common::round_trip(|| secure(&ca), "tls", "tls (10.0.0.5)", 500);
    let verified = json(&run(
        secure(&ca).args(["verify", "--topic", "tls", "--output", "json"]),
        0,
    ));
    assert_eq!(verified["verdict"], "pass");

    // A CA that did not sign the broker's certificate: the handshake fails, exit 2, one line.
    let other_ca = broker.dir().join("other-ca.pem");
    std::fs::write(&other_ca, include_str!("../data/unrelated-ca.pem")).unwrap();
    let output = run(secure(&other_ca).args(["produce", "--topic", "tls"]), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: TLS handshake with {} failed",
            broker.bootstrap()
        )) && stderr.contains("certificate verify failed"),
        "{stderr}"
    );
    assert!(!stderr.contains(password));
}

#[test]
fn progress_is_one_updating_line_on_a_terminal_and_log_lines_otherwise() {
    let broker = Broker::start();
    let binary = env!("CARGO_BIN_EXE_kafka-test-app");
    let command = format!(
        "{binary} produce --topic tty --rate 200 --num-messages 500 --origin 'tty (10.0.0.6)' 2>/dev/null"
    );
    // `script` gives the binary a pseudo-terminal as stdout.
    let dir = tempfile::tempdir().unwrap();
    let typescript = dir.path().join("typescript");
    let output = std::process::Command::new("script")
        .args(["-qec", &command])
        .arg(&typescript)
        .envs(broker.env())
        .output()
        .unwrap();
    check(&output, 0);
    let screen = std::fs::read_to_string(&typescript).unwrap();
    assert!(screen.contains("\r\x1b[2Ksent "), "{screen:?}");
    assert!(
        screen.contains("sent 500, acked 500, failed 0"),
        "{screen:?}"
    );

    // Not a terminal: no control characters on stdout, progress in the log instead.
    let output = run(
        app()
            .args([
                "produce",
                "--topic",
                "tty",
                "--rate",
                "500",
                "--num-messages",
                "1000",
            ])
            .args(["--report-interval", "1s", "--origin", "pipe (10.0.0.7)"])
            .envs(broker.env()),
        0,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\r'),
        "{stdout:?}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("progress"));
}
