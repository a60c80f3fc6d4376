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

/// The password from a file (`KTA_PASSWORD_FILE`, as a mounted secret): SCRAM works, and the
/// password is in no output, no `/metrics`, `/report` and no process argument.
#[test]
fn a_password_file_works_and_the_password_is_nowhere_else() {
    let broker = Broker::scram();
    let (user, password) = broker.admin();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (child, stderr) = crate::common::spawn(
        app()
            .args(["produce", "--topic", "secret-in-file", "--output", "json"])
            .args(["--rate", "100", "--num-messages", "0"])
            .args(["--origin", "secret-file (10.0.0.51)"])
            .envs(broker.env())
            .env_remove("KTA_PASSWORD")
            .env("KTA_USERNAME", &user)
            .env("KTA_PASSWORD_FILE", &file)
            .env("KTA_HTTP_ADDR", &addr),
    );
    let stderr = crate::common::drain(stderr);
    // Wait (bounded) until the producer has acknowledged events, then look everywhere.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut pages = String::new();
    while std::time::Instant::now() < deadline {
        let report = http_get(&addr, "/report");
        if report.contains("\"acked\":") && !report.contains("\"acked\":0,") {
            pages = format!("{report}{}", http_get(&addr, "/metrics"));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(!pages.is_empty(), "no acknowledged events within 60 s");
    let args = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
    crate::common::signal(&child, libc::SIGTERM);
    let (code, stdout) = crate::common::finish(child);
    let stderr = stderr.join().unwrap();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    for (what, text) in [
        ("stdout", stdout.as_bytes()),
        ("stderr", stderr.as_bytes()),
        ("/report and /metrics", pages.as_bytes()),
        ("process arguments", &args),
        ("environment", &environ),
    ] {
        let text = String::from_utf8_lossy(text);
        assert!(!text.contains(&password), "the password is in {what}");
    }
    // An unreadable file: one line, exit 2.
    let output = run(
        app()
            .args(["produce", "--topic", "t"])
            .env("KTA_USERNAME", "someone")
            .env("KTA_PASSWORD_FILE", dir.path().join("missing")),
        2,
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim_end(),
        format!(
            "kafka-test-app: error: cannot read the password file {}: No such file or directory \
             (os error 2); check --password-file (KTA_PASSWORD_FILE)",
            dir.path().join("missing").display()
        )
    );
}

/// One HTTP/1.0 GET on loopback; the body, or "" when nothing answers yet.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, body)| body.to_owned())
}
