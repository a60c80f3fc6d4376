//! The verifying consumer: joins the group, reads from the earliest offset, tallies every event
//! and commits only what it has processed.

use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::client_events::{ClientContext, ClientEvents};
use crate::error::{Error, Result};
use crate::event::python_timestamp;
use crate::kafka_config::{client_config, ConnectionSettings};
use crate::report::{origin_table, ConsumeReport, OutputFormat};
use crate::status::{Status, PUBLISH_EVERY};
use crate::tally::{Tally, RUN_HEADER};
use crate::topic::partition_count;

/// How long one poll of the consumer may block.
const POLL: Duration = Duration::from_millis(100);
/// How long closing (final commit, leaving the group) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to look for a topic that does not exist yet.
const TOPIC_RETRY: Duration = Duration::from_millis(500);

/// What a consumer run does.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Topic to read.
    pub topic: String,
    /// Consumer group id (`<prefix>1`).
    pub group_id: String,
    /// Stop once this many valid events were consumed.
    pub expect: Option<u64>,
    /// Stop when nothing new arrived for this long (also bounds the wait for the topic).
    pub idle_timeout: Option<Duration>,
    /// How often to print the count-by-origin table.
    pub report_interval: Duration,
    /// Where the periodic table goes: stdout for text, stderr when stdout carries JSON.
    pub output: OutputFormat,
}

/// The consumer group id the original uses: the prefix followed by `1`.
pub fn group_id(prefix: &str) -> String {
    format!("{prefix}1")
}

/// Runs a consumer until `--expect`, `--idle-timeout` or `shutdown`; returns the final report and
/// publishes the running one to `status` about once a second.
///
/// Must be called from a blocking thread of a tokio runtime (`handle`).
pub fn consume(
    handle: &Handle,
    settings: &ConnectionSettings,
    options: &ConsumeOptions,
    status: &Status,
    shutdown: &CancellationToken,
) -> Result<ConsumeReport> {
    let start = Instant::now();
    let mut config = client_config(settings)?;
    config
        .set("group.id", &options.group_id)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        // Offsets are stored by us after an event is tallied, and only then auto-committed.
        .set("enable.auto.offset.store", "false")
        // End-of-partition events tell when the consumer has caught up with the topic.
        .set("enable.partition.eof", "true");
    let events = ClientEvents::new();
    let consumer: BaseConsumer<ClientContext> = config
        .create_with_context(ClientContext::new(events.clone()))
        .map_err(|e| Error::kafka("cannot create the consumer", e))?;

    let mut tally = Tally::new();
    if let Some(partitions) =
        wait_for_topic(handle, &consumer, &events, settings, options, shutdown)?
    {
        consumer
            .subscribe(&[&options.topic])
            .map_err(|e| Error::kafka("cannot subscribe", e))?;
        tracing::info!(topic = %options.topic, group = %options.group_id, "consuming");
        status.set_running(true);
        let read = read(
            &consumer, &events, settings, options, partitions, status, shutdown, &mut tally,
        );
        status.set_running(false);
        read?;
    }
    let report = tally.report(options.expect, start.elapsed().as_secs_f64());
    status.publish_consume(report.clone(), tally.latency_buckets().clone());
    close(consumer);
    Ok(report)
}

/// Commits what was processed and leaves the group, waiting at most [`CLOSE_TIMEOUT`]: with the
/// cluster gone, librdkafka would otherwise wait for the group coordinator for a whole session
/// timeout (45 s), past Kubernetes' grace period.
fn close(consumer: BaseConsumer<ClientContext>) {
    if let Err(e) = consumer.close_queue() {
        tracing::warn!("cannot close the consumer: {e}");
        return;
    }
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    while !consumer.closed() {
        if Instant::now() >= deadline {
            tracing::warn!(
                "could not commit and leave the group within {} (is the cluster reachable?); \
                 events read since the last auto-commit will be read again by this group",
                humantime::format_duration(CLOSE_TIMEOUT)
            );
            // Its destructor would wait for the coordinator again, without bound; the process
            // is about to report and exit.
            std::mem::forget(consumer);
            return;
        }
        let _ = consumer.poll(Duration::from_millis(100));
    }
}

/// Waits until the topic exists; returns its partition count, or `None` when shut down first.
fn wait_for_topic(
    handle: &Handle,
    consumer: &BaseConsumer<ClientContext>,
    events: &ClientEvents,
    settings: &ConnectionSettings,
    options: &ConsumeOptions,
    shutdown: &CancellationToken,
) -> Result<Option<usize>> {
    let start = Instant::now();
    let mut connected = false;
    let mut said_waiting = false;
    loop {
        // Polling serves librdkafka's error events (authentication, TLS) before the subscription;
        // a zero timeout would serve only one event (a statistics report, say).
        let _ = consumer.poll(POLL);
        events.check(settings)?;
        if shutdown.is_cancelled() {
            return Ok(None);
        }
        match partition_count(consumer.client(), &options.topic, Duration::from_secs(1)) {
            Some(partitions) if partitions > 0 => return Ok(Some(partitions)),
            Some(_) => {
                connected = true;
                if !said_waiting {
                    tracing::info!(
                        topic = %options.topic,
                        "topic does not exist yet; waiting for a producer to create it"
                    );
                    said_waiting = true;
                }
                if let Some(limit) = options.idle_timeout {
                    if start.elapsed() >= limit {
                        return Err(Error::TopicMissing {
                            topic: options.topic.clone(),
                            waited: limit,
                        });
                    }
                }
            }
            None if !connected && start.elapsed() >= settings.connect_timeout => {
                let _ = consumer.poll(POLL);
                events.check(settings)?;
                return Err(events.unreachable(settings));
            }
            None => {}
        }
        // Wait for the next look, or for shutdown.
        let _ = handle
            .block_on(async { tokio::time::timeout(TOPIC_RETRY, shutdown.cancelled()).await });
    }
}

/// The poll loop (`partitions`: the topic's partition count): tallies events, stores their offsets, prints the periodic table.
#[allow(clippy::too_many_arguments)]
fn read(
    consumer: &BaseConsumer<ClientContext>,
    events: &ClientEvents,
    settings: &ConnectionSettings,
    options: &ConsumeOptions,
    partitions: usize,
    status: &Status,
    shutdown: &CancellationToken,
    tally: &mut Tally,
) -> Result<()> {
    let start = Instant::now();
    let mut next_publish = Instant::now();
    let mut last_activity = Instant::now();
    let mut next_report = Instant::now() + options.report_interval;
    let mut batch = 0u64;
    let mut at_end = std::collections::BTreeSet::new();
    let mut caught_up = false;
    loop {
        if shutdown.is_cancelled() {
            tracing::info!("stopping: signal received");
            return Ok(());
        }
        if options.expect.is_some_and(|n| tally.consumed() >= n) {
            return Ok(());
        }
        if let Some(idle) = options.idle_timeout {
            if last_activity.elapsed() >= idle {
                tracing::info!(
                    "stopping: nothing new for {}",
                    humantime::format_duration(idle)
                );
                return Ok(());
            }
        }
        match consumer.poll(POLL) {
            None => {}
            Some(Ok(message)) => {
                let now = python_timestamp(SystemTime::now());
                if tally.consumed() + tally.malformed() == 0 {
                    tracing::info!(
                        partition = message.partition(),
                        offset = message.offset(),
                        "first record received"
                    );
                }
                tally.record(
                    message.payload(),
                    run_id(&message),
                    message.partition(),
                    now,
                );
                if at_end.remove(&message.partition()) {
                    caught_up = false;
                }
                if let Err(e) = consumer.store_offset_from_message(&message) {
                    tracing::warn!("cannot store offset: {e}");
                }
                last_activity = Instant::now();
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
                let assigned = consumer.assignment().map_or(0, |a| a.count());
                if !caught_up && assigned > 0 && at_end.len() >= assigned {
                    caught_up = true;
                    tracing::info!(
                        consumed = tally.consumed(),
                        malformed = tally.malformed(),
                        "caught up: every assigned partition read to its end"
                    );
                }
            }
            Some(Err(e)) => {
                // The client context has already logged it; only a fatal one ends the run.
                events.check(settings)?;
                tracing::debug!("consumer error: {e}");
            }
        }
        let now = Instant::now();
        if now >= next_publish {
            next_publish = now + PUBLISH_EVERY;
            events.check(settings)?;
            status.set_cluster_up(events.cluster_up());
            let assigned = consumer.assignment().map_or(0, |a| a.count());
            if assigned > 0 && assigned < partitions {
                tally.set_partial();
            }
            let report = tally.report(options.expect, start.elapsed().as_secs_f64());
            status.publish_consume(report, tally.latency_buckets().clone());
        }
        if now >= next_report {
            next_report += options.report_interval;
            if tally.consumed() > 0 {
                print_batch(batch, tally, options.output);
                batch += 1;
            }
        }
    }
}

/// The run id a record carries in its [`RUN_HEADER`] header, if any.
pub fn run_id<'a>(message: &'a BorrowedMessage<'_>) -> Option<&'a [u8]> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|header| header.key == RUN_HEADER)
        .and_then(|header| header.value)
}

/// Prints the running count by origin, like one Spark console batch.
fn print_batch(batch: u64, tally: &Tally, output: OutputFormat) {
    let text = format!(
        "-------------------------------------------\nBatch: {batch}\n-------------------------------------------\n{}",
        origin_table(tally.counts())
    );
    match output {
        OutputFormat::Text => print!("{text}"),
        OutputFormat::Json => eprint!("{text}"),
    }
}
