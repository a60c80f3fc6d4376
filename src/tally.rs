//! Counting consumed events per origin and producer run, and judging them.
//!
//! An event belongs to a *run*: one producer process, named by the run id it sends in the
//! [`RUN_HEADER`] record header (events without it, from the original client for instance, form
//! one anonymous run per origin). A producer restarted under the same origin starts a new run at
//! `n` = 0, so counting per run keeps restarts from looking like duplicates.
//!
//! For every run the tally keeps the set of `n` seen (as ranges, so memory grows with gaps, not
//! with events), duplicates and reorderings. Ordering is a per-partition promise in Kafka, so
//! `out_of_order` counts events that arrived on a partition after a higher `n` of the same run on
//! that same partition. Latency is kept per origin.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use hdrhistogram::Histogram;

use crate::event::{self, Malformed};
use crate::ranges::RangeSet;
use crate::report::{ConsumeReport, LatencySummary, OriginReport, Verdict};
use crate::status::LatencyBuckets;

/// The record header carrying a producer's run id.
pub const RUN_HEADER: &str = "kta-run";

/// Highest latency the histograms track exactly: one hour, in microseconds.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new event.
    Counted,
    /// An event whose run and `n` were already seen.
    Duplicate,
    /// Not an event.
    Malformed(Malformed),
}

/// What was seen of one producer run.
#[derive(Debug, Clone, Default)]
pub struct RunTally {
    seen: RangeSet,
    count: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Highest `n` seen per partition (index = partition number).
    last_by_partition: Vec<Option<u64>>,
}

impl RunTally {
    fn record(&mut self, n: u64, partition: i32) -> Outcome {
        self.count += 1;
        if !self.seen.insert(n) {
            self.duplicates += 1;
            return Outcome::Duplicate;
        }
        let slot = usize::try_from(partition).unwrap_or(0);
        if self.last_by_partition.len() <= slot {
            self.last_by_partition.resize(slot + 1, None);
        }
        let last = &mut self.last_by_partition[slot];
        match *last {
            Some(previous) if n < previous => self.out_of_order += 1,
            _ => *last = Some(n),
        }
        Outcome::Counted
    }

    /// The `n` seen, as ranges.
    pub fn seen(&self) -> &RangeSet {
        &self.seen
    }

    /// Events counted, duplicates included.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Events whose `n` had been seen before.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Events behind a higher `n` on their partition.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Values of `n` below the highest one seen that never arrived (runs start at 0).
    pub fn gaps(&self) -> u64 {
        self.seen.end() - self.seen.len()
    }
}

/// What was seen of one origin: its runs and its latency.
#[derive(Debug, Clone)]
pub struct OriginTally {
    runs: FxHashMap<String, RunTally>,
    count: u64,
    latency_us: Histogram<u64>,
}

impl Default for OriginTally {
    fn default() -> Self {
        OriginTally {
            runs: FxHashMap::default(),
            count: 0,
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("static histogram bounds are valid"),
        }
    }
}

impl OriginTally {
    fn record(&mut self, run: &str, n: u64, partition: i32, latency_us: u64) -> Outcome {
        self.count += 1;
        self.latency_us.saturating_record(latency_us);
        let tally = match self.runs.get_mut(run) {
            Some(tally) => tally,
            None => self.runs.entry(run.to_owned()).or_default(),
        };
        tally.record(n, partition)
    }

    /// Events counted, duplicates included (what an aggregation job would count).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The runs seen of this origin, by run id (`""` for events without one).
    pub fn runs(&self) -> &FxHashMap<String, RunTally> {
        &self.runs
    }

    fn report(&self) -> OriginReport {
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        let sum = |f: fn(&RunTally) -> u64| self.runs.values().map(f).sum();
        OriginReport {
            count: self.count,
            duplicates: sum(RunTally::duplicates),
            missing: sum(RunTally::gaps),
            out_of_order: sum(RunTally::out_of_order),
            latency_ms: LatencySummary {
                p50: ms(0.5),
                p99: ms(0.99),
                p999: ms(0.999),
                max: self.latency_us.max() as f64 / 1000.0,
            },
        }
    }
}

/// The running tally of a consumer.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    origins: FxHashMap<String, OriginTally>,
    consumed: u64,
    malformed: u64,
    latency: LatencyBuckets,
    /// The consumer was assigned only some partitions of the topic (other members of its group
    /// read the rest), so gaps in `n` are not loss.
    partial: bool,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes and counts one record value, with the run id from its [`RUN_HEADER`] header (if
    /// any), read from `partition` at wall-clock time `now` (seconds since the epoch).
    pub fn record(
        &mut self,
        value: Option<&[u8]>,
        run: Option<&[u8]>,
        partition: i32,
        now: f64,
    ) -> Outcome {
        let event = match event::decode(value) {
            Ok(event) => event,
            Err(why) => {
                self.malformed += 1;
                return Outcome::Malformed(why);
            }
        };
        self.consumed += 1;
        let latency_s = (now - event.timestamp).max(0.0);
        self.latency.record(latency_s);
        let latency_us = (latency_s * 1e6) as u64;
        // Look up by &str first so that known origins cost no allocation.
        let origin = match self.origins.get_mut(event.origin.as_ref()) {
            Some(origin) => origin,
            None => self.origins.entry(event.origin.into_owned()).or_default(),
        };
        let run = run.and_then(|r| std::str::from_utf8(r).ok()).unwrap_or("");
        origin.record(run, event.n, partition, latency_us)
    }

    /// Every origin seen, by origin.
    pub fn origins(&self) -> &FxHashMap<String, OriginTally> {
        &self.origins
    }

    /// Valid events consumed (duplicates included).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Records that were not events.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Records that the consumer had only part of the topic's partitions at some point.
    pub fn set_partial(&mut self) {
        self.partial = true;
    }

    /// End-to-end latency of every event, in Prometheus buckets.
    pub fn latency_buckets(&self) -> &LatencyBuckets {
        &self.latency
    }

    /// Count per origin, sorted by origin.
    pub fn counts(&self) -> BTreeMap<&str, u64> {
        self.origins
            .iter()
            .map(|(origin, tally)| (origin.as_str(), tally.count()))
            .collect()
    }

    /// The report and verdict for what was consumed; `expected` is `--expect`, if given.
    pub fn report(&self, expected: Option<u64>, elapsed_s: f64) -> ConsumeReport {
        let origins: BTreeMap<String, OriginReport> = self
            .origins
            .iter()
            .map(|(origin, tally)| (origin.clone(), tally.report()))
            .collect();
        let reasons = failure_reasons(self.consumed, expected, &origins, self.partial);
        ConsumeReport {
            consumed: self.consumed,
            malformed: self.malformed,
            verdict: if reasons.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            reasons,
            expected,
            elapsed_s,
            partial_assignment: self.partial,
            origins,
        }
    }
}

/// Why a consumption fails verification; empty means pass.
fn failure_reasons(
    consumed: u64,
    expected: Option<u64>,
    origins: &BTreeMap<String, OriginReport>,
    partial: bool,
) -> Vec<String> {
    let mut reasons = Vec::new();
    // A group member may be handed only partitions without events.
    if consumed == 0 && !partial {
        reasons.push("no events were consumed".to_owned());
    }
    if let Some(expected) = expected {
        if consumed < expected {
            reasons.push(format!("expected {expected} events, consumed {consumed}"));
        }
    }
    for (origin, r) in origins {
        // With part of the partitions, gaps are the other members' events, not loss.
        let missing = if partial { 0 } else { r.missing };
        for (what, value) in [
            ("missing", missing),
            ("duplicates", r.duplicates),
            ("out of order", r.out_of_order),
        ] {
            if value > 0 {
                reasons.push(format!("{origin}: {value} {what}"));
            }
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventEncoder;

    const NOW: f64 = 1_707_128_718.0;

    fn event(origin: &str, n: u64, timestamp: f64) -> Vec<u8> {
        EventEncoder::new(origin)
            .encode(timestamp, uuid::Uuid::new_v4(), n)
            .to_vec()
    }

    fn feed(tally: &mut Tally, origin: &str, ns: &[u64], partition: i32) {
        for &n in ns {
            tally.record(Some(&event(origin, n, NOW - 0.25)), None, partition, NOW);
        }
    }

    #[test]
    fn clean_run_passes_with_exact_counts() {
        let mut tally = Tally::new();
        feed(&mut tally, "a (1.1.1.1)", &(0..100).collect::<Vec<_>>(), 0);
        feed(&mut tally, "b (2.2.2.2)", &(0..40).collect::<Vec<_>>(), 3);
        let report = tally.report(Some(140), 1.0);
        assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.reasons);
        assert_eq!(report.consumed, 140);
        assert_eq!(report.origins["a (1.1.1.1)"].count, 100);
        assert_eq!(report.origins["b (2.2.2.2)"].count, 40);
        // hdrhistogram keeps three significant digits.
        let p50 = report.origins["a (1.1.1.1)"].latency_ms.p50;
        assert!((p50 - 250.0).abs() <= 0.25, "p50 {p50}");
    }

    #[test]
    fn interleaved_partitions_are_not_out_of_order() {
        let mut tally = Tally::new();
        // Partition 1 carries 0..5, partition 2 carries 5..10; read partition 2 first.
        feed(&mut tally, "a", &[5, 6, 7, 8, 9], 2);
        feed(&mut tally, "a", &[0, 1, 2, 3, 4], 1);
        let report = tally.report(None, 1.0);
        assert_eq!(report.origins["a"].out_of_order, 0);
        assert_eq!(report.verdict, Verdict::Pass);
    }

    #[test]
    fn gaps_duplicates_and_reordering_fail_with_reasons() {
        let mut tally = Tally::new();
        feed(&mut tally, "a", &[0, 1, 3, 3, 6, 5], 0);
        let report = tally.report(None, 1.0);
        let a = &report.origins["a"];
        assert_eq!(
            (a.count, a.missing, a.duplicates, a.out_of_order),
            (6, 2, 1, 1)
        );
        assert_eq!(report.verdict, Verdict::Fail);
        assert_eq!(
            report.reasons,
            vec!["a: 2 missing", "a: 1 duplicates", "a: 1 out of order"]
        );
    }

    #[test]
    fn malformed_records_do_not_change_the_verdict() {
        let mut tally = Tally::new();
        feed(&mut tally, "a", &[0, 1, 2], 0);
        for garbage in [&b"not json"[..], b"{}", b"\xff\xfe", b"[1,2,3]"] {
            assert!(matches!(
                tally.record(Some(garbage), None, 0, NOW),
                Outcome::Malformed(_)
            ));
        }
        assert!(matches!(
            tally.record(None, None, 0, NOW),
            Outcome::Malformed(_)
        ));
        let report = tally.report(Some(3), 1.0);
        assert_eq!((report.consumed, report.malformed), (3, 5));
        assert_eq!(report.verdict, Verdict::Pass);
    }

    #[test]
    fn a_restarted_producer_is_a_new_run_not_duplicates() {
        let mut tally = Tally::new();
        for (run, ns) in [(&b"run-1"[..], 0..70u64), (&b"run-2"[..], 0..50)] {
            for n in ns {
                tally.record(Some(&event("a", n, NOW)), Some(run), 0, NOW);
            }
        }
        let report = tally.report(None, 1.0);
        let a = &report.origins["a"];
        assert_eq!(
            (a.count, a.duplicates, a.missing, a.out_of_order),
            (120, 0, 0, 0)
        );
        assert_eq!(tally.origins()["a"].runs().len(), 2);
        assert_eq!(report.verdict, Verdict::Pass);
    }

    #[test]
    fn gaps_are_not_judged_with_a_partial_assignment() {
        let mut tally = Tally::new();
        feed(&mut tally, "a", &[0, 2, 4], 0);
        assert_eq!(tally.report(None, 1.0).verdict, Verdict::Fail);
        tally.set_partial();
        let report = tally.report(None, 1.0);
        assert_eq!(report.origins["a"].missing, 2);
        assert!(report.partial_assignment);
        assert_eq!(report.verdict, Verdict::Pass);
    }

    #[test]
    fn too_few_or_no_events_fail() {
        let empty = Tally::new().report(None, 1.0);
        assert_eq!(empty.verdict, Verdict::Fail);
        assert_eq!(empty.reasons, vec!["no events were consumed"]);

        let mut tally = Tally::new();
        feed(&mut tally, "a", &[0, 1], 0);
        let short = tally.report(Some(3), 1.0);
        assert_eq!(short.reasons, vec!["expected 3 events, consumed 2"]);
    }

    #[test]
    fn latency_from_the_future_counts_as_zero() {
        let mut tally = Tally::new();
        tally.record(Some(&event("a", 0, NOW + 5.0)), None, 0, NOW);
        assert_eq!(tally.report(None, 1.0).origins["a"].latency_ms.max, 0.0);
    }
}
