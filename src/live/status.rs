//! The live status of a run, for the HTTP endpoint: readiness, the latest report, and the
//! Prometheus metrics derived from them.
//!
//! The producer or consumer publishes a fresh report about once a second ([`PUBLISH_EVERY`]);
//! scrapes read that snapshot, so the hot path never touches a metric.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::report::ProduceReport;
use crate::tally::latency::LatencyBuckets;
use crate::verdict::judge::{ConsumeReport, OriginReport};
use crate::verdict::Verdict;

/// How often a running producer or consumer refreshes its published status.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// The latest published report.
#[derive(Debug, Clone, Default)]
enum Latest {
    #[default]
    Starting,
    Produce(Box<ProduceReport>),
    /// A consumer's report, its latency buckets and its topic.
    Consume(Box<ConsumeReport>, LatencyBuckets, String),
}

/// Shared between the running producer or consumer and the HTTP endpoint.
#[derive(Debug, Default)]
pub struct Status {
    running: AtomicBool,
    cluster_up: AtomicBool,
    /// A producer's acknowledgements stopped while events are pending.
    stalled: AtomicBool,
    latest: Mutex<Latest>,
}

impl Status {
    /// Marks the run as producing or consuming (or not).
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
    }

    /// Records whether a broker connection is up.
    pub fn set_cluster_up(&self, up: bool) {
        self.cluster_up.store(up, Ordering::Relaxed);
    }

    /// Records whether a producer is stalled (see [`crate::produce::stall`]).
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::Relaxed);
    }

    /// Ready: connected to the cluster, producing or consuming, and not stalled.
    pub fn is_ready(&self) -> bool {
        self.running.load(Ordering::Relaxed)
            && self.cluster_up.load(Ordering::Relaxed)
            && !self.stalled.load(Ordering::Relaxed)
    }

    /// Publishes a producer's report.
    pub fn publish_produce(&self, report: ProduceReport) {
        *self.latest.lock().expect("lock") = Latest::Produce(Box::new(report));
    }

    /// Publishes a consumer's report and latency buckets, of `topic`.
    pub fn publish_consume(&self, report: ConsumeReport, latency: LatencyBuckets, topic: &str) {
        *self.latest.lock().expect("lock") =
            Latest::Consume(Box::new(report), latency, topic.to_owned());
    }

    /// The latest report as a page (what `/` and `/charts` draw), or `None` before the first
    /// one.
    pub fn page(&self) -> Option<crate::report::html::Page> {
        match &*self.latest.lock().expect("lock") {
            Latest::Starting => None,
            Latest::Produce(report) => Some(crate::report::produce_page(report)),
            Latest::Consume(report, _, topic) => Some(crate::report::consume_page(report, topic)),
        }
    }

    /// The latest report as JSON, or `None` before the first one.
    pub fn report_json(&self) -> Option<String> {
        match &*self.latest.lock().expect("lock") {
            Latest::Starting => None,
            Latest::Produce(report) => Some(crate::report::to_json(report)),
            Latest::Consume(report, _, _) => Some(crate::report::to_json(report)),
        }
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A metric with one sample per origin.
fn per_origin(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    report: &ConsumeReport,
    value: impl Fn(&OriginReport) -> u64,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (origin, r) in &report.origins {
        let labels = [("origin", origin.as_str())];
        let sample = family.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(value(r)).encode(sample)?,
            _ => ConstGauge::new(value(r) as i64).encode(sample)?,
        }
    }
    Ok(())
}

impl Collector for Status {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let ready = if self.is_ready() { 1.0 } else { 0.0 };
        gauge(
            &mut encoder,
            "kta_ready",
            "1 when connected and producing or consuming",
            ready,
        )?;
        let latest = self.latest.lock().expect("lock").clone();
        match latest {
            Latest::Starting => Ok(()),
            Latest::Produce(r) => {
                counter(
                    &mut encoder,
                    "kta_events_sent",
                    "Events handed to the Kafka client",
                    r.sent,
                )?;
                counter(
                    &mut encoder,
                    "kta_events_acked",
                    "Events acknowledged by the broker",
                    r.acked,
                )?;
                counter(
                    &mut encoder,
                    "kta_events_failed",
                    "Events whose delivery failed",
                    r.failed,
                )?;
                gauge(
                    &mut encoder,
                    "kta_rate_target_events_per_second",
                    "Configured rate (0 = unpaced)",
                    r.target_rate,
                )?;
                gauge(
                    &mut encoder,
                    "kta_rate_achieved_events_per_second",
                    "Acknowledged events per second so far",
                    r.rate,
                )?;
                gauge(
                    &mut encoder,
                    "kta_longest_ack_gap_seconds",
                    "Longest time events were pending with none acknowledged or failed",
                    r.longest_ack_gap_s,
                )
            }
            Latest::Consume(r, latency, _) => {
                per_origin(
                    &mut encoder,
                    "kta_events_consumed",
                    "Valid events consumed",
                    MetricType::Counter,
                    &r,
                    |o| o.verdict.count,
                )?;
                // One gauge per anomaly class, named after its JSON key.
                for (key, _, words, _) in crate::verdict::Anomalies::default().classes() {
                    per_origin(
                        &mut encoder,
                        &format!("kta_events_{key}"),
                        &format!("Events counted as {words}"),
                        MetricType::Gauge,
                        &r,
                        |o| {
                            o.verdict
                                .anomalies
                                .classes()
                                .find(|c| c.0 == key)
                                .map_or(0, |c| c.3)
                        },
                    )?;
                }
                counter(
                    &mut encoder,
                    "kta_records_malformed",
                    "Records that are not test events",
                    r.malformed,
                )?;
                gauge(
                    &mut encoder,
                    "kta_verdict_pass",
                    "1 while everything consumed verifies",
                    if r.verdict == Verdict::Pass { 1.0 } else { 0.0 },
                )?;
                if let Some(d) = &r.drain {
                    gauge(
                        &mut encoder,
                        "kta_backlog_events",
                        "Events the producer runs had acknowledged when the hold ended (so far, \
                         while holding)",
                        d.backlog as f64,
                    )?;
                    gauge(
                        &mut encoder,
                        "kta_drain_events",
                        "Events consumed draining the backlog",
                        d.events as f64,
                    )?;
                    gauge(
                        &mut encoder,
                        "kta_drain_seconds",
                        "Seconds from the first assignment to the last record (to now, while \
                         draining)",
                        d.seconds.unwrap_or(0.0),
                    )?;
                    gauge(
                        &mut encoder,
                        "kta_drain_rate_events_per_second",
                        "Events drained per second",
                        d.events_per_s.unwrap_or(0.0),
                    )?;
                }
                let histogram = encoder.encode_descriptor(
                    "kta_end_to_end_latency_seconds",
                    "Consume time minus the event's timestamp",
                    None,
                    MetricType::Histogram,
                )?;
                let mut histogram = histogram;
                histogram.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    latency.sum_s(),
                    latency.count(),
                    &latency.buckets(),
                    None,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_count_each_bucket_with_inf_last() {
        let mut buckets = LatencyBuckets::default();
        for latency in [0.0005, 0.001, 0.02, 0.02, 100.0] {
            buckets.record(latency);
        }
        let counts = buckets.buckets();
        assert_eq!(counts[0], (0.001, 2));
        assert_eq!(counts[3], (0.025, 2));
        assert_eq!(counts.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(buckets.count(), 5);
        assert!((buckets.sum_s() - 100.0415).abs() < 1e-9);
    }

    /// The metrics a consumer with `report` publishes.
    fn metrics_of(report: ConsumeReport) -> String {
        let status = Status::default();
        status.publish_consume(report, LatencyBuckets::default(), "t");
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(status));
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, &registry).unwrap();
        body
    }

    #[test]
    fn a_held_consumer_has_its_backlog_and_drain_on_the_metrics() {
        use crate::tally::{Reports, Tally};
        use crate::verdict::judge::{self, Drain, HoldEnd, View};
        let report = judge::consume(
            &Tally::new(),
            &Reports::default(),
            &View::default(),
            None,
            1.0,
        );
        let plain = metrics_of(report.clone());
        assert!(
            !plain.contains("kta_drain") && !plain.contains("kta_backlog"),
            "{plain}"
        );
        let held = metrics_of(ConsumeReport {
            drain: Some(Drain {
                held_s: 12.0,
                hold_ended: HoldEnd::RunsFinished,
                runs: 2,
                runs_finished: 2,
                backlog: 40000,
                join_s: Some(0.25),
                events: 40000,
                seconds: Some(1.6),
                events_per_s: Drain::rate(40000, Some(1.6)),
                complete: true,
            }),
            ..report
        });
        for line in [
            "kta_backlog_events 40000.0\n",
            "kta_drain_events 40000.0\n",
            "kta_drain_seconds 1.6\n",
            "kta_drain_rate_events_per_second 25000.0\n",
        ] {
            assert!(held.contains(line), "{line}: {held}");
        }
    }

    #[test]
    fn ready_needs_running_and_a_connection() {
        let status = Status::default();
        assert!(!status.is_ready());
        status.set_running(true);
        assert!(!status.is_ready());
        status.set_cluster_up(true);
        assert!(status.is_ready());
        status.set_cluster_up(false);
        assert!(!status.is_ready());
    }
}
