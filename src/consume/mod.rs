//! The verifying consumer: joins the group, reads from the earliest offset, tallies every event
//! and commits only what it has processed.

pub mod member;

use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};

use crate::error::{Error, Result};
use crate::kafka::config::Isolation;
use crate::kafka::events::ClientContext;
use crate::kafka::session::Session;
use crate::kafka::topic::partition_count;
use crate::live::progress::{self, Progress};
use crate::live::status::{Status, PUBLISH_EVERY};
use crate::report::{origin_table, OutputFormat};
use crate::tally::Reports;
use crate::tally::Tally;
use crate::verdict::judge::{self, ConsumeReport, Ends, View};
use crate::wire::control::RunState;
use crate::wire::event::python_timestamp;
use crate::wire::run_header_and_marks;
use crate::wire::series::Series;
use member::{ControlLink, Offsets};

/// How long one poll of the consumer may block.
const POLL: Duration = Duration::from_millis(100);
/// How long stopping may take in all, from the decision to stop to the report: reading where
/// the partitions end, the final member report, the final commit and leaving the group. With the
/// cluster gone or frozen, each step gives up within its share.
pub const STOP_WITHIN: Duration = Duration::from_secs(10);
/// How long without an assignment before saying the consumer is waiting for one.
const ASSIGNMENT_PATIENCE: Duration = Duration::from_secs(5);
/// Of [`STOP_WITHIN`], how long reading where the partitions end may take.
const ENDS_TIMEOUT: Duration = Duration::from_secs(4);
/// Of [`STOP_WITHIN`], how long the final member report may take to be delivered.
const MEMBER_REPORT_TIMEOUT: Duration = Duration::from_secs(3);
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
    /// The control topic for member reports and run reports (`None`: neither).
    pub control_topic: Option<String>,
    /// Stop once every announced producer run is finished and fully consumed.
    pub until_complete: bool,
    /// Committed records only, or aborted transactions' too.
    pub isolation: Isolation,
}

/// The consumer group id the original uses: the prefix followed by `1`.
pub fn group_id(prefix: &str) -> String {
    format!("{prefix}1")
}

/// Runs a consumer until `--expect`, `--idle-timeout` or the session's shutdown; returns the final report and
/// publishes the running one to `status` about once a second.
///
/// Must be called from a blocking thread of the session's tokio runtime.
pub fn consume(
    session: &Session,
    options: &ConsumeOptions,
    status: &Status,
) -> Result<ConsumeReport> {
    let start = Instant::now();
    let consumer: BaseConsumer<ClientContext> = session.client(
        "consumer",
        &[
            ("group.id", &options.group_id),
            ("isolation.level", options.isolation.as_str()),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "true"),
            // Offsets are stored by us after an event is tallied, and only then auto-committed.
            ("enable.auto.offset.store", "false"),
            // End-of-partition events tell when the consumer has caught up with the topic.
            ("enable.partition.eof", "true"),
        ],
    )?;

    let link = match &options.control_topic {
        Some(topic) => Some(ControlLink::new(
            session,
            topic,
            &options.topic,
            &options.group_id,
        )?),
        None => None,
    };
    let mut reading = Reading {
        consumer: &consumer,
        session,
        options,
        status,
        partitions: 0,
        tally: Tally::new(),
        offsets: Offsets::new(),
        view: View {
            group: options.group_id.clone(),
            read_uncommitted: options.isolation == Isolation::ReadUncommitted,
            ..View::default()
        },
        said_waiting: false,
        last_polled: Vec::new(),
        link,
        start,
        progress: Progress::detect(),
        consumed_per_s: Series::new(python_timestamp(SystemTime::now())),
    };
    if let Some(partitions) = wait_for_topic(session, &consumer, options)? {
        consumer
            .subscribe(&[&options.topic])
            .map_err(|e| Error::kafka("cannot subscribe", e))?;
        tracing::info!(topic = %options.topic, group = %options.group_id, "consuming");
        reading.partitions = partitions;
        status.set_running(true);
        let read = reading.read();
        status.set_running(false);
        read?;
    }
    let stop_by = Instant::now() + STOP_WITHIN;
    let report = reading.finish(stop_by);
    close(consumer, stop_by);
    Ok(report)
}

/// One consumer's reading of the topic.
struct Reading<'a> {
    consumer: &'a BaseConsumer<ClientContext>,
    /// The run's connection: its errors end the reading.
    session: &'a Session,
    options: &'a ConsumeOptions,
    status: &'a Status,
    /// The topic's partition count.
    partitions: usize,
    tally: Tally,
    /// Offsets consumed, for the member reports.
    offsets: Offsets,
    /// What this consumer could see, for its verdict.
    view: View,
    /// The wait for an assignment was logged.
    said_waiting: bool,
    /// The last offset polled per partition (index = partition), with the rebalance count when
    /// it was polled.
    last_polled: Vec<Option<(u64, i64)>>,
    link: Option<ControlLink>,
    start: Instant,
    progress: Progress,
    /// Events consumed over time, sampled at every publish: for the member reports and the
    /// report's picture.
    consumed_per_s: Series,
}

impl Reading<'_> {
    /// The poll loop: tallies events, stores their offsets, publishes the status and the member
    /// reports, prints the periodic table; returns when a stop condition is met.
    fn read(&mut self) -> Result<()> {
        let options = self.options;
        let mut next_publish = Instant::now();
        let mut last_activity = Instant::now();
        let mut next_report = Instant::now() + options.report_interval;
        let mut batch = 0u64;
        let mut at_end = std::collections::BTreeSet::new();
        let mut caught_up = false;
        let mut said_caught_up = false;
        loop {
            if self.session.is_cancelled() {
                tracing::info!("stopping: signal received");
                return Ok(());
            }
            if options.expect.is_some_and(|n| self.tally.consumed() >= n) {
                self.view.at_expect = true;
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
            match self.consumer.poll(POLL) {
                None => {}
                Some(Ok(message)) => {
                    self.record(&message);
                    if at_end.remove(&message.partition()) {
                        caught_up = false;
                    }
                    last_activity = Instant::now();
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    at_end.insert(partition);
                    let assigned = self.consumer.assignment().map_or(0, |a| a.count());
                    if !caught_up && assigned > 0 && at_end.len() >= assigned {
                        caught_up = true;
                        // Said once; a consumer keeping up with a producer catches up again
                        // with every event.
                        if !said_caught_up {
                            said_caught_up = true;
                            tracing::info!(
                                consumed = self.tally.consumed(),
                                malformed = self.tally.malformed(),
                                "caught up: every assigned partition read to its end"
                            );
                        } else {
                            tracing::debug!(consumed = self.tally.consumed(), "caught up again");
                        }
                    }
                }
                Some(Err(e)) => {
                    // The client context has already logged it; only a fatal one ends the run.
                    self.session.check()?;
                    tracing::debug!("consumer error: {e}");
                }
            }
            let now = Instant::now();
            if now >= next_publish {
                next_publish = now + PUBLISH_EVERY;
                if self.publish()? {
                    tracing::info!("stopping: every announced producer run is fully consumed");
                    return Ok(());
                }
            }
            if now >= next_report {
                next_report += options.report_interval;
                if self.tally.consumed() > 0 {
                    self.progress.clear();
                    print_batch(batch, &self.tally, options.output);
                    batch += 1;
                }
            }
        }
    }

    /// Tallies one record (unless its offset was read before: a redelivery) and stores its
    /// offset for the next commit.
    fn record(&mut self, message: &BorrowedMessage<'_>) {
        self.check_poll_order(message.partition(), message.offset());
        let now = python_timestamp(SystemTime::now());
        if self.tally.consumed() + self.tally.malformed() == 0 {
            tracing::info!(
                partition = message.partition(),
                offset = message.offset(),
                "first record received"
            );
        }
        let new = u64::try_from(message.offset()).map_or(true, |offset| {
            self.offsets
                .entry(message.partition())
                .or_default()
                .insert(offset)
        });
        self.view.assigned = true;
        if new {
            let (header, marks) = run_header_and_marks(message);
            self.tally
                .record_marked(message.payload(), header, marks, message.partition(), now);
        } else {
            self.view.redelivered += 1;
        }
        if let Err(e) = self.consumer.store_offset_from_message(message) {
            tracing::warn!("cannot store offset: {e}");
        }
    }

    /// About once a second: stops on a fatal connection error, publishes the status and the
    /// member report; returns whether `--until-complete` is satisfied.
    fn publish(&mut self) -> Result<bool> {
        self.session.check()?;
        self.status
            .set_cluster_up(self.session.events().cluster_up());
        self.note_assignment();
        if !self.view.assigned && !self.said_waiting && self.start.elapsed() >= ASSIGNMENT_PATIENCE
        {
            self.said_waiting = true;
            tracing::info!(
                group = %self.options.group_id,
                "no partitions assigned yet: waiting for the group coordinator (after a member \
                 was killed it waits out that member's session, 45 s by default)"
            );
        }
        if let Some(link) = &mut self.link {
            link.refresh_runs();
        }
        self.consumed_per_s
            .sample(python_timestamp(SystemTime::now()), self.tally.consumed());
        // While reading, the end is still ahead: loss is judged only in the final report.
        let report = self.report(&self.view);
        let partial = report.partial_assignment;
        let (of, eta) = match self.options.expect {
            Some(expect) => (
                format!("/{expect}"),
                progress::eta(
                    expect.saturating_sub(report.consumed),
                    report.consumed as f64 / report.elapsed_s.max(1e-3),
                ),
            ),
            None => (String::new(), String::new()),
        };
        self.progress.show(&format!(
            "consumed {}{of}  origins {}  malformed {}  verdict so far: {:?}{eta}",
            report.consumed,
            report.origins.len(),
            report.malformed,
            report.verdict
        ));
        self.status.publish_consume(
            report,
            self.tally.latency_buckets().clone(),
            &self.options.topic,
        );
        let Some(link) = &mut self.link else {
            return Ok(false);
        };
        link.write(
            RunState::Running,
            &self.tally,
            &self.offsets,
            &self.consumed_per_s,
        );
        if !self.options.until_complete {
            return Ok(false);
        }
        // A member with part of the partitions cannot see a run complete on its own.
        Ok(!partial && link.complete(&self.tally))
    }

    /// Compares a record's offset with the last one polled from its partition since the latest
    /// rebalance: behind it is a nonmonotonic poll, past the next one a skip.
    fn check_poll_order(&mut self, partition: i32, offset: i64) {
        let generation = self.session.events().rebalances();
        let slot = usize::try_from(partition).unwrap_or(0);
        if self.last_polled.len() <= slot {
            self.last_polled.resize(slot + 1, None);
        }
        let last = self.last_polled[slot].replace((generation, offset));
        match last {
            Some((g, previous)) if g == generation && offset <= previous => {
                self.view.nonmonotonic_polls += 1;
            }
            Some((g, previous)) if g == generation && offset > previous + 1 => {
                self.view.skipped_offsets += u64::try_from(offset - previous - 1).unwrap_or(0);
            }
            _ => {}
        }
    }

    /// Notes whether partitions are assigned now, and whether only some of them.
    fn note_assignment(&mut self) {
        let assigned = self.consumer.assignment().map_or(0, |a| a.count());
        self.view.assigned |= assigned > 0;
        self.view.partial |= assigned > 0 && assigned < self.partitions;
    }

    /// The report for what this consumer saw, judged with the run reports read so far.
    fn report(&self, view: &View) -> ConsumeReport {
        let none = Reports::default();
        let reports = self.link.as_ref().map_or(&none, ControlLink::runs);
        let mut report = judge::consume(
            &self.tally,
            reports,
            view,
            self.options.expect,
            self.start.elapsed().as_secs_f64(),
        );
        report.consumed_per_s = self.consumed_per_s.clone();
        report
    }

    /// Where this consumer stopped against where its partitions start and end: the partitions
    /// it resumed on, and how far behind their ends it is ([`Ends::Unknown`] when the cluster
    /// does not answer within [`ENDS_TIMEOUT`]). Run reports read before this are covered by those ends.
    fn ends(&mut self, stop_by: Instant) {
        let topic = &self.options.topic;
        let deadline = (Instant::now() + ENDS_TIMEOUT).min(stop_by);
        let left = || deadline.saturating_duration_since(Instant::now());
        let assignment = self.consumer.assignment().unwrap_or_default();
        let positions = self.consumer.position().unwrap_or_default();
        // The committed offsets are asked for only when a partition gave no record (the group
        // coordinator of a young cluster can take seconds to answer).
        let mut committed: Option<Option<rdkafka::TopicPartitionList>> = None;
        let mut behind = std::collections::BTreeMap::new();
        for element in assignment.elements_for_topic(topic) {
            let partition = element.partition();
            let (low, high) = match self.consumer.fetch_watermarks(topic, partition, left()) {
                Ok(marks) => marks,
                Err(error) => {
                    tracing::warn!(partition, "cannot list where the partition ends: {error}");
                    self.view.ends = Ends::Unknown;
                    return;
                }
            };
            let offset_of = |list: &rdkafka::TopicPartitionList| {
                list.find_partition(topic, partition)
                    .and_then(|p| p.offset().to_raw())
                    .filter(|&o| o >= 0)
            };
            let first_read = self
                .offsets
                .get(&partition)
                .and_then(|read| read.start())
                .and_then(|o| i64::try_from(o).ok());
            let resumed_at = first_read.or_else(|| {
                committed
                    .get_or_insert_with(|| self.consumer.committed(left()).ok())
                    .as_ref()
                    .and_then(offset_of)
            });
            if resumed_at.is_some_and(|at| at > low) {
                self.view.resumed.push(partition);
            }
            // The furthest this member is known to be: its fetch position, the record after the
            // last it read, or where it resumed (a partition handed back in a rebalance has no
            // position until its first fetch).
            let read_to = self
                .offsets
                .get(&partition)
                .filter(|read| !read.is_empty())
                .and_then(|read| i64::try_from(read.end()).ok());
            let at = [offset_of(&positions), read_to, resumed_at]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(low);
            behind.insert(partition, u64::try_from(high - at.max(low)).unwrap_or(0));
        }
        self.view.from_zero = self.offsets.values().all(|read| read.start() == Some(0));
        self.view.ends = Ends::Behind(behind);
    }

    /// The final report; the last member report goes out too.
    fn finish(mut self, stop_by: Instant) -> ConsumeReport {
        self.progress.clear();
        if let Some(link) = &mut self.link {
            link.refresh_runs();
        }
        self.note_assignment();
        if self.view.assigned {
            self.ends(stop_by);
        }
        self.consumed_per_s
            .sample(python_timestamp(SystemTime::now()), self.tally.consumed());
        let report = self.report(&self.view);
        self.status.publish_consume(
            report.clone(),
            self.tally.latency_buckets().clone(),
            &self.options.topic,
        );
        if let Some(link) = &mut self.link {
            let left = stop_by.saturating_duration_since(Instant::now());
            link.finish(
                &self.tally,
                &self.offsets,
                &self.consumed_per_s,
                MEMBER_REPORT_TIMEOUT.min(left),
            );
        }
        report
    }
}

/// Commits what was processed and leaves the group, waiting at most until `stop_by` (and at
/// least a second): with the cluster gone, librdkafka would otherwise wait for the group
/// coordinator for a whole session timeout (45 s), past Kubernetes' grace period.
fn close(consumer: BaseConsumer<ClientContext>, stop_by: Instant) {
    if let Err(e) = consumer.close_queue() {
        tracing::warn!("cannot close the consumer: {e}");
        return;
    }
    let started = Instant::now();
    let deadline = stop_by.max(started + Duration::from_secs(1));
    while !consumer.closed() {
        if Instant::now() >= deadline {
            tracing::warn!(
                "could not commit and leave the group within {} (is the cluster reachable?); \
                 events read since the last auto-commit will be read again by this group",
                humantime::format_duration(Duration::from_secs(
                    deadline.saturating_duration_since(started).as_secs()
                ))
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
    session: &Session,
    consumer: &BaseConsumer<ClientContext>,
    options: &ConsumeOptions,
) -> Result<Option<usize>> {
    let start = Instant::now();
    let mut connected = false;
    let mut said_waiting = false;
    loop {
        // Polling serves librdkafka's error events (authentication, TLS) before the subscription;
        // a zero timeout would serve only one event (a statistics report, say).
        let _ = consumer.poll(POLL);
        session.check()?;
        if session.is_cancelled() {
            return Ok(None);
        }
        match partition_count(consumer.client(), &options.topic, Duration::from_secs(1)) {
            Some(partitions) if partitions > 0 => return Ok(Some(partitions)),
            Some(_) => {
                connected = true;
                if !said_waiting {
                    match &session.settings().username {
                        // Kafka hides a topic from a user without DESCRIBE on it.
                        Some(user) => tracing::info!(
                            topic = %options.topic,
                            "topic does not exist yet, or user '{user}' may not DESCRIBE it; \
                             waiting for a producer to create it"
                        ),
                        None => tracing::info!(
                            topic = %options.topic,
                            "topic does not exist yet; waiting for a producer to create it"
                        ),
                    }
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
            None if !connected && start.elapsed() >= session.connect_timeout() => {
                let _ = consumer.poll(POLL);
                session.check()?;
                return Err(session.unreachable());
            }
            None => {}
        }
        // Wait for the next look, or for shutdown.
        session.pause(TOPIC_RETRY);
    }
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
