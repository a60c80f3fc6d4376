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

#[test]
fn bad_values_exit_2_naming_the_option() {
    for (args, needle) in [
        (&["produce", "--topic", "t", "--rate", "-3"][..], "--rate"),
        (
            &["produce", "--topic", "t", "--security-protocol", "SASL"],
            "--security-protocol",
        ),
        (
            &["consume", "--topic", "t", "--idle-timeout", "soon"],
            "--idle-timeout",
        ),
        (&["produce"], "--topic"),
    ] {
        let output = run(app().args(args), 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
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
