//! The producer: byte-compatible events at an exact rate, idempotent and acknowledged.
//!
//! Sending runs on one blocking thread around a librdkafka `BaseProducer`: the event is encoded
//! into a reused buffer and handed over (librdkafka copies it), nothing is awaited per event, and
//! delivery reports are served by polling the same producer while waiting for the next event's
//! due time. A message counts as acked only when its delivery report says so.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::client::ClientContext as RdClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig,
};
use rdkafka::types::RDKafkaErrorCode;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::client_events::ClientEvents;
use crate::error::{Error, Result};
use crate::event::EventEncoder;
use crate::kafka_config::{client_config, ConnectionSettings};
use crate::rate::Schedule;
use crate::report::{LatencySummary, ProduceReport, Verdict};
use crate::topic::{ensure_topic, TopicSpec};

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
}

/// Delivery counters, fed by librdkafka's delivery reports.
struct DeliveryContext {
    events: Arc<ClientEvents>,
    start: Instant,
    acked: AtomicU64,
    failed: AtomicU64,
    /// Ack latency from each event's scheduled time, microseconds.
    latency_us: Mutex<Histogram<u64>>,
    last_failure: Mutex<Option<String>>,
}

impl RdClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.events.on_error(&error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    /// The event's scheduled send time, in microseconds after the start of the run.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, scheduled_us: usize) {
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                let now_us = self.start.elapsed().as_micros() as u64;
                let latency = now_us.saturating_sub(scheduled_us as u64);
                self.latency_us
                    .lock()
                    .expect("lock")
                    .saturating_record(latency);
            }
            Err((error, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!("delivery failed: {error}");
                }
                *self.last_failure.lock().expect("lock") = Some(error.to_string());
            }
        }
    }
}

/// Runs a producer until its limit, its duration or `shutdown`; returns the final report.
///
/// Must be called from a blocking thread of a tokio runtime (`handle`).
pub fn produce(
    handle: &Handle,
    settings: &ConnectionSettings,
    options: &ProduceOptions,
    shutdown: &CancellationToken,
) -> Result<ProduceReport> {
    let mut config = client_config(settings)?;
    let events = ClientEvents::new();
    config.set("enable.idempotence", "true").set("acks", "all");
    let context = DeliveryContext {
        events: events.clone(),
        start: Instant::now(),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        latency_us: Mutex::new(
            Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid"),
        ),
        last_failure: Mutex::new(None),
    };
    let producer: BaseProducer<DeliveryContext> = config
        .create_with_context(context)
        .map_err(|e| Error::kafka("cannot create the producer", e))?;

    let proceed = ensure_topic(
        handle,
        producer.client(),
        &config,
        &events,
        settings,
        &options.topic,
        || producer.poll(Duration::ZERO),
        shutdown,
    )?;
    let mut sent = 0;
    let mut send_start = Instant::now();
    if proceed {
        tracing::info!(
            topic = %options.topic.name,
            origin = %options.origin,
            rate = options.rate,
            "producing"
        );
        (sent, send_start) = send_loop(&producer, settings, options, shutdown)?;
    }
    finish(&producer, options, sent, send_start)
}

/// Sends events until a limit is reached; returns how many were handed to librdkafka and when
/// sending started.
fn send_loop(
    producer: &BaseProducer<DeliveryContext>,
    settings: &ConnectionSettings,
    options: &ProduceOptions,
    shutdown: &CancellationToken,
) -> Result<(u64, Instant)> {
    let context = producer.context();
    let start = Instant::now();
    let schedule = Schedule::new(start, options.rate);
    let mut limit = options.num_messages.unwrap_or(u64::MAX);
    if let Some(within) = options.duration.and_then(|d| schedule.events_within(d)) {
        limit = limit.min(within);
    }
    let end = options.duration.map(|d| start + d);
    // Delivery reports measure from the context's clock, which started before topic creation.
    let run_offset_us = start.duration_since(context.start).as_micros() as u64;
    let mut encoder = EventEncoder::new(&options.origin);
    let key = options.origin.as_bytes();
    let mut next_progress = start + options.report_interval;
    let mut sent = 0u64;

    while sent < limit && !shutdown.is_cancelled() {
        let now = Instant::now();
        if options.rate > 0.0 {
            let due = schedule.due(sent);
            if due > now {
                wait_until(producer, due, shutdown);
                continue;
            }
        } else if end.is_some_and(|end| now >= end) {
            break;
        }
        let scheduled = if options.rate > 0.0 {
            schedule.offset(sent)
        } else {
            now - start
        };
        let opaque = (run_offset_us + scheduled.as_micros() as u64) as usize;
        let payload = encoder.encode_now(sent);
        let mut record = BaseRecord::with_opaque_to(&options.topic.name, opaque).payload(payload);
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
                    context.events.check(settings)?;
                }
                Err((error, _)) => {
                    context.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("cannot enqueue event {sent}: {error}");
                    break;
                }
            }
        }
        sent += 1;
        if sent % 1024 == 0 {
            producer.poll(Duration::ZERO);
            context.events.check(settings)?;
            if Instant::now() >= next_progress {
                next_progress += options.report_interval;
                log_progress(context, sent);
            }
        }
    }
    Ok((sent, start))
}

/// Waits until `due`, serving delivery reports meanwhile; returns early on shutdown.
fn wait_until(
    producer: &BaseProducer<DeliveryContext>,
    due: Instant,
    shutdown: &CancellationToken,
) {
    loop {
        let now = Instant::now();
        if now >= due || shutdown.is_cancelled() {
            return;
        }
        let remaining = due - now;
        if remaining > Duration::from_millis(2) {
            // librdkafka's poll timeout has millisecond resolution; keep a margin for the rest.
            producer.poll((remaining - Duration::from_millis(1)).min(Duration::from_millis(100)));
        } else {
            std::thread::sleep(remaining);
        }
    }
}

fn log_progress(context: &DeliveryContext, sent: u64) {
    tracing::info!(
        sent,
        acked = context.acked.load(Ordering::Relaxed),
        failed = context.failed.load(Ordering::Relaxed),
        "progress"
    );
}

/// Waits (bounded) for outstanding acknowledgements, fails what is still unconfirmed, and builds
/// the report.
fn finish(
    producer: &BaseProducer<DeliveryContext>,
    options: &ProduceOptions,
    sent: u64,
    start: Instant,
) -> Result<ProduceReport> {
    let context = producer.context();
    if producer.flush(options.flush_timeout).is_err() {
        tracing::warn!(
            in_flight = producer.in_flight_count(),
            "acknowledgements still missing after {}; counting them as failed",
            humantime::format_duration(options.flush_timeout)
        );
        producer.purge(PurgeConfig::default().queue().inflight());
        // Serve the delivery reports of the purged messages.
        let _ = producer.flush(Duration::from_secs(5));
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    let acked = context.acked.load(Ordering::Relaxed);
    // Whatever was handed over but neither acked nor reported failed is not delivered either.
    let failed = sent
        .saturating_sub(acked)
        .max(context.failed.load(Ordering::Relaxed));
    if let Some(reason) = context.last_failure.lock().expect("lock").as_ref() {
        tracing::warn!(failed, "last delivery failure: {reason}");
    }
    let latency = context.latency_us.lock().expect("lock");
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(ProduceReport {
        sent,
        acked,
        failed,
        elapsed_s,
        rate: if elapsed_s > 0.0 {
            acked as f64 / elapsed_s
        } else {
            0.0
        },
        target_rate: options.rate,
        topic: options.topic.name.clone(),
        origin: options.origin.clone(),
        ack_latency_ms: LatencySummary {
            p50: ms(0.5),
            p99: ms(0.99),
            p999: ms(0.999),
            max: latency.max() as f64 / 1000.0,
        },
        verdict: if failed == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
    })
}
