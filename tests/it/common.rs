//! Shared helpers for the end-to-end tests: real Apache Kafka clusters (`scripts/kafka`, one per
//! kind per test binary, shared by its tests, each test on its own topics and groups), the real
//! binary run as a process, and an independent reader of a topic.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// A running Apache Kafka cluster started by `scripts/kafka up`, shared by the tests of this
/// binary. It goes down when the test process exits (`--owner`).
pub struct Broker {
    /// The cluster's directory: `env`, `users`, `tls/`, `nodeN/server.log`.
    dir: PathBuf,
    /// `DIR/env`: the connection as the tool's own variables.
    env: Vec<(String, String)>,
}

/// `scripts/kafka` of this checkout.
pub fn kafka_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka")
}

impl Broker {
    fn up(name: &str, args: &[&str]) -> Broker {
        let dir = std::env::temp_dir().join(format!("kta-it-{}-{name}", std::process::id()));
        let output = Command::new(kafka_script())
            .arg("up")
            .arg("--dir")
            .arg(&dir)
            .args(args)
            .args(["--owner", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("scripts/kafka runs");
        assert!(
            output.status.success(),
            "scripts/kafka up {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let env = std::fs::read_to_string(dir.join("env"))
            .unwrap()
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Broker { dir, env }
    }

    /// A cluster of this test's own (for tests that stop or kill brokers), down when dropped.
    pub fn own(name: &str, args: &[&str]) -> Broker {
        Broker::up(name, args)
    }

    /// One node, PLAINTEXT, no authentication.
    pub fn start() -> &'static Broker {
        static CLUSTER: OnceLock<Broker> = OnceLock::new();
        CLUSTER.get_or_init(|| Broker::up("plain", &[]))
    }

    /// Three nodes (127.0.0.1–3), PLAINTEXT, replication factor 3 and `min.insync.replicas=2`
    /// for new topics: the fault tests' cluster (they take turns on it). Node 3's clients go
    /// through its slow-broker proxy (no delay until `scripts/kafka slow 3 MS`).
    pub fn three() -> &'static Broker {
        static CLUSTER: OnceLock<Broker> = OnceLock::new();
        CLUSTER.get_or_init(|| Broker::up("three", &["--nodes", "3", "--proxied", "3"]))
    }

    /// One node, SASL_PLAINTEXT with SCRAM, the StandardAuthorizer and ACLs (Charmed Kafka's
    /// setup); the connection is the super-user `admin`.
    pub fn scram() -> &'static Broker {
        static CLUSTER: OnceLock<Broker> = OnceLock::new();
        CLUSTER.get_or_init(|| Broker::up("scram", &["--auth", "scram"]))
    }

    /// One node, SASL_SSL with SCRAM (a certificate for 127.0.0.1 signed by the cluster's CA).
    pub fn sasl_ssl() -> &'static Broker {
        static CLUSTER: OnceLock<Broker> = OnceLock::new();
        CLUSTER.get_or_init(|| Broker::up("sasl-ssl", &["--auth", "scram", "--tls"]))
    }

    /// One node, mutual TLS: the client presents a certificate signed by the cluster's CA.
    pub fn mtls() -> &'static Broker {
        static CLUSTER: OnceLock<Broker> = OnceLock::new();
        CLUSTER.get_or_init(|| Broker::up("mtls", &["--tls"]))
    }

    /// The connection, as the `KTA_*` variables of `DIR/env`.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    /// One variable of `DIR/env`.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The bootstrap servers.
    pub fn bootstrap(&self) -> String {
        self.var("KTA_BOOTSTRAP_SERVERS").unwrap().to_owned()
    }

    /// The super-user's name and password (SCRAM clusters).
    pub fn admin(&self) -> (String, String) {
        (
            self.var("KTA_USERNAME").unwrap().to_owned(),
            self.var("KTA_PASSWORD").unwrap().to_owned(),
        )
    }

    /// The password of a test user the cluster made (`producer`, `consumer`, `nobody`).
    pub fn password_of(&self, user: &str) -> String {
        std::fs::read_to_string(self.dir.join("users"))
            .unwrap()
            .lines()
            .find_map(|line| {
                let (name, password) = line.split_once(' ')?;
                (name == user).then(|| password.to_owned())
            })
            .unwrap_or_else(|| panic!("no user {user} in {}", self.dir.display()))
    }

    /// The CA that signed the brokers' certificate (TLS clusters).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster's base port P, as `DIR/cluster` has it: P clients, P+1 controllers, P+2
    /// brokers, P+3 the proxy of a proxied node, on every node's address (what a cut of one node matches, so that other clusters
    /// on this machine keep running).
    pub fn port(&self) -> u16 {
        std::fs::read_to_string(self.dir.join("cluster"))
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("PORT="))
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no PORT in {}/cluster", self.dir.display()))
    }

    /// Runs `scripts/kafka <args> --dir DIR` (grant, kill, stop, …) and checks it succeeded.
    pub fn kafka(&self, args: &[&str]) -> Output {
        let output = Command::new(kafka_script())
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .output()
            .unwrap();
        check(&output, 0);
        output
    }

    /// librdkafka settings for a client of the tests' own (raw producers).
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap());
        if let Some(protocol) = self.var("KTA_SECURITY_PROTOCOL") {
            config.set("security.protocol", protocol);
        }
        if let Some((user, password)) = self.var("KTA_USERNAME").zip(self.var("KTA_PASSWORD")) {
            config
                .set("sasl.mechanisms", "SCRAM-SHA-512")
                .set("sasl.username", user)
                .set("sasl.password", password);
        }
        for (var, key) in [
            ("KTA_CA_FILE", "ssl.ca.location"),
            ("KTA_CERT_FILE", "ssl.certificate.location"),
            ("KTA_KEY_FILE", "ssl.key.location"),
        ] {
            if let Some(file) = self.var(var) {
                config.set(key, file);
            }
        }
        config
    }
}

impl Drop for Broker {
    /// Shared clusters live in statics, which are never dropped; a test's own goes down here.
    fn drop(&mut self) {
        let _ = Command::new(kafka_script())
            .arg("down")
            .arg("--dir")
            .arg(&self.dir)
            .output();
    }
}

/// A consumer group prefix no other test uses.
fn unique_group_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "kta-it-{}-{}-",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The real binary, with no `KTA_*` variable inherited from the test environment.
pub fn app() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kafka-test-app"));
    for (name, _) in std::env::vars() {
        if name.starts_with("KTA_") {
            command.env_remove(name);
        }
    }
    command.env("KTA_LOG", "info");
    // Tests share a cluster: each consumer joins a group of its own unless the test names one.
    command.env("KTA_CONSUMER_GROUP_PREFIX", unique_group_prefix());
    command
}

/// Runs `command` and checks its exit code; prints stdout and stderr when it differs.
pub fn run(command: &mut Command, expected: i32) -> Output {
    let output = command.output().unwrap();
    check(&output, expected);
    output
}

/// Checks an exit code, printing stdout and stderr when it differs.
pub fn check(output: &Output, expected: i32) {
    if output.status.code() != Some(expected) {
        panic!(
            "expected exit code {expected}, got {:?}\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Parses the JSON report a run printed on stdout.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Reads stderr of a running child line by line until one contains `needle`; returns the lines.
pub fn wait_for_line(reader: &mut impl BufRead, needle: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "stream ended before a line containing {needle:?}:\n{}",
            lines.join("")
        );
        let found = line.contains(needle);
        lines.push(line);
        if found {
            return lines;
        }
    }
}

/// Keeps reading a child's stderr in the background (so a chatty child never blocks on a full
/// pipe); the handle returns the rest of the text once the child has exited.
pub fn drain(mut reader: BufReader<std::process::ChildStderr>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
        rest
    })
}

/// Spawns the binary with stderr piped, for tests that wait on its log lines.
pub fn spawn(command: &mut Command) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    (child, stderr)
}

/// Produces `count` events from `origin` to `topic` with the unpaced producer, then consumes them
/// with `--expect`; every command comes from `command` (which sets the connection). Asserts exact
/// counts and a passing verdict, and returns the consumer's report.
pub fn round_trip(
    command: impl Fn() -> Command,
    topic: &str,
    origin: &str,
    count: u64,
) -> serde_json::Value {
    let count_arg = count.to_string();
    let produced = json(&run(
        command()
            .args([
                "produce", "--topic", topic, "--rate", "0", "--output", "json",
            ])
            .args(["--num-messages", &count_arg, "--origin", origin]),
        0,
    ));
    assert_eq!(produced["acked"], count);
    let consumed = json(&run(
        command()
            .args([
                "consume", "--topic", topic, "--expect", &count_arg, "--output", "json",
            ])
            .args(["--idle-timeout", "60s"]),
        0,
    ));
    assert_eq!(consumed["origins"][origin]["count"], count);
    assert_eq!(consumed["verdict"], "pass");
    consumed
}

/// Waits for a spawned child; returns its exit code and everything it wrote on stdout.
pub fn finish(mut child: Child) -> (Option<i32>, String) {
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    (status.code(), stdout)
}

/// Sends a signal to a child.
pub fn signal(child: &Child, signal: i32) {
    let rc = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(rc, 0);
}

/// Every record value of `topic`, read without a group from the start of each partition to its end
/// (the library's own whole-topic reader) of a PLAINTEXT cluster.
pub fn read_topic(bootstrap: &str, topic: &str) -> Vec<Option<Vec<u8>>> {
    let settings = kafka_test_app::testing::ConnectionSettings {
        bootstrap_servers: bootstrap.to_owned(),
        ..Default::default()
    };
    let mut values = Vec::new();
    let found = kafka_test_app::testing::read_to_end(
        &settings,
        topic,
        &tokio_util::sync::CancellationToken::new(),
        |message| values.push(rdkafka::Message::payload(message).map(<[u8]>::to_vec)),
    )
    .unwrap();
    assert!(found, "topic {topic} does not exist");
    values
}
