//! `kafka-test-app demo`: the whole tool with no broker at all.
//!
//! librdkafka's in-process mock cluster (three brokers) stands in for Kafka; three producers with
//! distinct origins and one verifying consumer run against it exactly as they would against a real
//! cluster; the consumer's table and verdict are printed, then `verify`'s fleet verdict.

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::consume::{consume, ConsumeOptions};
use crate::error::{Error, ExitCode, Result};
use crate::kafka::config::ConnectionSettings;
use crate::kafka::session::Session;
use crate::kafka::topic::TopicSpec;
use crate::live::status::Status;
use crate::produce::{produce, KeyMode, ProduceOptions, Workload};
use crate::report::{self, OutputFormat};
use crate::verdict::Verdict;
use crate::verify::{verify, VerifyOptions};
use crate::wire::control::default_control_topic;

const TOPIC: &str = "kafka-test-app-demo";
/// Events per producer: different counts so that the table shows each origin's own.
const EVENTS: [u64; 3] = [1000, 2000, 3000];

/// Runs the demo; prints the producers' reports on stderr, and the consumer's report and the
/// fleet verdict of `verify` on stdout (one JSON object with `produce`, `consume` and `verify` for
/// `--output json`).
pub fn run(
    handle: &Handle,
    output: OutputFormat,
    status: &Status,
    shutdown: &CancellationToken,
) -> Result<ExitCode> {
    let cluster: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(3).map_err(|e| Error::kafka("cannot start the mock cluster", e))?;
    // The mock cluster implements no CreateTopics: make the topics through its own API.
    for (topic, partitions) in [(TOPIC.to_owned(), 5), (default_control_topic(TOPIC), 1)] {
        cluster
            .create_topic(&topic, partitions, 3)
            .map_err(|e| Error::kafka("cannot create the demo topics", e))?;
    }
    let settings = ConnectionSettings {
        bootstrap_servers: cluster.bootstrap_servers(),
        ..ConnectionSettings::default()
    };
    // One session per run (each producer, the consumer, verify), as each would be a process.
    let session = || Session::new(&settings, handle.clone(), shutdown.clone());
    eprintln!(
        "demo: mock Kafka cluster with 3 brokers at {}; 3 producers, 1 consumer, topic {TOPIC}",
        settings.bootstrap_servers
    );

    let producers = std::thread::scope(|scope| {
        let running: Vec<_> = EVENTS
            .iter()
            .enumerate()
            .map(|(i, &count)| {
                let options = ProduceOptions {
                    topic: TopicSpec {
                        name: TOPIC.to_owned(),
                        partitions: 5,
                        replication_factor: 3,
                    },
                    rate: 0.0,
                    num_messages: Some(count),
                    duration: None,
                    origin: format!("kafka-test-app-{i} (demo)"),
                    key: KeyMode::None,
                    workload: Workload::default(),
                    flush_timeout: Duration::from_secs(10),
                    report_interval: Duration::from_secs(10),
                    control_topic: Some(default_control_topic(TOPIC)),
                };
                let session = &session;
                // Each producer has its own session and status; the endpoint shows the
                // consumer's.
                scope.spawn(move || produce(&session()?, &options, &Status::default()))
            })
            .collect();
        running
            .into_iter()
            .map(|p| p.join().expect("producer thread does not panic"))
            .collect::<Result<Vec<_>>>()
    })?;
    for report in &producers {
        eprint!("{}", report::produce_text(report));
    }

    let options = ConsumeOptions {
        control_topic: Some(default_control_topic(TOPIC)),
        until_complete: false,
        topic: TOPIC.to_owned(),
        group_id: crate::consume::group_id("kafka-test-app-demo-"),
        expect: Some(EVENTS.iter().sum()),
        idle_timeout: Some(Duration::from_secs(30)),
        report_interval: Duration::from_secs(1),
        output,
        isolation: Default::default(),
        hold: None,
    };
    let consumed = consume(&session()?, &options, status)?;
    let fleet = verify(
        &session()?,
        &VerifyOptions {
            topic: TOPIC.to_owned(),
            control_topic: default_control_topic(TOPIC),
            against: None,
            group: Some(options.group_id.clone()),
            output,
            isolation: Default::default(),
        },
    )?;
    match output {
        OutputFormat::Text => {
            print!("{}", report::consume_text(&consumed));
            println!(
                "\nkafka-test-app verify --topic {TOPIC} --group {}:",
                options.group_id
            );
            print!("{}", crate::verify::text(&fleet));
        }
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"produce": producers, "consume": consumed, "verify": fleet})
        ),
    }
    let all_pass = producers.iter().all(|p| p.verdict == Verdict::Pass)
        && consumed.verdict == Verdict::Pass
        && fleet.verdict == Verdict::Pass;
    Ok(if all_pass {
        ExitCode::Pass
    } else {
        ExitCode::Fail
    })
}
