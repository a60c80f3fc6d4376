//! The producer: byte-compatible events at an exact rate, idempotent and acknowledged.
//!
//! Sending runs on one blocking thread around a librdkafka `BaseProducer`: the event is encoded
//! into a reused buffer and handed over (librdkafka copies it), nothing is awaited per event, and
//! delivery reports are served by polling the same producer while waiting for the next event's
//! due time. A message counts as acked only when its delivery report says so.

pub mod key;
pub mod origin;
pub mod rate;
pub mod send;
pub mod stall;

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use rdkafka::client::ClientContext as RdClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig,
};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;

use crate::error::{Error, Result};
use crate::kafka::config::ConnectionSettings;
use crate::kafka::session::Session;
use crate::kafka::topic::{ensure_topic, TopicSpec};
use crate::live::progress::{self, Progress};
use crate::live::status::{Status, PUBLISH_EVERY};
use crate::report::{
    FinalReport, Guarantee, PhaseReport, ProduceReport, TxnReport, WorkloadReport,
};
use crate::tally::latency::LatencySummary;
use crate::tally::ranges::RangeSet;
use crate::verdict::Verdict;
use crate::wire::control::{to_pairs, ControlRecord, RunReport, RunState};
use crate::wire::event::{self, python_timestamp, EventEncoder};
use crate::wire::series::{encode_histogram, RunSeries};
use crate::wire::{RUN_HEADER, WARMUP_HEADER};
use key::{Keyer, SplitMix};
use rate::{Phase, Schedule};
use send::Sender;
use stall::{Change, Stall};

pub use key::KeyMode;

/// Compression of the producer's batches (librdkafka's `compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Uncompressed, like the original.
    #[default]
    None,
    /// gzip (zlib).
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl std::str::FromStr for Compression {
    type Err = String;

    /// librdkafka's name, in any case.
    fn from_str(arg: &str) -> std::result::Result<Self, String> {
        [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(arg))
        .ok_or_else(|| format!("'{arg}' is not a codec; give none, gzip, snappy, lz4 or zstd"))
    }
}

impl Compression {
    /// librdkafka's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// The shape of the traffic beyond rate and count: what load tests vary.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Pad every value to this many bytes (`None`: the original's bytes).
    pub payload_bytes: Option<usize>,
    /// Batch compression.
    pub compression: Compression,
    /// The paced phases (`--ramp`, `--steps`); empty: `--rate` for `--duration`.
    pub phases: Vec<Phase>,
    /// The first part of the run whose events are left out of the latency statistics.
    pub warmup: Option<Duration>,
    /// Send in transactions (`None`: no transactions, the original's way).
    pub transactions: Option<Transactions>,
    /// A test hook (`--clock-offset`): stamp events as a clock this far ahead (or, negative,
    /// behind) would.
    pub clock_offset: ClockOffset,
}

/// How far a producer's clock is shifted from the host's (the `--clock-offset` test hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockOffset {
    /// Ahead (`true`) or behind.
    pub ahead: bool,
    /// By how much.
    pub by: Duration,
}

impl ClockOffset {
    /// The time of the shifted clock at `now`.
    fn shift(self, now: SystemTime) -> SystemTime {
        match self.ahead {
            true => now + self.by,
            false => now.checked_sub(self.by).unwrap_or(now),
        }
    }
}

/// Transactions of a run (`--transactional-id`, `--txn-events`, `--abort-rate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Transactions {
    /// librdkafka's `transactional.id`: a producer started with the same id fences this one
    /// and aborts its open transaction.
    pub id: String,
    /// Events per transaction.
    pub events: u64,
    /// The share of transactions aborted instead of committed, drawn at random.
    pub abort_rate: f64,
}

/// What a producer run does.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// The topic and how to create it.
    pub topic: TopicSpec,
    /// Events per second; 0 means as fast as the broker takes them.
    pub rate: f64,
    /// Stop after this many events (`None`: no limit).
    pub num_messages: Option<u64>,
    /// Stop after this long (`None`: no limit).
    pub duration: Option<Duration>,
    /// The `origin` stamped on every event.
    pub origin: String,
    /// Record key.
    pub key: KeyMode,
    /// Payload size and compression.
    pub workload: Workload,
    /// How long to wait for outstanding acknowledgements at the end.
    pub flush_timeout: Duration,
    /// How often to log progress.
    pub report_interval: Duration,
    /// The control topic for run reports (`None`: no run reports).
    pub control_topic: Option<String>,
}

/// Serve delivery reports after this many sends (besides while waiting for the schedule).
const SERVE_EVERY: u64 = 64;

/// Serves delivery reports until nothing is in flight, for at most `timeout`; returns whether
/// everything was acknowledged or failed in time. (rdkafka's `flush` waits in whole 100 ms
/// slices, which would add up to 100 ms to the end of every run.)
fn drain<C: ProducerContext>(producer: &BaseProducer<C>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while producer.in_flight_count() > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        producer.poll(Duration::from_millis(1));
    }
    true
}

/// A header name as librdkafka takes it (NUL-terminated); header names are constants without NULs.
fn header_name(name: &str) -> std::ffi::CString {
    std::ffi::CString::new(name).expect("header names have no NUL")
}

/// Marks the delivery reports of control records (run reports), which are not events.
const CONTROL: usize = usize::MAX;

/// Set in an event's delivery opaque when it is a warm-up event: its acknowledgement is counted
/// but left out of the latency histogram. (Scheduled times never reach this bit: 2^62 µs.)
const WARMUP: usize = 1 << 62;

/// What the delivery reports said so far.
struct Deliveries {
    /// `n` the broker acknowledged.
    acked: RangeSet,
    /// `n` whose delivery failed.
    failed: RangeSet,
    /// Ack latency from each event's scheduled time, microseconds.
    latency_us: Histogram<u64>,
    last_failure: Option<String>,
    /// The highest offset acknowledged per partition (index = partition): a log that later
    /// ends below it was truncated.
    acked_high: Vec<Option<i64>>,
    /// `n` of committed transactions (transactional runs).
    committed: RangeSet,
    /// `n` of aborted transactions (transactional runs).
    aborted: RangeSet,
}

impl Deliveries {
    /// What the run may call acknowledged and failed: for a transactional run, acknowledged
    /// means committed, and an aborted transaction's events are neither.
    fn settled(&self, transactional: bool) -> (RangeSet, RangeSet) {
        match transactional {
            false => (self.acked.clone(), self.failed.clone()),
            true => (
                self.committed.difference(&self.failed),
                self.failed.difference(&self.aborted),
            ),
        }
    }
}

/// librdkafka context of the producer: connection events and delivery reports.
struct DeliveryContext {
    /// The run's connection: its events are fed from here, its settings word the errors.
    session: Session,
    /// Why run reports are off, once the control topic refused one.
    control_failure: Mutex<Option<String>>,
    /// How the latest run report's delivery ended: `Some(true)` acknowledged.
    last_control: Mutex<Option<bool>>,
    /// The control topic, to word that.
    control_topic: Option<String>,
    start: Instant,
    deliveries: Mutex<Deliveries>,
}

impl RdClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.session.events().on_error(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        self.session.events().on_stats(&statistics);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.session.events().on_log(level, facility, message);
    }
}

impl ProducerContext for DeliveryContext {
    /// The event's scheduled send time in microseconds after `start` (with [`WARMUP`] set for a
    /// warm-up event), or [`CONTROL`].
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        if opaque == CONTROL {
            *self.last_control.lock().expect("lock") = Some(result.is_ok());
            if let Err((error, _)) = result {
                // A denial turns run reports off for the run; anything else (a broker
                // outage) only loses this report, and the next one may arrive.
                if error
                    .rdkafka_error_code()
                    .is_some_and(crate::kafka::topic::is_denied)
                {
                    let mut failure = self.control_failure.lock().expect("lock");
                    if failure.is_none() {
                        let topic = self.control_topic.as_deref().unwrap_or("-");
                        let off =
                            reports_off(topic, self.session.settings(), &error.to_string(), true);
                        tracing::warn!("{off}");
                        *failure = Some(off);
                    }
                } else {
                    tracing::debug!("a run report was not delivered: {error}");
                }
            }
            return;
        }
        let (message, error) = match result {
            Ok(message) => (message, None),
            Err((error, message)) => (message, Some(error)),
        };
        // The delivery report carries the value, which ends with the event's n.
        let Some(n) = message.payload().and_then(event::sequence_number) else {
            return;
        };
        let mut deliveries = self.deliveries.lock().expect("lock");
        match error {
            None => {
                deliveries.acked.insert(n);
                if let Ok(slot) = usize::try_from(message.partition()) {
                    if deliveries.acked_high.len() <= slot {
                        deliveries.acked_high.resize(slot + 1, None);
                    }
                    let high = &mut deliveries.acked_high[slot];
                    *high = (*high).max(Some(message.offset()));
                }
                if opaque & WARMUP == 0 {
                    let now_us = self.start.elapsed().as_micros() as u64;
                    let latency = now_us.saturating_sub(opaque as u64);
                    deliveries.latency_us.saturating_record(latency);
                }
            }
            Some(error) => {
                if deliveries.failed.is_empty() {
                    tracing::warn!("delivery failed: {error}");
                }
                deliveries.failed.insert(n);
                deliveries.last_failure = Some(error.to_string());
            }
        }
    }
}

/// A transaction error as the run's error: fenced (a newer producer with the same
/// transactional id took over) is named as such.
fn fenced_or(error: KafkaError) -> Error {
    let fenced = error.rdkafka_error_code().is_some_and(|code| {
        matches!(
            code,
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
        )
    });
    match fenced {
        true => Error::kafka(
            "fenced: another producer started with the same --transactional-id",
            error,
        ),
        false => Error::kafka("a transaction could not end", error),
    }
}

/// Why run reports are off and how to turn them on, in one line for the log and the report.
/// `denied`: the cluster refused this user (an ACL) rather than failing.
fn reports_off(
    control_topic: &str,
    settings: &ConnectionSettings,
    reason: &str,
    denied: bool,
) -> String {
    if !denied {
        return format!(
            "run reports are off: the control topic '{control_topic}' could not be made ready \
             ({reason}); `verify` cannot tell what this run had acknowledged. Check that the \
             cluster has enough brokers in sync, or pass --no-run-reports"
        );
    }
    let who = settings
        .username
        .as_deref()
        .map_or_else(|| "this client".to_owned(), |user| format!("user '{user}'"));
    format!(
        "run reports are off: {who} cannot write the control topic '{control_topic}' ({reason}); \
         `verify` cannot tell what this run had acknowledged. Grant WRITE, DESCRIBE and CREATE on \
         '{control_topic}' (on Charmed Kafka: request a topic prefix that covers it), or pass \
         --no-run-reports"
    )
}

/// Runs a producer until its limit, its duration or the session's shutdown; returns the final
/// report and publishes progress to `status` about once a second.
///
/// Must be called from a blocking thread of the session's tokio runtime.
pub fn produce(
    session: &Session,
    options: &ProduceOptions,
    status: &Status,
) -> Result<ProduceReport> {
    let settings = session.settings();
    let mut config = session.config();
    if options.rate > 0.0 && 1.0 / options.rate > 3600.0 {
        let every = Duration::try_from_secs_f64(1.0 / options.rate).map_or_else(
            |_| "never".to_owned(),
            |d| humantime::format_duration(d).to_string(),
        );
        tracing::warn!(
            "--rate {} (events per second) sends one event every {every}",
            options.rate
        );
    }
    // The guarantee this tool is for and the chosen compression, unless the user chose otherwise
    // with -X (the report says what was in force). `compression.codec` is librdkafka's alias.
    for (keys, value) in [
        (&["enable.idempotence"][..], "true"),
        (&["acks"], "all"),
        (
            &["compression.type", "compression.codec"],
            options.workload.compression.as_str(),
        ),
    ] {
        if !settings
            .overrides
            .iter()
            .any(|o| keys.contains(&o.key.as_str()))
        {
            config.set(keys[0], value);
        }
    }
    let guarantee = Guarantee {
        acks: config.get("acks").unwrap_or("all").to_owned(),
        idempotence: config.get("enable.idempotence") == Some("true"),
    };
    let workload = WorkloadReport {
        payload_bytes: options.workload.payload_bytes,
        key: options.key.to_string(),
        compression: config
            .get("compression.type")
            .or_else(|| config.get("compression.codec"))
            .unwrap_or("none")
            .to_owned(),
    };
    let context = || DeliveryContext {
        session: session.clone(),
        control_failure: Mutex::new(None),
        last_control: Mutex::new(None),
        control_topic: options.control_topic.clone(),
        start: Instant::now(),
        deliveries: Mutex::new(Deliveries {
            acked: RangeSet::new(),
            failed: RangeSet::new(),
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("static bounds are valid"),
            last_failure: None,
            acked_high: Vec::new(),
            committed: RangeSet::new(),
            aborted: RangeSet::new(),
        }),
    };
    // Run reports go through a producer of their own when events are sent in transactions
    // (a transactional producer writes nothing outside a transaction, and a report must not
    // vanish with an aborted one).
    let control_config = config.clone();
    if let Some(transactions) = &options.workload.transactions {
        config.set("transactional.id", &transactions.id);
    }
    let producer: BaseProducer<DeliveryContext> =
        session.client_with("producer", &config, context())?;
    let control_producer: Option<BaseProducer<DeliveryContext>> = match options
        .workload
        .transactions
    {
        Some(_) => Some(session.client_with("run report producer", &control_config, context())?),
        None => None,
    };
    let control_producer = control_producer.as_ref().unwrap_or(&producer);
    if options.workload.transactions.is_some() {
        // Fences any earlier producer with this id and aborts its open transaction.
        producer
            .init_transactions(session.connect_timeout())
            .map_err(|e| Error::kafka("cannot start transactions", e))?;
    }

    let proceed = ensure_topic(session, producer.client(), &options.topic, || {
        producer.poll(Duration::ZERO)
    })?;
    let control = match (&options.control_topic, proceed) {
        (Some(topic), true) => {
            let spec = TopicSpec {
                name: topic.clone(),
                partitions: 1,
                replication_factor: options.topic.replication_factor,
            };
            match ensure_topic(session, producer.client(), &spec, || {
                producer.poll(Duration::ZERO)
            }) {
                Ok(_) => Some(topic.as_str()),
                Err(e @ (Error::Authentication { .. } | Error::Tls { .. })) => return Err(e),
                Err(e) => {
                    let denied = matches!(e, Error::TopicCreation { denied: true, .. });
                    let off = reports_off(topic, settings, &e.to_string(), denied);
                    tracing::warn!("{off}");
                    *control_producer
                        .context()
                        .control_failure
                        .lock()
                        .expect("lock") = Some(off);
                    None
                }
            }
        }
        _ => None,
    };
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut run = Run {
        producer: &producer,
        control_producer,
        txn: options
            .workload
            .transactions
            .clone()
            .map(|spec| TxnState::new(spec, event::run_key(&run_id))),
        session,
        options,
        status,
        control,
        guarantee,
        workload,
        final_report: FinalReport::Off,
        reports_off: None,
        run_id,
        started: python_timestamp(SystemTime::now()),
        start: Instant::now(),
        sent: 0,
        warmup_sent: 0,
        phases: Vec::new(),
        progress: Progress::detect(),
        last_send: None,
        limit: None,
        end: None,
        series: RunSeries::new(python_timestamp(SystemTime::now())),
        stall: Stall::new(),
        next_publish: Instant::now(),
        next_log: Instant::now() + options.report_interval,
    };
    if proceed {
        tracing::info!(
            topic = %options.topic.name,
            origin = %options.origin,
            rate = options.rate,
            "producing"
        );
        status.set_running(true);
        let sent = run.send_all();
        status.set_running(false);
        sent?;
    }
    run.finish()
}

/// One phase of a run as it went: the plan and the sends.
struct PhaseTally {
    /// The phase as planned.
    phase: Phase,
    /// When it begins, after the start of sending.
    start: Duration,
    /// Events due in it that were sent.
    sent: u64,
    /// When its first event was handed over (never before it was due).
    first_send: Option<Instant>,
    /// When its latest event was handed over.
    last_send: Option<Instant>,
}

impl PhaseTally {
    fn new(phase: Phase, start: Duration) -> Self {
        PhaseTally {
            phase,
            start,
            sent: 0,
            first_send: None,
            last_send: None,
        }
    }

    /// The report of it; times are seconds after `run_start`.
    fn report(&self, run_start: Instant) -> PhaseReport {
        let since = |at: Option<Instant>| at.map(|at| at.duration_since(run_start).as_secs_f64());
        PhaseReport {
            from_rate: self.phase.from,
            to_rate: self.phase.to,
            start_s: self.start.as_secs_f64(),
            duration_s: self.phase.duration.map(|d| d.as_secs_f64()),
            sent: self.sent,
            first_send_s: since(self.first_send),
            last_send_s: since(self.last_send),
        }
    }
}

/// The transactions of a run as they go.
struct TxnState {
    /// What was asked for: id, size, abort rate.
    spec: Transactions,
    /// The first `n` of the open transaction, if one is open.
    open: Option<u64>,
    /// Draws which transactions abort.
    draws: SplitMix,
    /// Transactions committed so far, for the report.
    committed: u64,
    /// Transactions aborted so far, for the report.
    aborted: u64,
}

impl TxnState {
    /// The transactions of the run `run_key` (which seeds the draws).
    fn new(spec: Transactions, run_key: event::RunKey) -> Self {
        TxnState {
            draws: SplitMix::new(run_key),
            spec,
            open: None,
            committed: 0,
            aborted: 0,
        }
    }
}

/// One producer run: the state the send loop, the waits and the reports share.
struct Run<'a> {
    producer: &'a BaseProducer<DeliveryContext>,
    /// Where run reports are written: `producer` itself, or one of their own for a
    /// transactional run.
    control_producer: &'a BaseProducer<DeliveryContext>,
    /// Transactions, if the run sends in them.
    txn: Option<TxnState>,
    /// The run's connection: its errors end the run, its shutdown stops sending.
    session: &'a Session,
    options: &'a ProduceOptions,
    status: &'a Status,
    /// Where run reports go, if anywhere.
    control: Option<&'a str>,
    /// The delivery guarantee in force, for the report.
    guarantee: Guarantee,
    /// The payload, key and compression in force, for the report.
    workload: WorkloadReport,
    /// What became of the final run report, for the report.
    final_report: FinalReport,
    /// Why run reports are off, when the control topic refused them.
    reports_off: Option<String>,
    /// This run's id, sent in every event's header and in the run reports.
    run_id: String,
    /// Wall-clock start, for the run reports.
    started: f64,
    /// When sending started; the schedule counts from here.
    start: Instant,
    /// Events handed to librdkafka.
    sent: u64,
    /// Of them, warm-up events (`--warmup`).
    warmup_sent: u64,
    /// Each phase of the schedule and what was sent in it.
    phases: Vec<PhaseTally>,
    /// When the latest event was handed over.
    last_send: Option<Instant>,
    /// Events this run will send at most (`--num-messages`, or a paced `--duration`'s), for the
    /// progress line's ETA.
    limit: Option<u64>,
    /// When an unpaced `--duration` run ends, for the ETA.
    end: Option<Instant>,
    /// Sent, acknowledged and failed over time, for the run reports.
    series: RunSeries,
    /// Whether acknowledgements stopped while events are pending (warned, and /readyz 503).
    stall: Stall,
    progress: Progress,
    next_publish: Instant,
    next_log: Instant,
}

impl Run<'_> {
    /// Sends events until a limit is reached or the run is told to stop.
    fn send_all(&mut self) -> Result<()> {
        let options = self.options;
        let producer = self.producer;
        self.start = Instant::now();
        let phases = match &options.workload.phases[..] {
            [] if options.rate > 0.0 => vec![Phase::steady(options.rate, options.duration)],
            [] => Vec::new(),
            phases => phases.to_vec(),
        };
        let schedule = match phases.is_empty() {
            true => Schedule::new(self.start, 0.0),
            false => Schedule::phased(self.start, &phases),
        };
        let paced = schedule.is_paced();
        self.phases = match paced {
            true => phases
                .iter()
                .enumerate()
                .map(|(i, phase)| PhaseTally::new(*phase, schedule.phase_start(i)))
                .collect(),
            false => vec![PhaseTally::new(
                Phase {
                    from: 0.0,
                    to: 0.0,
                    duration: options.duration,
                },
                Duration::ZERO,
            )],
        };
        let warmup = options.workload.warmup.unwrap_or(Duration::ZERO);
        let mut limit = options.num_messages.unwrap_or(u64::MAX);
        if let Some(total) = schedule.events() {
            limit = limit.min(total);
        }
        let end = options.duration.map(|d| self.start + d);
        (self.limit, self.end) = ((limit < u64::MAX).then_some(limit), end);
        // Delivery reports measure from the context's clock, which started before the topic check.
        let base_us = self
            .start
            .duration_since(producer.context().start)
            .as_micros() as u64;
        let mut encoder = match options.workload.payload_bytes {
            Some(bytes) => EventEncoder::with_payload_bytes(&options.origin, bytes),
            None => EventEncoder::new(&options.origin),
        };
        let run_id = self.run_id.clone();
        // Every event's _id names this run (see event::derived_id).
        let run_key = event::run_key(&run_id);
        let mut keyer = Keyer::new(options.key, &options.origin, run_key);
        let sender = Sender::new(producer, &options.topic.name)
            .map_err(|e| Error::kafka("cannot send to the topic", e))?;
        // Every event carries the run's header; warm-up events the warm-up mark too.
        let (run_name, warmup_name) = (header_name(RUN_HEADER), header_name(WARMUP_HEADER));
        let headers = [
            (run_name.as_c_str(), run_id.as_bytes()),
            (warmup_name.as_c_str(), &b"1"[..]),
        ];
        self.write_run_report(RunState::Running);

        while self.sent < limit && !self.session.is_cancelled() {
            let now = Instant::now();
            if now >= self.next_publish {
                self.publish(now)?;
            }
            let scheduled = if paced {
                let due = schedule.due(self.sent);
                if due > now {
                    self.wait_until(due)?;
                    continue;
                }
                due - self.start
            } else if end.is_some_and(|end| now >= end) {
                break;
            } else {
                now - self.start
            };
            // Warm-up: the events due (or, unpaced, sent) in the first --warmup of the run.
            let warm = scheduled < warmup;
            let mut opaque = (base_us + scheduled.as_micros() as u64) as usize;
            let stamp = options.workload.clock_offset.shift(SystemTime::now());
            let payload = encoder.encode_at(stamp, run_key, self.sent);
            if warm {
                opaque |= WARMUP;
                self.warmup_sent += 1;
            }
            let headers = &headers[..1 + usize::from(warm)];
            let phase = &mut self.phases[schedule.phase_of(self.sent)];
            phase.sent += 1;
            phase.first_send.get_or_insert(now);
            phase.last_send = Some(now);
            if let Some(txn) = &mut self.txn {
                if txn.open.is_none() {
                    producer
                        .begin_transaction()
                        .map_err(|e| Error::kafka("cannot begin a transaction", e))?;
                    txn.open = Some(self.sent);
                }
            }
            let key = keyer.key(self.sent);
            loop {
                match sender.send(payload, key, headers, opaque) {
                    Ok(()) => break,
                    Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                        // librdkafka's queue is full: serve delivery reports until there is room.
                        producer.poll(Duration::from_millis(10));
                        let now = Instant::now();
                        if now >= self.next_publish {
                            self.publish(now)?;
                        }
                    }
                    Err(error) => {
                        let mut deliveries = producer.context().deliveries.lock().expect("lock");
                        deliveries.failed.insert(self.sent);
                        deliveries.last_failure = Some(error.to_string());
                        tracing::warn!("cannot enqueue event {}: {error}", self.sent);
                        break;
                    }
                }
            }
            self.sent += 1;
            self.last_send = Some(now);
            // rdkafka's poll(ZERO) serves one event (one produce response's delivery reports):
            // often enough that acknowledgements are counted when they arrive, rarely enough to
            // cost nothing at full speed.
            if self.sent % SERVE_EVERY == 0 {
                producer.poll(Duration::ZERO);
            }
            if let Some(txn) = &self.txn {
                if txn
                    .open
                    .is_some_and(|first| self.sent - first >= txn.spec.events)
                {
                    self.end_transaction()?;
                }
            }
        }
        // A run that ends (its limit, its duration, a signal) ends its transaction too.
        self.end_transaction()
    }

    /// Commits the open transaction, or aborts it (at the abort rate, or when the commit
    /// fails in a way that needs it); a fatal error (fenced by a newer producer with the same
    /// transactional id) ends the run.
    fn end_transaction(&mut self) -> Result<()> {
        let producer = self.producer;
        let timeout = self.options.flush_timeout;
        let Some(txn) = &mut self.txn else {
            return Ok(());
        };
        let Some(first) = txn.open.take() else {
            return Ok(());
        };
        let range = first..self.sent;
        let mut abort = txn.draws.next_f64() < txn.spec.abort_rate;
        if !abort {
            match producer.commit_transaction(timeout) {
                Ok(()) => {
                    txn.committed += 1;
                    let mut deliveries = producer.context().deliveries.lock().expect("lock");
                    deliveries.committed.insert_range(range.clone());
                }
                Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                    tracing::warn!("a transaction could not commit and is aborted: {e}");
                    abort = true;
                }
                Err(e) => return Err(fenced_or(e)),
            }
        }
        if abort {
            // Serve the deliveries first, so that aborting purges nothing in flight (a purged
            // event would count as failed, when it is only aborted).
            drain(producer, timeout);
            producer.abort_transaction(timeout).map_err(fenced_or)?;
            txn.aborted += 1;
            let mut deliveries = producer.context().deliveries.lock().expect("lock");
            deliveries.aborted.insert_range(range);
        }
        Ok(())
    }

    /// Waits until `due`, serving delivery reports meanwhile; returns early on shutdown.
    fn wait_until(&mut self, due: Instant) -> Result<()> {
        loop {
            let now = Instant::now();
            if now >= due || self.session.is_cancelled() {
                return Ok(());
            }
            if now >= self.next_publish {
                self.publish(now)?;
            }
            let remaining = due - now;
            if remaining > Duration::from_millis(2) {
                // librdkafka's poll timeout has millisecond resolution; keep a margin.
                let slice = (remaining - Duration::from_millis(1)).min(Duration::from_millis(100));
                self.producer.poll(slice);
            } else {
                // Due within 2 ms (every interval at 500/s and more): serve what arrived, then
                // sleep the rest.
                self.producer.poll(Duration::ZERO);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
    }

    /// About once a second: stops on a fatal connection error, publishes the status, and logs
    /// progress every `--report-interval`.
    fn publish(&mut self, now: Instant) -> Result<()> {
        self.next_publish = now + PUBLISH_EVERY;
        self.session.check()?;
        if !std::ptr::eq(self.control_producer, self.producer) {
            // The run reports' own producer: serve its delivery reports.
            self.control_producer.poll(Duration::ZERO);
        }
        self.status
            .set_cluster_up(self.session.events().cluster_up());
        let settled = {
            let deliveries = self.producer.context().deliveries.lock().expect("lock");
            deliveries.acked.len() + deliveries.failed.len()
        };
        // Observed before the report is made, so the report carries this second's gap.
        match self.stall.observe(now, self.sent, settled) {
            Change::Began { pending, since } => {
                let last = self
                    .producer
                    .context()
                    .deliveries
                    .lock()
                    .expect("lock")
                    .last_failure
                    .clone();
                tracing::warn!(
                    "no acknowledgement for {} while {pending} events are pending: the cluster is \
                     not taking writes{}",
                    humantime::format_duration(Duration::from_secs(since.as_secs())),
                    last.map_or_else(String::new, |e| format!(" (last failure: {e})"))
                );
            }
            Change::Ended { after } => tracing::info!(
                "acknowledgements resumed after {}",
                humantime::format_duration(Duration::from_secs(after.as_secs()))
            ),
            Change::None => {}
        }
        self.status.set_stalled(self.stall.is_stalled());
        self.sample_series();
        let report = self.report();
        if self.progress.on_terminal() {
            let eta = match (self.limit, self.end) {
                (Some(limit), _) if self.options.rate > 0.0 => {
                    progress::eta(limit.saturating_sub(self.sent), self.options.rate)
                }
                (_, Some(end)) => progress::eta_in(end.saturating_duration_since(now)),
                (Some(limit), None) => progress::eta(limit.saturating_sub(self.sent), report.rate),
                (None, None) => String::new(),
            };
            let of = self.limit.map_or_else(String::new, |l| format!("/{l}"));
            self.progress.show(&format!(
                "sent {}{of}  acked {}  failed {}  {:.1} events/s{eta}",
                report.sent, report.acked, report.failed, report.rate
            ));
        } else if now >= self.next_log {
            self.next_log = now + self.options.report_interval;
            tracing::info!(
                sent = report.sent,
                acked = report.acked,
                failed = report.failed,
                rate = format!("{:.1}", report.rate),
                "progress"
            );
        }
        self.status.publish_produce(report);
        self.write_run_report(RunState::Running);
        Ok(())
    }

    /// Writes this run's report to the control topic (delivered in the background).
    fn write_run_report(&mut self, state: RunState) {
        let Some(topic) = self.control else { return };
        let report = {
            let deliveries = self.producer.context().deliveries.lock().expect("lock");
            let now = python_timestamp(SystemTime::now());
            let (acked, failed) = deliveries.settled(self.txn.is_some());
            self.series
                .sample(now, self.sent, acked.len(), failed.len());
            ControlRecord::ProducerRun(RunReport {
                run: self.run_id.clone(),
                origin: self.options.origin.clone(),
                topic: self.options.topic.name.clone(),
                state,
                sent: self.sent,
                acked: to_pairs(&acked),
                failed: to_pairs(&failed),
                aborted: to_pairs(&deliveries.aborted),
                acked_high: deliveries
                    .acked_high
                    .iter()
                    .enumerate()
                    .filter_map(|(partition, high)| Some([partition as i64, (*high)?]))
                    .collect(),
                target_rate: self.options.rate,
                series: self.series.clone(),
                ack_latency_us: encode_histogram(&deliveries.latency_us),
                started: self.started,
                updated: now,
            })
        };
        let value = report.to_json();
        let record = BaseRecord::with_opaque_to(topic, CONTROL)
            .key(&self.run_id)
            .payload(&value);
        if let Err((error, _)) = self.control_producer.send(record) {
            tracing::warn!("cannot write a run report to the control topic: {error}");
        }
    }

    /// Samples the counts over time (the run reports' and the report's series).
    fn sample_series(&mut self) {
        let (acked, failed) = {
            let deliveries = self.producer.context().deliveries.lock().expect("lock");
            (deliveries.acked.len(), deliveries.failed.len())
        };
        let now = python_timestamp(SystemTime::now());
        self.series.sample(now, self.sent, acked, failed);
    }

    /// The report as of now.
    fn report(&self) -> ProduceReport {
        let deliveries = self.producer.context().deliveries.lock().expect("lock");
        let elapsed_s = self.start.elapsed().as_secs_f64();
        let (acked, failed) = deliveries.settled(self.txn.is_some());
        let (acked, failed) = (acked.len(), failed.len());
        ProduceReport {
            run: self.run_id.clone(),
            sent: self.sent,
            acked,
            failed,
            elapsed_s,
            rate: self.send_rate(),
            acked_per_s: if elapsed_s > 0.0 {
                acked as f64 / elapsed_s
            } else {
                0.0
            },
            target_rate: self.options.rate,
            topic: self.options.topic.name.clone(),
            origin: self.options.origin.clone(),
            ack_latency_ms: LatencySummary::of(&deliveries.latency_us),
            ack_latency_us: Some(deliveries.latency_us.clone()),
            series: self.series.clone(),
            guarantee: self.guarantee.clone(),
            workload: self.workload.clone(),
            warmup_events: self.warmup_sent,
            transactions: self.txn.as_ref().map(|txn| TxnReport {
                committed: txn.committed,
                aborted: txn.aborted,
                committed_events: deliveries.committed.len(),
                aborted_events: deliveries.aborted.len(),
            }),
            phases: self.phases.iter().map(|p| p.report(self.start)).collect(),
            final_run_report: self.final_report,
            run_reports_off: self.reports_off.clone(),
            longest_ack_gap_s: self.stall.longest_s(),
            verdict: if failed == 0 {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
        }
    }

    /// Events per second over the sending: from the first event's send to the last one's, which
    /// for a paced run is exactly the rate its schedule achieved.
    fn send_rate(&self) -> f64 {
        let span = self
            .last_send
            .map_or(0.0, |last| last.duration_since(self.start).as_secs_f64());
        if self.sent >= 2 && span > 0.0 {
            (self.sent - 1) as f64 / span
        } else {
            0.0
        }
    }

    /// Writes the final run report and waits for its acknowledgement until `left()` runs out,
    /// writing it again (at most three times) when a delivery fails before then.
    fn deliver_final_report(&mut self, left: impl Fn() -> Duration) -> FinalReport {
        let producer = self.control_producer;
        for _ in 0..3 {
            *producer.context().last_control.lock().expect("lock") = None;
            self.write_run_report(RunState::Finished);
            let drained = drain(producer, left());
            let outcome = *producer.context().last_control.lock().expect("lock");
            match outcome {
                Some(true) if drained => return FinalReport::Delivered,
                Some(false) if !left().is_zero() => continue,
                _ => break,
            }
        }
        tracing::warn!(
            "the final run report was not acknowledged within --flush-timeout; `verify` will \
             show this run as not finished"
        );
        producer.purge(PurgeConfig::default().queue().inflight());
        FinalReport::NotDelivered
    }

    /// Waits (bounded) for outstanding acknowledgements, fails what is still unconfirmed, and
    /// builds the final report. The whole of it, the final run report included, takes at most
    /// `--flush-timeout`.
    fn finish(mut self) -> Result<ProduceReport> {
        let producer = self.producer;
        let flush_timeout = self.options.flush_timeout;
        let deadline = Instant::now() + flush_timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        // Time kept for the final run report: a quarter of the bound, at most 2 s.
        let reserve = if self.control.is_some() {
            (flush_timeout / 4).min(Duration::from_secs(2))
        } else {
            Duration::ZERO
        };
        if !drain(producer, left().saturating_sub(reserve)) {
            tracing::warn!(
                in_flight = producer.in_flight_count(),
                "acknowledgements still missing after {}; counting them as failed",
                humantime::format_duration(flush_timeout.saturating_sub(reserve))
            );
            producer.purge(PurgeConfig::default().queue().inflight());
            // Serve the delivery reports of the purged messages.
            drain(
                producer,
                left().saturating_sub(reserve).min(Duration::from_secs(1)),
            );
        }
        {
            let mut deliveries = producer.context().deliveries.lock().expect("lock");
            // Whatever was handed over but neither acked nor reported failed is not delivered
            // either.
            let Deliveries { acked, failed, .. } = &mut *deliveries;
            let unconfirmed: Vec<_> = acked
                .gaps_below(self.sent)
                .flat_map(|gap| gap.filter(|&n| !failed.contains(n)))
                .collect();
            unconfirmed.into_iter().for_each(|n| {
                failed.insert(n);
            });
            if let Some(reason) = &deliveries.last_failure {
                tracing::warn!("last delivery failure: {reason}");
            }
        }
        if self.control.is_some() {
            self.final_report = self.deliver_final_report(left);
        }
        if let Some(off) = self
            .control_producer
            .context()
            .control_failure
            .lock()
            .expect("lock")
            .clone()
        {
            if self.final_report != FinalReport::Delivered {
                self.final_report = FinalReport::Off;
            }
            self.reports_off = Some(off);
        }
        self.sample_series();
        let report = self.report();
        self.status.publish_produce(report.clone());
        self.progress.clear();
        Ok(report)
    }
}
