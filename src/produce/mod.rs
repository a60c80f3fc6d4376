//! The producer: byte-compatible events at an exact rate, idempotent and acknowledged.
//!
//! Sending runs on one blocking thread around a librdkafka `BaseProducer`: the event is encoded
//! into a reused buffer and handed over (librdkafka copies it), nothing is awaited per event, and
//! delivery reports are served by polling the same producer while waiting for the next event's
//! due time. A message counts as acked only when its delivery report says so.

pub mod origin;
pub mod rate;
pub mod stall;

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use rdkafka::client::ClientContext as RdClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
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
use crate::report::{FinalReport, Guarantee, ProduceReport};
use crate::tally::latency::LatencySummary;
use crate::tally::ranges::RangeSet;
use crate::verdict::Verdict;
use crate::wire::control::{to_pairs, ControlRecord, RunReport, RunState};
use crate::wire::event::{self, python_timestamp, EventEncoder};
use crate::wire::series::{encode_histogram, RunSeries};
use crate::wire::RUN_HEADER;
use rate::Schedule;
use stall::{Change, Stall};

/// How events are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeyMode {
    /// No key, like the original (the partitioner spreads events).
    #[default]
    None,
    /// The origin string: all events of a producer land in one partition, in order.
    Origin,
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

/// Marks the delivery reports of control records (run reports), which are not events.
const CONTROL: usize = usize::MAX;

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
    /// The event's scheduled send time in microseconds after `start`, or [`CONTROL`].
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, scheduled_us: usize) {
        if scheduled_us == CONTROL {
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
                let now_us = self.start.elapsed().as_micros() as u64;
                let latency = now_us.saturating_sub(scheduled_us as u64);
                deliveries.latency_us.saturating_record(latency);
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
    // The guarantee this tool is for, unless the user chose another with -X (the report says
    // which one was in force).
    for (key, value) in [("enable.idempotence", "true"), ("acks", "all")] {
        if !settings.overrides.iter().any(|o| o.key == key) {
            config.set(key, value);
        }
    }
    let guarantee = Guarantee {
        acks: config.get("acks").unwrap_or("all").to_owned(),
        idempotence: config.get("enable.idempotence") == Some("true"),
    };
    let context = DeliveryContext {
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
        }),
    };
    let producer: BaseProducer<DeliveryContext> =
        session.client_with("producer", &config, context)?;

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
                    *producer.context().control_failure.lock().expect("lock") = Some(off);
                    None
                }
            }
        }
        _ => None,
    };
    let mut run = Run {
        producer: &producer,
        session,
        options,
        status,
        control,
        guarantee,
        final_report: FinalReport::Off,
        reports_off: None,
        run_id: uuid::Uuid::new_v4().simple().to_string(),
        started: python_timestamp(SystemTime::now()),
        start: Instant::now(),
        sent: 0,
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

/// One producer run: the state the send loop, the waits and the reports share.
struct Run<'a> {
    producer: &'a BaseProducer<DeliveryContext>,
    /// The run's connection: its errors end the run, its shutdown stops sending.
    session: &'a Session,
    options: &'a ProduceOptions,
    status: &'a Status,
    /// Where run reports go, if anywhere.
    control: Option<&'a str>,
    /// The delivery guarantee in force, for the report.
    guarantee: Guarantee,
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
        let schedule = Schedule::new(self.start, options.rate);
        let paced = options.rate > 0.0;
        let mut limit = options.num_messages.unwrap_or(u64::MAX);
        if let Some(within) = options.duration.and_then(|d| schedule.events_within(d)) {
            limit = limit.min(within);
        }
        let end = options.duration.map(|d| self.start + d);
        (self.limit, self.end) = ((limit < u64::MAX).then_some(limit), end);
        // Delivery reports measure from the context's clock, which started before the topic check.
        let base_us = self
            .start
            .duration_since(producer.context().start)
            .as_micros() as u64;
        let mut encoder = EventEncoder::new(&options.origin);
        let key = options.origin.as_bytes();
        let run_id = self.run_id.clone();
        // Every event's _id names this run (see event::derived_id).
        let run_key = event::run_key(&run_id);
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
            let opaque = (base_us + scheduled.as_micros() as u64) as usize;
            let payload = encoder.encode_now(run_key, self.sent);
            let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: RUN_HEADER,
                value: Some(run_id.as_bytes()),
            });
            let mut record = BaseRecord::with_opaque_to(&options.topic.name, opaque)
                .payload(payload)
                .headers(headers);
            if options.key == KeyMode::Origin {
                record = record.key(key);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // librdkafka's queue is full: serve delivery reports until there is room.
                        record = back;
                        producer.poll(Duration::from_millis(10));
                        let now = Instant::now();
                        if now >= self.next_publish {
                            self.publish(now)?;
                        }
                    }
                    Err((error, _)) => {
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
            let (acked, failed) = (deliveries.acked.len(), deliveries.failed.len());
            self.series.sample(now, self.sent, acked, failed);
            ControlRecord::ProducerRun(RunReport {
                run: self.run_id.clone(),
                origin: self.options.origin.clone(),
                topic: self.options.topic.name.clone(),
                state,
                sent: self.sent,
                acked: to_pairs(&deliveries.acked),
                failed: to_pairs(&deliveries.failed),
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
        if let Err((error, _)) = self.producer.send(record) {
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
        let acked = deliveries.acked.len();
        let failed = deliveries.failed.len();
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
        let producer = self.producer;
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
        if let Some(off) = producer
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
