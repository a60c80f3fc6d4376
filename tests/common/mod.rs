//! Shared helpers for the end-to-end tests: a real Tansu broker on a free loopback port, the real
//! binary run as a process, and an independent reader of a topic.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where the Tansu broker binary is: `$KTA_TANSU`, the cache `scripts/install-test-deps` fills, or
/// `tansu` on PATH.
pub fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("KTA_TANSU") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("KTA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/kafka-test-app")
        });
    let cached = cache.join("tansu-0.6.0/bin/tansu");
    if cached.is_file() {
        return cached;
    }
    PathBuf::from("tansu")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Tansu broker owned by one test; killed on drop.
pub struct Broker {
    children: Vec<Child>,
    /// The port clients connect to (the TLS front end, when there is one).
    port: u16,
    dir: tempfile::TempDir,
}

impl Broker {
    /// A broker with in-memory storage and no authentication.
    pub fn start() -> Broker {
        Self::start_with(&[], false)
    }

    /// A broker that requires SASL, with these SCRAM-SHA-512 users.
    pub fn start_scram(users: &[(&str, &str)]) -> Broker {
        Self::start_with(users, false)
    }

    /// A broker with these SCRAM-SHA-512 users (SASL required when there are any), reached over
    /// TLS when `tls` is set.
    ///
    /// Tansu 0.6.0 cannot serve TLS itself (its `--cert` and `--key` options exclude each other),
    /// so TLS is terminated by socat in front of it, with a certificate for 127.0.0.1 signed by a
    /// throwaway CA ([`Broker::ca_file`]); Tansu advertises socat's port, so every connection the
    /// client makes is a real TLS handshake.
    pub fn start_with(users: &[(&str, &str)], tls: bool) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let (listen, advertise) = if tls {
            (free_port(), port)
        } else {
            (port, port)
        };
        let storage = if users.is_empty() {
            "memory://tansu/"
        } else {
            "sqlite://tansu.db"
        };
        let mut children = Vec::new();
        if !users.is_empty() {
            // Users are created through an unauthenticated broker, which is then restarted with
            // authentication on the same storage.
            let mut setup = spawn_tansu(listen, listen, &dir, storage, false);
            for (user, password) in users {
                let broker = format!("tcp://127.0.0.1:{listen}");
                let status = Command::new(tansu())
                    .args(["user", "create", "--broker", &broker, user, password])
                    .current_dir(dir.path())
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success(), "tansu user create failed");
            }
            setup.kill().unwrap();
            setup.wait().unwrap();
        }
        children.push(spawn_tansu(
            listen,
            advertise,
            &dir,
            storage,
            !users.is_empty(),
        ));
        if tls {
            make_certificates(dir.path());
            let child = Command::new("socat")
                .arg(format!(
                    "openssl-listen:{port},bind=127.0.0.1,reuseaddr,fork,cert=server.pem,key=server.key,verify=0"
                ))
                .arg(format!("tcp:127.0.0.1:{listen}"))
                .current_dir(dir.path())
                .stderr(Stdio::null())
                .spawn()
                .expect("socat runs (scripts/install-test-deps installs it)");
            children.push(child);
            wait_for_port(port, &mut children[1], &dir);
        }
        Broker {
            children,
            port,
            dir,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA that signed the TLS front end's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A directory that lives as long as the broker.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it, made with openssl.
fn make_certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    std::fs::write(
        dir.join("san.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=kafka-test-app test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ]);
}

fn spawn_tansu(
    listen: u16,
    advertise: u16,
    dir: &tempfile::TempDir,
    storage: &str,
    authentication: bool,
) -> Child {
    let mut command = Command::new(tansu());
    command
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{listen}"),
        ])
        .args([
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{advertise}"),
        ])
        .args(["--storage-engine", storage])
        // Tansu reads these from the environment; none may point anywhere but this test.
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("SCHEMA_REGISTRY")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("tansu.log")).unwrap());
    if authentication {
        command.arg("--authentication");
    }
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start the Tansu broker ({}): {e}; run scripts/install-test-deps",
            tansu().display()
        )
    });
    wait_for_port(listen, &mut child, dir);
    child
}

/// Waits until `port` accepts connections (never a fixed sleep); panics with the broker's log if
/// `child` exits first.
fn wait_for_port(port: u16, child: &mut Child, dir: &tempfile::TempDir) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.path().join("tansu.log")).unwrap_or_default();
            panic!("a broker process exited with {status} before accepting connections:\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "port {port} did not accept connections within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
/// (the library's own whole-topic reader, which copes with Tansu's watermarks).
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
