//! Counting consumed events per origin and judging them.
//!
//! For every origin the tally keeps the set of `n` seen (as ranges, so memory grows with gaps,
//! not with events), duplicates, reorderings and an end-to-end latency histogram. Ordering is a
//! per-partition promise in Kafka, so `out_of_order` counts events that arrived on a partition
//! after a higher `n` of the same origin on that same partition.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;

use crate::event::{self, Malformed};
use crate::ranges::RangeSet;
use crate::report::{ConsumeReport, LatencySummary, OriginReport, Verdict};
use crate::status::LatencyBuckets;

/// Highest latency the histograms track exactly: one hour, in microseconds.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new event.
    Counted,
    /// An event whose origin and `n` were already seen.
    Duplicate,
    /// Not an event.
    Malformed(Malformed),
}

/// Per-origin counters.
#[derive(Debug, Clone)]
pub struct OriginTally {
    seen: RangeSet,
    count: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Highest `n` seen per partition (index = partition number).
    last_by_partition: Vec<Option<u64>>,
    latency_us: Histogram<u64>,
}

impl Default for OriginTally {
    fn default() -> Self {
        OriginTally {
            seen: RangeSet::new(),
            count: 0,
            duplicates: 0,
            out_of_order: 0,
            last_by_partition: Vec::new(),
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("static histogram bounds are valid"),
        }
    }
}

impl OriginTally {
    fn record(&mut self, n: u64, partition: i32, latency_us: u64) -> Outcome {
        self.count += 1;
        self.latency_us.saturating_record(latency_us);
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

    /// Events counted, duplicates included (what an aggregation job would count).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Values of `n` below the highest one seen that never arrived (runs start at 0).
    pub fn missing(&self) -> u64 {
        self.seen.end() - self.seen.len()
    }

    fn report(&self) -> OriginReport {
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        OriginReport {
            count: self.count,
            duplicates: self.duplicates,
            missing: self.missing(),
            out_of_order: self.out_of_order,
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
    origins: HashMap<String, OriginTally>,
    consumed: u64,
    malformed: u64,
    latency: LatencyBuckets,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes and counts one record value read from `partition` at wall-clock time `now`
    /// (seconds since the epoch).
    pub fn record(&mut self, value: Option<&[u8]>, partition: i32, now: f64) -> Outcome {
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
        origin.record(event.n, partition, latency_us)
    }

    /// Valid events consumed (duplicates included).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Records that were not events.
    pub fn malformed(&self) -> u64 {
        self.malformed
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
        let reasons = failure_reasons(self.consumed, expected, &origins);
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
            origins,
        }
    }
}

/// Why a consumption fails verification; empty means pass.
fn failure_reasons(
    consumed: u64,
    expected: Option<u64>,
    origins: &BTreeMap<String, OriginReport>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if consumed == 0 {
        reasons.push("no events were consumed".to_owned());
    }
    if let Some(expected) = expected {
        if consumed < expected {
            reasons.push(format!("expected {expected} events, consumed {consumed}"));
        }
    }
    for (origin, r) in origins {
        for (what, value) in [
            ("missing", r.missing),
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
            tally.record(Some(&event(origin, n, NOW - 0.25)), partition, NOW);
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
                tally.record(Some(garbage), 0, NOW),
                Outcome::Malformed(_)
            ));
        }
        assert!(matches!(tally.record(None, 0, NOW), Outcome::Malformed(_)));
        let report = tally.report(Some(3), 1.0);
        assert_eq!((report.consumed, report.malformed), (3, 5));
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
        tally.record(Some(&event("a", 0, NOW + 5.0)), 0, NOW);
        assert_eq!(tally.report(None, 1.0).origins["a"].latency_ms.max, 0.0);
    }
}
