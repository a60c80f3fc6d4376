//! Secrets given through `KTA_X` or `-X` never appear in `--help`, errors, logs or reports.

use std::process::Output;

use crate::common::{app, run, Broker};

/// Everything a user could see of a run: stdout and stderr.
fn seen(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn help_never_shows_a_secret_given_in_kta_x() {
    let secret = "Hunter2-in-kta-x";
    for args in [
        &["--help"][..],
        &["produce", "--help"],
        &["consume", "--help"],
        &["verify", "--help"],
    ] {
        let output = run(
            app()
                .args(args)
                .env("KTA_X", format!("sasl.password={secret};linger.ms=5"))
                .env("KTA_PASSWORD", "Hunter3-in-kta-password"),
            0,
        );
        let text = seen(&output);
        assert!(text.contains("KTA_X"), "{args:?}: {text}");
        assert!(!text.contains(secret), "{args:?}: {text}");
        assert!(!text.contains("Hunter3"), "{args:?}: {text}");
    }
}

#[test]
fn a_malformed_kta_x_entry_is_refused_without_echoing_it() {
    let output = run(
        app()
            .args(["produce", "--topic", "t"])
            .env("KTA_X", "linger.ms=5;sasl.password:Hunter2-malformed"),
        2,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("Hunter2"), "{stderr}");
    assert!(
        stderr.contains(
            "kafka-test-app: error: -X (KTA_X): expected KEY=VALUE (a librdkafka property), got an entry of 31 characters without \
             '=' (not shown: it may hold a secret); separate several KTA_X entries with ';'"
        ),
        "{stderr}"
    );
}

#[test]
fn a_secret_on_the_command_line_draws_a_warning_and_is_never_printed() {
    let secret = "Hunter2-on-the-command-line";
    let output = run(
        app()
            .args([
                "produce",
                "--topic",
                "t",
                "--bootstrap-servers",
                "127.0.0.1:1",
            ])
            .args(["--connect-timeout", "2s", "--username", "someone"])
            .args(["-X", &format!("sasl.password={secret}")])
            .env("KTA_LOG", "debug"),
        2,
    );
    let text = seen(&output);
    assert!(!text.contains(secret), "{text}");
    assert!(
        text.contains(
            "-X sasl.password was given on the command line, where other users of this machine \
             can read it; prefer the KTA_X environment variable"
        ),
        "{text}"
    );
}

/// The password only in `KTA_X` (no KTA_PASSWORD): SCRAM works, and neither the producer's nor
/// verify's output, debug logs included, holds it.
#[test]
fn a_scram_password_in_kta_x_works_and_is_never_printed() {
    let broker = Broker::scram();
    let (user, password) = broker.admin();
    let with_secret = || {
        let mut command = app();
        command
            .envs(broker.env())
            .env_remove("KTA_PASSWORD")
            .env("KTA_USERNAME", &user)
            .env("KTA_X", format!("sasl.password={password}"))
            .env("KTA_LOG", "debug");
        command
    };
    let produced = run(
        with_secret()
            .args([
                "produce",
                "--topic",
                "secret-in-x",
                "--rate",
                "0",
                "--output",
                "json",
            ])
            .args(["--num-messages", "100", "--origin", "secret (10.0.0.50)"]),
        0,
    );
    assert!(!seen(&produced).contains(&password), "{}", seen(&produced));
    let verified = run(
        with_secret().args(["verify", "--topic", "secret-in-x", "--output", "json"]),
        0,
    );
    assert!(!seen(&verified).contains(&password), "{}", seen(&verified));
    let report: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["origins"]["secret (10.0.0.50)"]["count"], 100);

    // A wrong password in KTA_X: the authentication error names the user, never the password.
    let wrong = "Wrong-Hunter2-in-kta-x";
    let refused = run(
        with_secret()
            .env("KTA_X", format!("sasl.password={wrong}"))
            .args(["produce", "--topic", "secret-in-x", "--num-messages", "1"]),
        2,
    );
    let text = seen(&refused);
    assert!(!text.contains(wrong), "{text}");
    assert!(
        text.contains(&format!("authentication failed for user '{user}'")),
        "{text}"
    );
}
