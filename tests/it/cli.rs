//! The binary without a broker: the zero-setup demo and usage errors.

use crate::common::{app, json, run};

#[test]
fn demo_needs_no_broker_and_passes_with_exact_counts() {
    let report = json(&run(app().args(["demo", "--output", "json"]), 0));
    let acked: Vec<u64> = report["produce"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["acked"].as_u64().unwrap())
        .collect();
    assert_eq!(acked, vec![1000, 2000, 3000]);
    assert_eq!(report["consume"]["verdict"], "pass");
    assert_eq!(report["consume"]["consumed"], 6000);
    let verify = &report["verify"];
    assert_eq!(verify["verdict"], "pass");
    for (i, count) in [1000, 2000, 3000].into_iter().enumerate() {
        let origin = &verify["origins"][format!("kafka-test-app-{i} (demo)")];
        assert_eq!(
            (origin["count"].as_u64(), origin["lost"].as_u64()),
            (Some(count), Some(0))
        );
    }
    assert_eq!(verify["group"]["unconsumed"], 0);
}

#[test]
fn the_originals_mongo_option_is_refused_with_exit_2() {
    let output = run(
        app().args([
            "--producer",
            "--servers",
            "127.0.0.1:1",
            "--mongo-uri",
            "mongodb://x",
        ]),
        2,
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim_end(),
        "kafka-test-app: error: --mongo-uri is not supported: kafka-test-app verifies what it \
         consumes itself (see `kafka-test-app consume --help`); remove --mongo-uri"
    );
    assert!(output.stdout.is_empty());
}

/// Bad input: exit 2, and the first line on stderr says what is wrong and what to do. Nothing is
/// sent (no broker listens at 127.0.0.1:1).
#[test]
fn bad_input_is_one_clear_line_and_exit_2() {
    let long = "a".repeat(250);
    let longest = "a".repeat(240);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["produce", "--topic", "bad/name"],
            "error: invalid value 'bad/name' for '--topic <TOPIC>': 'bad/name' holds '/'; a Kafka \
             topic name is 1 to 249 ASCII letters, digits, '.', '_' and '-'"
                .into(),
        ),
        (
            vec!["consume", "--topic", ".."],
            "error: invalid value '..' for '--topic <TOPIC>': '..' cannot be a topic name; a Kafka \
             topic name is 1 to 249 ASCII letters, digits, '.', '_' and '-', and not '.' or '..'"
                .into(),
        ),
        (
            vec!["verify", "--topic", &long],
            format!(
                "error: invalid value '{long}' for '--topic <TOPIC>': the topic name is 250 \
                 characters long; a Kafka topic name is 1 to 249 ASCII letters, digits, '.', '_' \
                 and '-'"
            ),
        ),
        (
            vec!["produce", "--topic", &longest],
            format!(
                "kafka-test-app: error: the default control topic of '{longest}' is not a legal \
                 name (the topic name is 252 characters long; a Kafka topic name is 1 to 249 \
                 ASCII letters, digits, '.', '_' and '-'); pass --control-topic NAME"
            ),
        ),
        (
            vec!["produce", "--topic", "t", "--control-topic", "bad:name"],
            "error: invalid value 'bad:name' for '--control-topic <CONTROL_TOPIC>': 'bad:name' \
             holds ':'; a Kafka topic name is 1 to 249 ASCII letters, digits, '.', '_' and '-'"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "-s", "127.0.0.1:70000"],
            "kafka-test-app: error: bootstrap server '127.0.0.1:70000' has port '70000', not a \
             number from 1 to 65535; give HOST:PORT, comma-separated (--bootstrap-servers or \
             KTA_BOOTSTRAP_SERVERS)"
                .into(),
        ),
        (
            vec!["consume", "--topic", "t", "-s", "127.0.0.1:1,broker:abc"],
            "kafka-test-app: error: bootstrap server 'broker:abc' has port 'abc', not a number \
             from 1 to 65535; give HOST:PORT, comma-separated (--bootstrap-servers or \
             KTA_BOOTSTRAP_SERVERS)"
                .into(),
        ),
        (
            vec!["verify", "--topic", "t", "-s", "localhost"],
            "kafka-test-app: error: bootstrap server 'localhost' has no port; give HOST:PORT, \
             comma-separated (--bootstrap-servers or KTA_BOOTSTRAP_SERVERS)"
                .into(),
        ),
        (
            vec!["--producer", "produce", "--topic", "t"],
            "kafka-test-app: error: --producer before the subcommand 'produce' is one of the \
             original client's flags, which work only without a subcommand; give the \
             subcommand's own options after it (see `kafka-test-app produce --help`)"
                .into(),
        ),
        (
            vec!["--num-messages", "5", "consume", "--topic", "t"],
            "kafka-test-app: error: --num-messages before the subcommand 'consume' is one of the \
             original client's flags, which work only without a subcommand; give the \
             subcommand's own options after it (see `kafka-test-app consume --help`)"
                .into(),
        ),
        (
            vec!["consume", "--topic", "t", "--expect", "0"],
            "error: invalid value '0' for '--expect <EXPECT>': 0 would stop before reading \
             anything; give at least 1, or leave --expect out"
                .into(),
        ),
        (
            vec!["consume", "--topic", "t", "--idle-timeout", "0s"],
            "error: invalid value '0s' for '--idle-timeout <IDLE_TIMEOUT>': it must be longer \
             than 0s (e.g. 30s)"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--connect-timeout", "0s"],
            "error: invalid value '0s' for '--connect-timeout <CONNECT_TIMEOUT>': it must be \
             longer than 0s (e.g. 30s)"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--duration", "0s"],
            "error: invalid value '0s' for '--duration <DURATION>': it must be longer than 0s \
             (e.g. 30s)"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--rate", "-3"],
            "error: invalid value '-3' for '--rate <RATE>': the rate must be 0 (unlimited) or a \
             positive number of events per second"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--key", "random:0"],
            "error: invalid value 'random:0' for '--key <KEY>': 'random:0' has no number of keys \
             of at least 1; give none, origin, random:K (K distinct keys, K at least 1) or \
             sequential"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--key", "hash"],
            "error: invalid value 'hash' for '--key <KEY>': 'hash' is not a key mode; give none, \
             origin, random:K (K distinct keys, K at least 1) or sequential"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--payload-bytes", "2000000"],
            "error: invalid value '2000000' for '--payload-bytes <PAYLOAD_BYTES>': give a whole \
             number of bytes from 1 to 1000000 (Kafka's default message.max.bytes is 1048588)"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--compression", "brotli"],
            "error: invalid value 'brotli' for '--compression <COMPRESSION>': 'brotli' is not a \
             codec; give none, gzip, snappy, lz4 or zstd"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--ramp", "100:5000"],
            "error: invalid value '100:5000' for '--ramp <FROM:TO:DURATION>': '100:5000' is not \
             FROM:TO:DURATION; give FROM:TO:DURATION, e.g. 100:5000:2m"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--ramp", "100:-5:1m"],
            "error: invalid value '100:-5:1m' for '--ramp <FROM:TO:DURATION>': TO '-5' is not a \
             number of events per second (0 or more); give FROM:TO:DURATION, e.g. 100:5000:2m"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--ramp", "0:0:1m"],
            "error: invalid value '0:0:1m' for '--ramp <FROM:TO:DURATION>': a ramp from 0 to 0 \
             sends nothing; give FROM:TO:DURATION, e.g. 100:5000:2m"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--steps", "1000@30s,2000"],
            "error: invalid value '1000@30s,2000' for '--steps <RATE@DURATION,...>': step '2000' \
             is not RATE@DURATION; give RATE@DURATION,..., e.g. 1000@30s,2000@30s"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--steps", "0@30s"],
            "error: invalid value '0@30s' for '--steps <RATE@DURATION,...>': rate '0' is not a \
             positive number of events per second; give RATE@DURATION,..., e.g. \
             1000@30s,2000@30s"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--steps", "10@0s"],
            "error: invalid value '10@0s' for '--steps <RATE@DURATION,...>': duration '0s': it \
             must be longer than 0s (e.g. 30s); give RATE@DURATION,..., e.g. 1000@30s,2000@30s"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--steps", "10@1s", "--rate", "5"],
            "error: the argument '--steps <RATE@DURATION,...>' cannot be used with '--rate <RATE>'"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--warmup", "10s", "--duration", "10s"],
            "kafka-test-app: error: --warmup 10s is not shorter than the run (10s): no event \
             would count for latency; give a shorter --warmup"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--abort-rate", "0.2"],
            "kafka-test-app: error: --abort-rate applies to transactions; give \
             --transactional-id ID as well"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--transactional-id", "x", "--abort-rate", "1.5"],
            "error: invalid value '1.5' for '--abort-rate <ABORT_RATE>': give the share of \
             transactions to abort, from 0 to 1 (e.g. 0.2)"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--transactional-id", "x", "--txn-events", "0"],
            "error: invalid value '0' for '--txn-events <TXN_EVENTS>': give a whole number of \
             events per transaction, at least 1"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "--transactional-id", " "],
            "error: invalid value ' ' for '--transactional-id <TRANSACTIONAL_ID>': give a \
             non-empty id, the same for a producer and its restarts"
                .into(),
        ),
        (
            vec!["verify", "--topic", "t", "--isolation", "dirty"],
            "error: invalid value 'dirty' for '--isolation <ISOLATION>': 'dirty' is not an \
             isolation level; give read_committed or read_uncommitted"
                .into(),
        ),
        (
            vec!["consume", "--topic", "t", "--idle-timeout", "soon"],
            "error: invalid value 'soon' for '--idle-timeout <IDLE_TIMEOUT>': expected number at 0"
                .into(),
        ),
        (
            vec!["produce", "--topic", "t", "-s", "127.0.0.1:1", "--connect-timeout", "2s"],
            "kafka-test-app: error: cannot reach the Kafka cluster at 127.0.0.1:1 within 2s: \
             127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused; check \
             --bootstrap-servers and --security-protocol"
                .into(),
        ),
        (
            vec!["verify", "--topic", "t", "-s", "no-such-host.invalid:9092"],
            "kafka-test-app: error: cannot reach the Kafka cluster at no-such-host.invalid:9092 \
             within 10s: no-such-host.invalid:9092/bootstrap: Failed to resolve \
             'no-such-host.invalid:9092': Name or service not known; check --bootstrap-servers \
             and --security-protocol"
                .into(),
        ),
    ];
    for (args, expected) in cases {
        let output = run(app().args(&args).env_remove("KTA_BOOTSTRAP_SERVERS"), 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr
            .lines()
            .find(|l| l.contains("error: "))
            .unwrap_or_default();
        assert_eq!(line, expected, "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

/// A rate whose next event is due in years is accepted (it is a rate) but warned about.
#[test]
fn a_rate_of_one_event_in_years_is_warned_about() {
    let output = run(
        app()
            .args(["produce", "--topic", "t", "--rate", "0.00000001"])
            .args(["-s", "127.0.0.1:1", "--connect-timeout", "1s"]),
        2,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "--rate 0.00000001 (events per second) sends one event every 3years 2months 18h 39m 28s"
        ),
        "{stderr}"
    );
}

#[test]
fn sasl_without_a_password_is_a_usage_error_before_any_connection() {
    let output = run(
        app()
            .args([
                "produce",
                "--topic",
                "t",
                "--bootstrap-servers",
                "127.0.0.1:1",
            ])
            .env("KTA_USERNAME", "relation-9"),
        2,
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim_end(),
        "kafka-test-app: error: SASL_PLAINTEXT needs a username and a password; pass --username \
         and --password (or KTA_USERNAME and KTA_PASSWORD), or choose --security-protocol PLAINTEXT"
    );
}
