//! The command line: subcommands, the original client's drop-in flags, and turning both into a
//! [`Plan`] (connection settings plus what to run).
//!
//! Every option is also read from an environment variable `KTA_<NAME>`, so containers and the charm
//! configure the tool without putting anything (passwords above all) on the command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::consume::{group_id, ConsumeOptions};
use crate::error::{Error, Result};
use crate::kafka::config::{
    parse_override, ConnectionSettings, Isolation, Override, SaslMechanism, Secret,
    SecurityProtocol,
};
use crate::kafka::topic::TopicSpec;
use crate::produce::rate::Phase;
use crate::produce::{ClockOffset, Compression, KeyMode, ProduceOptions, Transactions, Workload};
use crate::report::OutputFormat;
use crate::verify::VerifyOptions;
use crate::wire::control::default_control_topic;

/// Put real, checkable traffic through a Kafka cluster.
///
/// `produce` sends the Kafka test app's JSON events at an exact rate; `consume` counts them by
/// origin and proves nothing was lost, duplicated or reordered; `demo` shows both against an
/// in-process mock cluster. The original client's command line (`--producer`/`--consumer`) also
/// works unchanged.
#[derive(Debug, Parser)]
#[command(name = "kafka-test-app", version, max_term_width = 100)]
pub struct Cli {
    /// Connection options shared by every subcommand.
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Serve /healthz, /readyz, /metrics (Prometheus) and /report on this address (e.g. 0.0.0.0:8080).
    #[arg(long, global = true, env = "KTA_HTTP_ADDR")]
    pub http_addr: Option<std::net::SocketAddr>,

    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        env = "KTA_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    pub log_format: LogFormat,

    /// What to run.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The original client's flags, used when no subcommand is given.
    #[command(flatten)]
    pub legacy: LegacyArgs,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// How to reach the cluster.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection (every subcommand)")]
pub struct ConnectionArgs {
    /// Comma-separated bootstrap servers (host:port).
    #[arg(
        long = "bootstrap-servers",
        visible_alias = "servers",
        short = 's',
        env = "KTA_BOOTSTRAP_SERVERS",
        global = true,
        default_value = "localhost:9092"
    )]
    pub bootstrap_servers: String,

    /// Security protocol [default: SASL_PLAINTEXT with --username, else PLAINTEXT].
    #[arg(
        long,
        short = 'x',
        env = "KTA_SECURITY_PROTOCOL",
        global = true,
        value_enum,
        ignore_case = true
    )]
    pub security_protocol: Option<SecurityProtocol>,

    /// SASL mechanism.
    #[arg(
        long,
        env = "KTA_SASL_MECHANISM",
        global = true,
        value_enum,
        default_value_t,
        ignore_case = true
    )]
    pub sasl_mechanism: SaslMechanism,

    /// SASL user name.
    #[arg(long, short = 'u', env = "KTA_USERNAME", global = true)]
    pub username: Option<String>,

    /// SASL password (prefer the KTA_PASSWORD environment variable).
    #[arg(
        long,
        short = 'p',
        env = "KTA_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub password: Option<Secret>,

    /// File holding the SASL password (a Kubernetes or compose secret; one trailing newline is
    /// ignored). Instead of --password.
    #[arg(
        long,
        env = "KTA_PASSWORD_FILE",
        global = true,
        conflicts_with = "password"
    )]
    pub password_file: Option<PathBuf>,

    /// PEM file of the CA to trust (SSL, SASL_SSL).
    #[arg(
        long,
        visible_alias = "cafile-path",
        env = "KTA_CA_FILE",
        global = true
    )]
    pub ca_file: Option<PathBuf>,

    /// PEM client certificate for mutual TLS.
    #[arg(
        long,
        visible_alias = "certfile-path",
        env = "KTA_CERT_FILE",
        global = true
    )]
    pub cert_file: Option<PathBuf>,

    /// PEM client key for mutual TLS.
    #[arg(
        long,
        visible_alias = "keyfile-path",
        env = "KTA_KEY_FILE",
        global = true
    )]
    pub key_file: Option<PathBuf>,

    /// librdkafka property, as kcat's -X (repeatable; KTA_X takes several separated by ';').
    #[arg(
        short = 'X',
        value_name = "KEY=VALUE",
        env = "KTA_X",
        value_delimiter = ';',
        global = true,
        hide_env_values = true
    )]
    pub overrides: Vec<String>,

    /// How long start-up may try to reach the cluster before failing with exit code 2.
    #[arg(long, env = "KTA_CONNECT_TIMEOUT", global = true, default_value = "10s", value_parser = parse_positive_duration)]
    pub connect_timeout: Duration,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send test events at an exact rate and report what the broker acknowledged.
    Produce(Box<ProduceArgs>),
    /// Consume test events, count them by origin and verify them.
    Consume(ConsumeArgs),
    /// Check the whole fleet: every producer run's acknowledged events against the topic.
    Verify(VerifyArgs),
    /// Run three producers and a consumer against an in-process mock cluster (no broker needed).
    Demo(DemoArgs),
}

/// `verify` options.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The data topic.
    #[arg(long, short = 't', env = "KTA_TOPIC", value_parser = parse_topic)]
    pub topic: String,

    /// The producers' control topic [default: "<topic>-kta-control"].
    #[arg(long, env = "KTA_CONTROL_TOPIC", value_parser = parse_topic)]
    pub control_topic: Option<String>,

    /// An aggregation job's count by origin to check: a Spark console table (or the Spark
    /// driver's whole log: where the job began and how far its batch had read are taken from it;
    /// a batch taken before the job had read the whole topic exits 4, behind), CSV or JSON lines.
    #[arg(long, env = "KTA_AGAINST")]
    pub against: Option<PathBuf>,

    /// Also check that this consumer group (its full id, e.g. "relation-9-1") consumed every
    /// record, from its members' reports.
    #[arg(long, env = "KTA_GROUP")]
    pub group: Option<String>,

    /// Also write the report as one self-contained HTML page (charts, every origin, the JSON).
    #[arg(long, env = "KTA_HTML", value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// read_committed: an event of an aborted transaction read is an aborted read (a failure);
    /// read_uncommitted: such events are expected and counted apart.
    #[arg(long, env = "KTA_ISOLATION", default_value = "read_committed", value_parser = parse_isolation)]
    pub isolation: Isolation,

    /// Report format on stdout.
    #[arg(long, short = 'o', env = "KTA_OUTPUT", value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `produce` options.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic to produce to (created if missing).
    #[arg(long, short = 't', env = "KTA_TOPIC", value_parser = parse_topic)]
    pub topic: String,

    /// Events per second; 0 = as fast as the broker takes them.
    #[arg(long, env = "KTA_RATE", default_value_t = 2.0, value_parser = parse_rate,
          allow_negative_numbers = true)]
    pub rate: f64,

    /// Events to send; 0 = until stopped [default: 1000, or no limit with --duration].
    #[arg(long, short = 'n', env = "KTA_NUM_MESSAGES")]
    pub num_messages: Option<u64>,

    /// Stop after this long (e.g. 10s, 5m).
    #[arg(long, env = "KTA_DURATION", value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,

    /// Partitions of the topic if it is created.
    #[arg(long, visible_alias = "num-partitions", env = "KTA_PARTITIONS", default_value_t = 5,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,

    /// Replication factor of the topic if it is created.
    #[arg(long, short = 'r', env = "KTA_REPLICATION_FACTOR", default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: i32,

    /// Origin stamped on events [default: "<hostname> (<ip>)"].
    #[arg(long, env = "KTA_ORIGIN")]
    pub origin: Option<String>,

    /// Record key: none (the original's), origin (one partition per producer), random:K (K
    /// distinct keys, at most K partitions), sequential (every key distinct).
    #[arg(long, env = "KTA_KEY", default_value = "none", value_parser = parse_key)]
    pub key: KeyMode,

    /// Pad every event to this many bytes with a "padding" field after the four original fields
    /// (still JSON, the same four fields first) [default: the original's bytes].
    #[arg(long, env = "KTA_PAYLOAD_BYTES", value_parser = parse_payload_bytes)]
    pub payload_bytes: Option<usize>,

    /// Compression of the producer's batches (librdkafka's compression.type): none, gzip,
    /// snappy, lz4 or zstd.
    #[arg(long, env = "KTA_COMPRESSION", default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,

    /// Treat the first part of the run as warm-up: its events are sent and verified like any,
    /// but left out of the latency statistics (e.g. 30s).
    #[arg(long, env = "KTA_WARMUP", value_parser = parse_positive_duration)]
    pub warmup: Option<Duration>,

    /// Ramp the rate linearly from FROM to TO events per second over DURATION, then stop (e.g.
    /// 100:5000:2m). Instead of --rate and --duration.
    #[arg(long, env = "KTA_RAMP", value_name = "FROM:TO:DURATION", value_parser = parse_ramp,
          conflicts_with_all = ["rate", "duration", "steps"])]
    pub ramp: Option<Phase>,

    /// Steps of steady rates, one after another, then stop (e.g. 1000@30s,2000@30s,4000@30s).
    /// Instead of --rate and --duration.
    #[arg(long, env = "KTA_STEPS", value_name = "RATE@DURATION,...", value_parser = parse_steps,
          conflicts_with_all = ["rate", "duration"])]
    pub steps: Option<Steps>,

    /// Send in transactions with this transactional.id: a later producer with the same id
    /// fences this one and aborts its open transaction.
    #[arg(long, env = "KTA_TRANSACTIONAL_ID", value_parser = parse_transactional_id)]
    pub transactional_id: Option<String>,

    /// Events per transaction (with --transactional-id) [default: 100].
    #[arg(long, env = "KTA_TXN_EVENTS", value_parser = parse_txn_events)]
    pub txn_events: Option<u64>,

    /// Share of transactions aborted instead of committed, from 0 to 1 (with
    /// --transactional-id); a read-committed reader must see none of their events [default: 0].
    #[arg(long, env = "KTA_ABORT_RATE", value_parser = parse_abort_rate)]
    pub abort_rate: Option<f64>,

    /// Test hook: stamp events as if this host's clock were this far ahead (e.g. 5s) or behind
    /// (e.g. -3s).
    #[arg(long, hide = true, allow_hyphen_values = true, value_parser = parse_clock_offset)]
    pub clock_offset: Option<ClockOffset>,

    /// At the end, how long to wait for outstanding acknowledgements.
    #[arg(long, env = "KTA_FLUSH_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub flush_timeout: Duration,

    /// How often to log progress.
    #[arg(long, env = "KTA_REPORT_INTERVAL", default_value = "10s", value_parser = parse_interval)]
    pub report_interval: Duration,

    /// Topic for this run's reports, read by `verify` [default: "<topic>-kta-control"].
    #[arg(long, env = "KTA_CONTROL_TOPIC", value_parser = parse_topic)]
    pub control_topic: Option<String>,

    /// Write no run reports (then `verify` cannot know what this run had acknowledged).
    #[arg(long, env = "KTA_NO_RUN_REPORTS")]
    pub no_run_reports: bool,

    /// Final report format on stdout.
    #[arg(long, short = 'o', env = "KTA_OUTPUT", value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `consume` options.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic to consume (waits for it to exist).
    #[arg(long, short = 't', env = "KTA_TOPIC", value_parser = parse_topic)]
    pub topic: String,

    /// Consumer group prefix; the group is "<prefix>1" [default: "<username>-", or "kafka-test-app-"].
    #[arg(long, short = 'c', env = "KTA_CONSUMER_GROUP_PREFIX")]
    pub consumer_group_prefix: Option<String>,

    /// Stop once this many events were consumed; fewer means fail.
    #[arg(long, env = "KTA_EXPECT", value_parser = parse_expect)]
    pub expect: Option<u64>,

    /// Stop when nothing new arrived for this long (also bounds the wait for the topic).
    #[arg(long, env = "KTA_IDLE_TIMEOUT", value_parser = parse_positive_duration)]
    pub idle_timeout: Option<Duration>,

    /// How often to print the count-by-origin table.
    #[arg(long, env = "KTA_REPORT_INTERVAL", default_value = "10s", value_parser = parse_interval)]
    pub report_interval: Duration,

    /// Stop once every producer run announced on the control topic has finished and all it
    /// acknowledged has been consumed (or --idle-timeout passed).
    #[arg(long, env = "KTA_UNTIL_COMPLETE")]
    pub until_complete: bool,

    /// Topic for this member's reports and the producers' run reports [default: "<topic>-kta-control"].
    #[arg(long, env = "KTA_CONTROL_TOPIC", value_parser = parse_topic)]
    pub control_topic: Option<String>,

    /// read_committed: an event of an aborted transaction read is an aborted read (a failure);
    /// read_uncommitted: such events are expected and counted apart.
    #[arg(long, env = "KTA_ISOLATION", default_value = "read_committed", value_parser = parse_isolation)]
    pub isolation: Isolation,

    /// Write no member reports (then `verify --group` cannot account for this consumer).
    #[arg(long, env = "KTA_NO_MEMBER_REPORTS", conflicts_with_all = ["until_complete", "hold_until_done"])]
    pub no_member_reports: bool,

    /// Backlog mode: hold the group back (do not join it) until every producer run announced on
    /// the control topic has finished, then drain the backlog and report the drain rate; stops
    /// as --until-complete does.
    #[arg(long, env = "KTA_HOLD_UNTIL_DONE")]
    pub hold_until_done: bool,

    /// With --hold-until-done: also hold until this many runs have reported since the consumer
    /// started (producers that start at different moments, or a topic with earlier runs).
    #[arg(long, env = "KTA_HOLD_RUNS", value_name = "N", requires = "hold_until_done",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub hold_runs: Option<u64>,

    /// Also write the report as one self-contained HTML page (charts, every origin, the JSON).
    #[arg(long, env = "KTA_HTML", value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Final report format on stdout.
    #[arg(long, short = 'o', env = "KTA_OUTPUT", value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Final report format on stdout.
    #[arg(long, short = 'o', env = "KTA_OUTPUT", value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// The original client's command line (`python3 -m charms.kafka.v0.client …`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Drop-in flags of the original client (no subcommand)")]
pub struct LegacyArgs {
    /// Run a producer.
    #[arg(long)]
    pub producer: bool,
    /// Run a consumer (until stopped).
    #[arg(long)]
    pub consumer: bool,
    /// Topic.
    #[arg(long = "topic", short = 't', default_value = "hot-topic", value_parser = parse_topic)]
    pub topic: String,
    /// Consumer group prefix [default: "<username>-"].
    #[arg(long = "consumer-group-prefix", short = 'c')]
    pub consumer_group_prefix: Option<String>,
    /// Events to produce.
    #[arg(long = "num-messages", short = 'n', default_value_t = 15)]
    pub num_messages: u64,
    /// Replication factor of a created topic.
    #[arg(long = "replication-factor", short = 'r', default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: i32,
    /// Partitions of a created topic.
    #[arg(long = "num-partitions", default_value_t = 5,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub num_partitions: i32,
    /// Origin stamped on events.
    #[arg(long = "origin")]
    pub origin: Option<String>,
    /// Not supported (the original's MongoDB sink).
    #[arg(long = "mongo-uri", hide = true)]
    pub mongo_uri: Option<String>,
    /// Not supported (the original's PostgreSQL source).
    #[arg(long = "pgsql-uri", hide = true)]
    pub pgsql_uri: Option<String>,
}

fn parse_rate(arg: &str) -> std::result::Result<f64, String> {
    let rate: f64 = arg
        .parse()
        .map_err(|_| format!("'{arg}' is not a number of events per second"))?;
    if rate.is_finite() && rate >= 0.0 {
        Ok(rate)
    } else {
        Err("the rate must be 0 (unlimited) or a positive number of events per second".into())
    }
}

fn parse_key(arg: &str) -> std::result::Result<KeyMode, String> {
    arg.parse()
}

/// The phases of `--steps`, as one value for clap.
#[derive(Debug, Clone, PartialEq)]
pub struct Steps(pub Vec<Phase>);

/// A rate of a phase: a finite number of events per second, above 0 (or 0 too if not
/// `positive`).
fn phase_rate(text: &str, what: &str, positive: bool) -> std::result::Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && (rate > 0.0 || (!positive && rate == 0.0)) => Ok(rate),
        _ if positive => Err(format!(
            "{what} '{text}' is not a positive number of events per second"
        )),
        _ => Err(format!(
            "{what} '{text}' is not a number of events per second (0 or more)"
        )),
    }
}

/// A phase's duration: longer than 0.
fn phase_duration(text: &str) -> std::result::Result<Duration, String> {
    parse_positive_duration(text.trim()).map_err(|e| format!("duration '{text}': {e}"))
}

fn parse_ramp(arg: &str) -> std::result::Result<Phase, String> {
    let usage = "give FROM:TO:DURATION, e.g. 100:5000:2m";
    let parts: Vec<&str> = arg.split(':').collect();
    let [from, to, duration] = parts[..] else {
        return Err(format!("'{arg}' is not FROM:TO:DURATION; {usage}"));
    };
    let phase = Phase {
        from: phase_rate(from, "FROM", false).map_err(|e| format!("{e}; {usage}"))?,
        to: phase_rate(to, "TO", false).map_err(|e| format!("{e}; {usage}"))?,
        duration: Some(phase_duration(duration).map_err(|e| format!("{e}; {usage}"))?),
    };
    if phase.from == 0.0 && phase.to == 0.0 {
        return Err(format!("a ramp from 0 to 0 sends nothing; {usage}"));
    }
    Ok(phase)
}

fn parse_steps(arg: &str) -> std::result::Result<Steps, String> {
    let usage = "give RATE@DURATION,..., e.g. 1000@30s,2000@30s";
    arg.split(',')
        .map(|step| {
            let (rate, duration) = step
                .split_once('@')
                .ok_or_else(|| format!("step '{step}' is not RATE@DURATION; {usage}"))?;
            let rate = phase_rate(rate, "rate", true).map_err(|e| format!("{e}; {usage}"))?;
            let duration = phase_duration(duration).map_err(|e| format!("{e}; {usage}"))?;
            Ok(Phase::steady(rate, Some(duration)))
        })
        .collect::<std::result::Result<Vec<_>, String>>()
        .map(Steps)
}

fn parse_transactional_id(arg: &str) -> std::result::Result<String, String> {
    match arg.trim().is_empty() {
        true => Err("give a non-empty id, the same for a producer and its restarts".into()),
        false => Ok(arg.to_owned()),
    }
}

fn parse_txn_events(arg: &str) -> std::result::Result<u64, String> {
    match arg.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("give a whole number of events per transaction, at least 1".into()),
    }
}

fn parse_abort_rate(arg: &str) -> std::result::Result<f64, String> {
    match arg.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err("give the share of transactions to abort, from 0 to 1 (e.g. 0.2)".into()),
    }
}

fn parse_clock_offset(arg: &str) -> std::result::Result<ClockOffset, String> {
    let (ahead, text) = match arg.strip_prefix('-') {
        Some(rest) => (false, rest),
        None => (true, arg),
    };
    humantime::parse_duration(text)
        .map(|by| ClockOffset { ahead, by })
        .map_err(|e| format!("{e}; give a duration such as 5s or -3s"))
}

fn parse_isolation(arg: &str) -> std::result::Result<Isolation, String> {
    arg.parse()
}

fn parse_compression(arg: &str) -> std::result::Result<Compression, String> {
    arg.parse()
}

fn parse_payload_bytes(arg: &str) -> std::result::Result<usize, String> {
    let max = crate::wire::event::MAX_PAYLOAD_BYTES;
    match arg.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "give a whole number of bytes from 1 to {max} (Kafka's default message.max.bytes is \
             1048588)"
        )),
    }
}

fn parse_positive_duration(arg: &str) -> std::result::Result<Duration, String> {
    match humantime::parse_duration(arg) {
        Ok(d) if d.is_zero() => Err("it must be longer than 0s (e.g. 30s)".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_expect(arg: &str) -> std::result::Result<u64, String> {
    match arg.parse::<u64>() {
        Ok(0) => Err(
            "0 would stop before reading anything; give at least 1, or leave \
                      --expect out"
                .into(),
        ),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{arg}' is not a whole number of events")),
    }
}

fn parse_topic(arg: &str) -> std::result::Result<String, String> {
    crate::kafka::topic::check_name(arg).map(|()| arg.to_owned())
}

fn parse_interval(arg: &str) -> std::result::Result<Duration, String> {
    match humantime::parse_duration(arg) {
        Ok(d) if d.is_zero() => Err("the interval must be longer than 0s".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// What to run, with everything resolved.
#[derive(Debug, Clone)]
pub enum Mode {
    /// A producer and its report format.
    Produce(ProduceOptions, OutputFormat),
    /// A consumer (its options carry the report format).
    Consume(ConsumeOptions),
    /// The fleet verdict.
    Verify(VerifyOptions),
    /// The mock-cluster demo.
    Demo(OutputFormat),
}

/// The whole invocation, resolved: how to connect and what to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Connection settings.
    pub settings: ConnectionSettings,
    /// What to run.
    pub mode: Mode,
    /// Where to serve the HTTP endpoint, if anywhere.
    pub http_addr: Option<std::net::SocketAddr>,
    /// Where to write the final report as an HTML page too (`verify`, `consume`).
    pub html: Option<PathBuf>,
}

/// The original client's flags given on the command line together with a subcommand: they would
/// be ignored, so this is refused (`None`: no such mix).
pub fn legacy_flag_beside_subcommand(matches: &clap::ArgMatches) -> Option<Error> {
    let (subcommand, _) = matches.subcommand()?;
    let command = Cli::command();
    let flag = command
        .get_arguments()
        .filter(|arg| !arg.is_global_set())
        .find(|arg| {
            matches.value_source(arg.get_id().as_str())
                == Some(clap::parser::ValueSource::CommandLine)
        })?;
    let name = flag
        .get_long()
        .map_or_else(|| flag.get_id().to_string(), |long| format!("--{long}"));
    Some(Error::Usage(format!(
        "{name} before the subcommand '{subcommand}' is one of the original client's flags, which \
         work only without a subcommand; give the subcommand's own options after it (see \
         `kafka-test-app {subcommand} --help`)"
    )))
}

impl Cli {
    /// Resolves defaults and the drop-in command line into a [`Plan`].
    pub fn plan(self) -> Result<Plan> {
        let legacy = self.command.is_none();
        let mut settings = self.connection.settings()?;
        if legacy && settings.security_protocol.is_none() {
            // The original's default.
            settings.security_protocol = Some(SecurityProtocol::SaslPlaintext);
        }
        let default_prefix = match &settings.username {
            Some(user) => format!("{user}-"),
            None => "kafka-test-app-".to_owned(),
        };
        let html = match &self.command {
            Some(Command::Consume(args)) => args.html.clone(),
            Some(Command::Verify(args)) => args.html.clone(),
            _ => None,
        };
        let mode = match self.command {
            Some(Command::Produce(args)) => {
                let output = args.output;
                Mode::Produce(args.options()?, output)
            }
            Some(Command::Consume(args)) => Mode::Consume(args.options(default_prefix)?),
            Some(Command::Verify(args)) => Mode::Verify(VerifyOptions {
                control_topic: control_topic(&args.topic, args.control_topic)?,
                topic: args.topic,
                against: args.against,
                group: args.group,
                output: args.output,
                isolation: args.isolation,
            }),
            Some(Command::Demo(args)) => Mode::Demo(args.output),
            None => legacy_mode(self.legacy, default_prefix)?,
        };
        Ok(Plan {
            settings,
            mode,
            http_addr: self.http_addr,
            html,
        })
    }
}

impl ConnectionArgs {
    /// The connection settings: the password read from its file, `-X` entries parsed.
    fn settings(self) -> Result<ConnectionSettings> {
        Ok(ConnectionSettings {
            bootstrap_servers: self.bootstrap_servers,
            security_protocol: self.security_protocol,
            sasl_mechanism: self.sasl_mechanism,
            username: self.username,
            password: match &self.password_file {
                Some(file) => Some(read_password_file(file)?),
                None => self.password,
            },
            ca_file: self.ca_file,
            cert_file: self.cert_file,
            key_file: self.key_file,
            // Parsed here, not by clap, whose error would echo a malformed entry (a secret, may be).
            overrides: self
                .overrides
                .iter()
                .map(|arg| {
                    parse_override(arg).map_err(|e| Error::Usage(format!("-X (KTA_X): {e}")))
                })
                .collect::<Result<Vec<Override>>>()?,
            connect_timeout: self.connect_timeout,
        })
    }
}

impl ProduceArgs {
    /// The producer's options, defaults resolved.
    fn options(mut self) -> Result<ProduceOptions> {
        let control_topic = match self.no_run_reports {
            true => None,
            false => Some(control_topic(&self.topic, self.control_topic.take())?),
        };
        self.check_transaction_flags()?;
        let phases = match (self.ramp.take(), self.steps.take()) {
            (Some(ramp), _) => vec![ramp],
            (None, Some(Steps(steps))) => steps,
            (None, None) => Vec::new(),
        };
        self.check_warmup(&phases)?;
        Ok(ProduceOptions {
            topic: TopicSpec {
                name: self.topic,
                partitions: self.partitions,
                replication_factor: self.replication_factor,
            },
            // The rate asked for at the start, for the report.
            rate: phases.first().map_or(self.rate, |p| p.from),
            num_messages: match (self.num_messages, self.duration) {
                (Some(0), _) => None,
                (None, _) if self.duration.is_some() || !phases.is_empty() => None,
                (Some(n), _) => Some(n),
                (None, _) => Some(1000),
            },
            duration: self.duration,
            origin: self.origin.unwrap_or_else(crate::produce::origin::detect),
            key: self.key,
            workload: Workload {
                payload_bytes: self.payload_bytes,
                compression: self.compression,
                phases,
                warmup: self.warmup,
                clock_offset: self.clock_offset.unwrap_or_default(),
                transactions: self.transactional_id.map(|id| Transactions {
                    id,
                    events: self.txn_events.unwrap_or(100),
                    abort_rate: self.abort_rate.unwrap_or(0.0),
                }),
            },
            flush_timeout: self.flush_timeout,
            report_interval: self.report_interval,
            control_topic,
        })
    }
}

impl ProduceArgs {
    /// Refuses the transaction flags without a transactional id (they would silently do nothing).
    fn check_transaction_flags(&self) -> Result<()> {
        if self.transactional_id.is_some() {
            return Ok(());
        }
        for (flag, given) in [
            ("--txn-events", self.txn_events.is_some()),
            ("--abort-rate", self.abort_rate.is_some()),
        ] {
            if given {
                return Err(Error::Usage(format!(
                    "{flag} applies to transactions; give --transactional-id ID as well"
                )));
            }
        }
        Ok(())
    }

    /// Refuses a warm-up as long as the run (of `phases`, or of --duration): no event would count
    /// for latency.
    fn check_warmup(&self, phases: &[Phase]) -> Result<()> {
        let length = match phases {
            [] => self.duration,
            phases => phases.iter().map(|p| p.duration).sum(),
        };
        match self.warmup.zip(length) {
            Some((warmup, length)) if warmup >= length => Err(Error::Usage(format!(
                "--warmup {} is not shorter than the run ({}): no event would count for \
                 latency; give a shorter --warmup",
                humantime::format_duration(warmup),
                humantime::format_duration(length)
            ))),
            _ => Ok(()),
        }
    }
}

impl ConsumeArgs {
    /// The consumer's options; the group prefix defaults to `default_prefix`.
    fn options(self, default_prefix: String) -> Result<ConsumeOptions> {
        Ok(ConsumeOptions {
            control_topic: match self.no_member_reports {
                true => None,
                false => Some(control_topic(&self.topic, self.control_topic)?),
            },
            // A drained backlog ends as --until-complete does, never on a count.
            until_complete: self.until_complete || self.hold_until_done,
            hold: self
                .hold_until_done
                .then_some(crate::consume::backlog::Hold {
                    runs: self.hold_runs,
                }),
            topic: self.topic,
            group_id: group_id(&self.consumer_group_prefix.unwrap_or(default_prefix)),
            expect: self.expect,
            idle_timeout: self.idle_timeout,
            report_interval: self.report_interval,
            output: self.output,
            isolation: self.isolation,
        })
    }
}

/// The password in `file`, without one trailing newline (`echo` adds one).
fn read_password_file(file: &std::path::Path) -> Result<Secret> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::Usage(format!(
            "cannot read the password file {}: {e}; check --password-file (KTA_PASSWORD_FILE)",
            file.display()
        ))
    })?;
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(Error::Usage(format!(
            "the password file {} is empty; check --password-file (KTA_PASSWORD_FILE)",
            file.display()
        )));
    }
    Ok(Secret::new(password))
}

/// The control topic: the one given, or `<topic>-kta-control` if that is a legal name.
fn control_topic(topic: &str, given: Option<String>) -> Result<String> {
    if let Some(given) = given {
        return Ok(given);
    }
    let default = default_control_topic(topic);
    crate::kafka::topic::check_name(&default).map_err(|reason| {
        Error::Usage(format!(
            "the default control topic of '{topic}' is not a legal name ({reason}); pass \
             --control-topic NAME"
        ))
    })?;
    Ok(default)
}

fn legacy_mode(args: LegacyArgs, default_prefix: String) -> Result<Mode> {
    for (flag, given) in [
        ("--mongo-uri", args.mongo_uri.is_some()),
        ("--pgsql-uri", args.pgsql_uri.is_some()),
    ] {
        if given {
            return Err(Error::Usage(format!(
                "{flag} is not supported: kafka-test-app verifies what it consumes itself \
                 (see `kafka-test-app consume --help`); remove {flag}"
            )));
        }
    }
    match (args.producer, args.consumer) {
        (true, false) => Ok(Mode::Produce(
            ProduceOptions {
                control_topic: Some(control_topic(&args.topic, None)?),
                topic: TopicSpec {
                    name: args.topic,
                    partitions: args.num_partitions,
                    replication_factor: args.replication_factor,
                },
                rate: 2.0,
                num_messages: (args.num_messages > 0).then_some(args.num_messages),
                duration: None,
                origin: args.origin.unwrap_or_else(crate::produce::origin::detect),
                key: KeyMode::None,
                workload: Workload::default(),
                flush_timeout: Duration::from_secs(10),
                report_interval: Duration::from_secs(10),
            },
            OutputFormat::Text,
        )),
        (false, true) => Ok(Mode::Consume(ConsumeOptions {
            control_topic: Some(control_topic(&args.topic, None)?),
            until_complete: false,
            topic: args.topic,
            group_id: group_id(&args.consumer_group_prefix.unwrap_or(default_prefix)),
            expect: None,
            idle_timeout: None,
            report_interval: Duration::from_secs(10),
            output: OutputFormat::Text,
            isolation: Isolation::default(),
            hold: None,
        })),
        (true, true) => Err(Error::Usage(
            "--producer and --consumer together are not supported; run one process of each"
                .to_owned(),
        )),
        (false, false) => Err(Error::Usage(
            "nothing to do: give a subcommand (produce, consume, demo) or the original's \
             --producer/--consumer; see --help"
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan> {
        let mut argv = vec!["kafka-test-app"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses").plan()
    }

    #[test]
    fn charm_producer_command_line() {
        let plan = plan(&[
            "--username",
            "U",
            "--password",
            "P",
            "--servers",
            "H:9092",
            "--topic",
            "T",
            "--producer",
            "--replication-factor",
            "1",
            "--num-partitions",
            "5",
            "--num-messages",
            "1000",
        ])
        .unwrap();
        assert_eq!(plan.settings.bootstrap_servers, "H:9092");
        assert_eq!(
            plan.settings.effective_protocol(),
            SecurityProtocol::SaslPlaintext
        );
        assert_eq!(plan.settings.username.as_deref(), Some("U"));
        let Mode::Produce(options, _) = plan.mode else {
            panic!("not a producer")
        };
        assert_eq!(options.topic.name, "T");
        assert_eq!(options.topic.partitions, 5);
        assert_eq!(options.num_messages, Some(1000));
        assert_eq!(options.rate, 2.0);
    }

    #[test]
    fn charm_consumer_command_line_runs_until_stopped() {
        let plan = plan(&[
            "--username",
            "U",
            "--password",
            "P",
            "--servers",
            "H",
            "--topic",
            "T",
            "--consumer",
            "--consumer-group-prefix",
            "G",
        ])
        .unwrap();
        let Mode::Consume(options) = plan.mode else {
            panic!("not a consumer")
        };
        assert_eq!(options.group_id, "G1");
        assert_eq!(options.expect, None);
        assert_eq!(options.idle_timeout, None);
    }

    #[test]
    fn legacy_defaults_are_the_originals() {
        let plan = plan(&["-u", "relation-9", "-p", "x", "-s", "H", "--producer"]).unwrap();
        let Mode::Produce(options, _) = plan.mode else {
            panic!()
        };
        assert_eq!(options.topic.name, "hot-topic");
        assert_eq!(options.num_messages, Some(15));
        assert_eq!(plan.settings.sasl_mechanism, SaslMechanism::ScramSha512);
        let consumer =
            super::tests::plan(&["-u", "relation-9", "-p", "x", "-s", "H", "--consumer"]).unwrap();
        let Mode::Consume(options) = consumer.mode else {
            panic!()
        };
        assert_eq!(options.group_id, "relation-9-1");
    }

    #[test]
    fn mongo_uri_is_refused_clearly() {
        let err = plan(&["--producer", "--mongo-uri", "mongodb://x"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--mongo-uri is not supported: kafka-test-app verifies what it consumes itself \
             (see `kafka-test-app consume --help`); remove --mongo-uri"
        );
        assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
    }

    #[test]
    fn nothing_to_do_is_a_usage_error() {
        assert!(plan(&[])
            .unwrap_err()
            .to_string()
            .starts_with("nothing to do"));
    }

    #[test]
    fn duration_without_count_means_no_count_limit() {
        let plan = plan(&[
            "produce",
            "--topic",
            "t",
            "--rate",
            "1000",
            "--duration",
            "10s",
        ])
        .unwrap();
        let Mode::Produce(options, _) = plan.mode else {
            panic!()
        };
        assert_eq!(options.num_messages, None);
        assert_eq!(options.duration, Some(Duration::from_secs(10)));
        assert_eq!(
            plan.settings.effective_protocol(),
            SecurityProtocol::Plaintext
        );
    }

    #[test]
    fn produce_defaults() {
        let plan = plan(&["produce", "-t", "t", "--origin", "me (1.2.3.4)"]).unwrap();
        let Mode::Produce(options, output) = plan.mode else {
            panic!()
        };
        assert_eq!(options.num_messages, Some(1000));
        assert_eq!(options.rate, 2.0);
        assert_eq!(options.topic.partitions, 5);
        assert_eq!(options.topic.replication_factor, 1);
        assert_eq!(options.origin, "me (1.2.3.4)");
        assert_eq!(output, OutputFormat::Text);
    }

    #[test]
    fn ramp_and_steps_become_phases_with_no_count_limit() {
        let plan = plan(&[
            "produce",
            "-t",
            "t",
            "--ramp",
            "100:5000:2m",
            "--warmup",
            "10s",
        ])
        .unwrap();
        let Mode::Produce(options, _) = plan.mode else {
            panic!()
        };
        assert_eq!(
            options.workload.phases,
            [Phase {
                from: 100.0,
                to: 5000.0,
                duration: Some(Duration::from_secs(120))
            }]
        );
        assert_eq!(options.num_messages, None);
        assert_eq!(options.rate, 100.0);
        assert_eq!(options.workload.warmup, Some(Duration::from_secs(10)));
        let plan = super::tests::plan(&[
            "produce",
            "-t",
            "t",
            "--steps",
            "1000@30s, 2000@1m",
            "-n",
            "50",
        ])
        .unwrap();
        let Mode::Produce(options, _) = plan.mode else {
            panic!()
        };
        assert_eq!(
            options.workload.phases,
            [
                Phase::steady(1000.0, Some(Duration::from_secs(30))),
                Phase::steady(2000.0, Some(Duration::from_secs(60)))
            ]
        );
        assert_eq!(options.num_messages, Some(50));
        let too_long = super::tests::plan(&[
            "produce",
            "-t",
            "t",
            "--steps",
            "5@2s,5@1s",
            "--warmup",
            "3s",
        ]);
        assert_eq!(
            too_long.unwrap_err().to_string(),
            "--warmup 3s is not shorter than the run (3s): no event would count for latency; \
             give a shorter --warmup"
        );
    }

    #[test]
    fn consumer_group_defaults_follow_the_username() {
        let with_user = plan(&["consume", "-t", "t", "-u", "relation-9", "-p", "x"]).unwrap();
        let Mode::Consume(options) = with_user.mode else {
            panic!()
        };
        assert_eq!(options.group_id, "relation-9-1");
        let anonymous = plan(&["consume", "-t", "t"]).unwrap();
        let Mode::Consume(options) = anonymous.mode else {
            panic!()
        };
        assert_eq!(options.group_id, "kafka-test-app-1");
    }

    #[test]
    fn bad_values_are_rejected_by_the_parser() {
        for args in [
            &["kafka-test-app", "produce", "-t", "t", "--rate", "-1"][..],
            &["kafka-test-app", "produce", "-t", "t", "--rate", "fast"],
            &["kafka-test-app", "produce", "-t", "t", "--partitions", "0"],
            &[
                "kafka-test-app",
                "produce",
                "-t",
                "t",
                "--duration",
                "forever",
            ],
            &[
                "kafka-test-app",
                "consume",
                "-t",
                "t",
                "--report-interval",
                "0s",
            ],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
        // -X is checked when planning, so that clap does not echo a malformed entry.
        let cli = Cli::try_parse_from(["kafka-test-app", "produce", "-t", "t", "-X", "nokey"]);
        assert!(cli.unwrap().plan().is_err());
    }

    #[test]
    fn hold_until_done_drains_until_complete_and_hold_runs_needs_it() {
        let Mode::Consume(options) = plan(&[
            "consume",
            "-t",
            "t",
            "--hold-until-done",
            "--hold-runs",
            "3",
        ])
        .unwrap()
        .mode
        else {
            panic!("a consumer");
        };
        assert!(
            options.until_complete,
            "a drain ends on the control topic's word"
        );
        assert_eq!(
            options.hold,
            Some(crate::consume::backlog::Hold { runs: Some(3) })
        );
        let Mode::Consume(plain) = plan(&["consume", "-t", "t"]).unwrap().mode else {
            panic!("a consumer");
        };
        assert_eq!(plain.hold, None);
        for args in [
            &["kafka-test-app", "consume", "-t", "t", "--hold-runs", "2"][..],
            &[
                "kafka-test-app",
                "consume",
                "-t",
                "t",
                "--hold-until-done",
                "--hold-runs",
                "0",
            ],
            &[
                "kafka-test-app",
                "consume",
                "-t",
                "t",
                "--hold-until-done",
                "--no-member-reports",
            ],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn password_env_value_is_never_shown_in_help() {
        let command = <Cli as clap::CommandFactory>::command();
        let password = command
            .get_arguments()
            .find(|a| a.get_id() == "password")
            .unwrap();
        assert!(password.is_hide_env_values_set());
        assert_eq!(
            password.get_env(),
            Some(std::ffi::OsStr::new("KTA_PASSWORD"))
        );
    }
}
