//! Counting consumed events per origin and producer run.
//!
//! An event belongs to a *run*: one producer process. The run is read from the event's body (its
//! `_id` is derived from the run and `n`, see [`crate::wire::event::run_of`]), so a copy republished
//! without headers still belongs to its run; the [`crate::wire::RUN_HEADER`] record header gives the run's
//! full id where it survived (and names the run of events whose `_id` is not derived, written by
//! an older version of this tool). Events with neither — the original client's, other writers' —
//! are *foreign*: counted per origin, never judged as a run. A producer restarted under the same
//! origin starts a new run at `n` = 0, so counting per run keeps restarts from looking like
//! duplicates.
//!
//! For every run the tally keeps the set of `n` seen (as ranges, so memory grows with gaps, not
//! with events), duplicates and reorderings. Ordering is a per-partition promise in Kafka, so
//! `out_of_order` counts events that arrived on a partition after a higher `n` of the same run on
//! that same partition. Latency is kept per origin. [`Tally::judge`] turns a tally and the runs'
//! reports into per-origin verdicts, for `consume` and `verify` alike.

pub mod latency;
pub mod ranges;

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::tally::ranges::RangeSet;
use crate::verdict::{self, judge_run, Accounting, Anomalies, RunVerdict, Scope, Seen};
use crate::wire::control::RunReport;
use crate::wire::event::{self, Malformed, RunKey};
use crate::wire::Marks;
use latency::{LatencyBuckets, LatencySummary};

/// Highest latency the histograms track exactly: one hour, in microseconds.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new event of a run.
    Counted,
    /// An event whose run and `n` were already seen.
    Duplicate,
    /// An event not from a run of this tool.
    Foreign,
    /// Not an event.
    Malformed(Malformed),
}

/// What was seen of one producer run.
#[derive(Debug, Clone, Default)]
pub struct RunTally {
    seen: RangeSet,
    duplicates: u64,
    out_of_order: u64,
    /// Highest `n` seen per partition (index = partition number).
    last_by_partition: Vec<Option<u64>>,
    /// The run's full id, from the first header that named it.
    run_id: Option<String>,
}

impl RunTally {
    fn record(&mut self, n: u64, partition: i32) -> Outcome {
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
        self.seen.len() + self.duplicates
    }

    fn as_seen(&self) -> Seen<'_> {
        Seen {
            ns: &self.seen,
            duplicates: self.duplicates,
            out_of_order: self.out_of_order,
        }
    }
}

/// What was seen of one origin: its runs, its foreign events and its latency.
#[derive(Debug, Clone)]
pub struct OriginTally {
    runs: FxHashMap<RunKey, RunTally>,
    count: u64,
    /// Foreign events: how many, and their `n` (for gaps).
    foreign: u64,
    foreign_ns: RangeSet,
    /// Events stamped ahead of the reader's clock, and by how much at most (seconds).
    future: u64,
    max_ahead_s: f64,
    /// Warm-up events (marked by the producer's `--warmup`): counted, left out of the latency.
    warmup: u64,
    /// Broker append time minus the event's timestamp, seconds, over the events with an append
    /// time: the least and the most, and how many.
    append_lag_s: Option<(f64, f64)>,
    appended: u64,
    latency_us: Histogram<u64>,
}

impl Default for OriginTally {
    fn default() -> Self {
        OriginTally {
            runs: FxHashMap::default(),
            count: 0,
            foreign: 0,
            foreign_ns: RangeSet::new(),
            future: 0,
            max_ahead_s: 0.0,
            warmup: 0,
            append_lag_s: None,
            appended: 0,
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("static histogram bounds are valid"),
        }
    }
}

impl OriginTally {
    /// Events counted, duplicates and foreign events included (what an aggregation job would
    /// count).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The run of `key`, if any of its events was seen.
    pub fn run(&self, key: RunKey) -> Option<&RunTally> {
        self.runs.get(&key)
    }

    /// Judges this origin's runs against `reports` (those of this origin, by run key).
    fn judge(&self, reports: &Reports, origin: &str, scope: Scope<'_>) -> OriginVerdict {
        let mut verdict = OriginVerdict {
            count: self.count,
            ..OriginVerdict::default()
        };
        for (&key, run) in &self.runs {
            let report = reports.get(&key).filter(|r| r.origin == origin);
            let mut v = judge_run(&run.as_seen(), report, scope);
            if v.run_id.is_none() {
                v.run_id.clone_from(&run.run_id);
            }
            verdict.add_run(key, v);
        }
        verdict.anomalies.foreign = self.foreign;
        if scope.whole {
            verdict.anomalies.foreign_gaps = verdict::gaps(&self.foreign_ns, scope.from_zero);
        }
        verdict.anomalies.future_timestamps = self.future;
        verdict.accounting.foreign = self.foreign;
        verdict
    }

    fn latency(&self) -> LatencySummary {
        LatencySummary::of(&self.latency_us)
    }
}

/// The latest report of each run, by run key.
pub type Reports = FxHashMap<RunKey, RunReport>;

/// Keeps `report` if it is the newest of its run so far (a control topic holds several per run).
pub fn keep_latest(reports: &mut Reports, report: RunReport) {
    let key = event::run_key(&report.run);
    if reports
        .get(&key)
        .is_none_or(|known| known.updated <= report.updated)
    {
        reports.insert(key, report);
    }
}

/// One origin: its runs judged and added up.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OriginVerdict {
    /// Events on the topic (duplicates and foreign events included): what an aggregation job
    /// counts.
    pub count: u64,
    /// Events acknowledged by its reported runs.
    pub expected: u64,
    /// Sums over the runs, plus the origin's foreign events.
    #[serde(flatten)]
    pub anomalies: Anomalies,
    /// Per run, by run id (the 16-digit run key where the full id is unknown).
    pub runs: BTreeMap<String, RunVerdict>,
    /// Where the events went.
    #[serde(skip)]
    pub accounting: Accounting,
}

impl OriginVerdict {
    fn add_run(&mut self, key: RunKey, run: RunVerdict) {
        self.expected += run.expected.unwrap_or(0);
        self.anomalies.add(&run.anomalies);
        self.accounting.add(&run.accounting);
        let name = run.run_id.clone().unwrap_or_else(|| format!("{key:016x}"));
        self.runs.insert(name, run);
    }
}

/// What the broker's append times say of a producer's clock. Each event reaches the broker some
/// time `l >= 0` after its timestamp by the producer's clock, so `append - timestamp = l +
/// (broker clock - producer clock)`: the least of these bounds the offset.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ClockBound {
    /// Events with an append time.
    pub appended: u64,
    /// Least broker append time minus event timestamp, milliseconds.
    pub append_lag_ms_min: f64,
    /// Most of it.
    pub append_lag_ms_max: f64,
    /// The producer's clock is ahead of the broker's by at least this (its events were
    /// appended before their timestamps): its latencies are understated by as much.
    pub producer_ahead_ms_at_least: f64,
    /// The producer's clock is behind the broker's by at most this (0 when ahead): its
    /// latencies may be overstated by up to as much.
    pub producer_behind_ms_at_most: f64,
}

/// The running tally of a consumer.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    origins: FxHashMap<String, OriginTally>,
    consumed: u64,
    malformed: u64,
    latency: LatencyBuckets,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes and counts one record value, with the run id from its [`crate::wire::RUN_HEADER`] header (if
    /// any), read from `partition` at wall-clock time `now` (seconds since the epoch).
    pub fn record(
        &mut self,
        value: Option<&[u8]>,
        header: Option<&[u8]>,
        partition: i32,
        now: f64,
    ) -> Outcome {
        self.record_marked(value, header, Marks::default(), partition, now)
    }

    /// [`Tally::record`] of a record with its [`Marks`]: a warm-up event is counted and judged
    /// like any, but left out of the latency; an append time bounds the producer's clock offset.
    pub fn record_marked(
        &mut self,
        value: Option<&[u8]>,
        header: Option<&[u8]>,
        marks: Marks,
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
        // Look up by &str first so that known origins cost no allocation.
        let origin = match self.origins.get_mut(event.origin.as_ref()) {
            Some(origin) => origin,
            None => self.origins.entry(event.origin.into_owned()).or_default(),
        };
        origin.count += 1;
        let latency_s = now - event.timestamp;
        if let Some(append_s) = marks.append_s {
            let lag = append_s - event.timestamp;
            let (low, high) = origin.append_lag_s.unwrap_or((lag, lag));
            origin.append_lag_s = Some((low.min(lag), high.max(lag)));
            origin.appended += 1;
        }
        if marks.warmup {
            origin.warmup += 1;
        } else if latency_s < 0.0 {
            origin.future += 1;
            origin.max_ahead_s = origin.max_ahead_s.max(-latency_s);
        } else {
            self.latency.record(latency_s);
            origin
                .latency_us
                .saturating_record((latency_s * 1e6) as u64);
        }
        // The header is read only when the body does not name the run, or the run's full id is
        // not known yet: once per run, not per event.
        let header = || header.and_then(|h| std::str::from_utf8(h).ok());
        let key = match event::run_of(event.id, event.n).or_else(|| header().map(event::run_key)) {
            Some(key) => key,
            None => {
                origin.foreign += 1;
                origin.foreign_ns.insert(event.n);
                return Outcome::Foreign;
            }
        };
        let run = origin.runs.entry(key).or_default();
        if run.run_id.is_none() {
            if let Some(run_id) = header().filter(|h| event::run_key(h) == key) {
                run.run_id = Some(run_id.to_owned());
            }
        }
        run.record(event.n, partition)
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

    /// Every origin judged against `reports`: each run seen, and each reported run whose every
    /// event is missing.
    pub fn judge(&self, reports: &Reports, scope: Scope<'_>) -> BTreeMap<String, OriginVerdict> {
        let mut origins: BTreeMap<String, OriginVerdict> = self
            .origins
            .iter()
            .map(|(origin, tally)| (origin.clone(), tally.judge(reports, origin, scope)))
            .collect();
        let empty = RunTally::default();
        for (&key, report) in reports {
            let seen = self
                .origins
                .get(&report.origin)
                .is_some_and(|o| o.runs.contains_key(&key));
            if !seen {
                let run = judge_run(&empty.as_seen(), Some(report), scope);
                origins
                    .entry(report.origin.clone())
                    .or_default()
                    .add_run(key, run);
            }
        }
        origins
    }

    /// End-to-end latency of every event (microseconds), all origins merged.
    pub fn latency_histogram(&self) -> Histogram<u64> {
        let mut all = OriginTally::default().latency_us;
        for origin in self.origins.values() {
            // Same bounds on both sides: adding cannot fail.
            let _ = all.add(&origin.latency_us);
        }
        all
    }

    /// How an origin's clock compares with the broker's, from the append times of its events
    /// (`None`: none had one).
    pub fn clock(&self, origin: &str) -> Option<ClockBound> {
        let tally = self.origins.get(origin)?;
        let (low, high) = tally.append_lag_s?;
        Some(ClockBound {
            appended: tally.appended,
            append_lag_ms_min: low * 1000.0,
            append_lag_ms_max: high * 1000.0,
            producer_ahead_ms_at_least: (-low * 1000.0).max(0.0),
            producer_behind_ms_at_most: (low * 1000.0).max(0.0),
        })
    }

    /// Warm-up events of an origin, left out of its latency.
    pub fn warmup_events(&self, origin: &str) -> u64 {
        self.origins.get(origin).map_or(0, |tally| tally.warmup)
    }

    /// Latency per origin, and how far ahead of the reader's clock its events were at most (ms).
    pub fn latency(&self, origin: &str) -> Option<(LatencySummary, f64)> {
        let tally = self.origins.get(origin)?;
        Some((tally.latency(), tally.max_ahead_s * 1000.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::event::{derived_id, EventEncoder};

    const NOW: f64 = 1_707_128_718.0;
    const RUN: &str = "5f0c6d3e9a8b4c1d8e7f6a5b4c3d2e1f";
    const WHOLE: Scope = Scope {
        whole: true,
        from_zero: true,
        ends: None,
        read_uncommitted: false,
    };

    fn event(origin: &str, run: &str, n: u64, timestamp: f64) -> Vec<u8> {
        EventEncoder::new(origin)
            .encode(timestamp, derived_id(event::run_key(run), n), n)
            .to_vec()
    }

    fn feed(tally: &mut Tally, origin: &str, ns: &[u64], partition: i32) {
        for &n in ns {
            let value = event(origin, RUN, n, NOW - 0.25);
            tally.record(Some(&value), Some(RUN.as_bytes()), partition, NOW);
        }
    }

    #[test]
    fn counts_runs_by_the_identity_in_the_body_with_or_without_headers() {
        let mut tally = Tally::new();
        let value = event("a", RUN, 5, NOW);
        assert_eq!(
            tally.record(Some(&value), Some(RUN.as_bytes()), 0, NOW),
            Outcome::Counted
        );
        // The same bytes without headers (a mirror that drops them): a duplicate of that event.
        assert_eq!(tally.record(Some(&value), None, 1, NOW), Outcome::Duplicate);
        let run = tally.origins()["a"].run(event::run_key(RUN)).unwrap();
        assert_eq!((run.count(), run.duplicates), (2, 1));
        assert_eq!(run.run_id.as_deref(), Some(RUN));
    }

    #[test]
    fn random_ids_without_headers_are_foreign() {
        let mut tally = Tally::new();
        let original = EventEncoder::new("a")
            .encode(NOW, uuid::Uuid::new_v4(), 7)
            .to_vec();
        assert_eq!(
            tally.record(Some(&original), None, 0, NOW),
            Outcome::Foreign
        );
        let judged = tally.judge(&Reports::default(), WHOLE);
        let a = &judged["a"];
        assert_eq!(
            (a.count, a.anomalies.foreign, a.anomalies.foreign_gaps),
            (1, 1, 7)
        );
        assert_eq!(a.anomalies.lost, 0);
        assert!(a.runs.is_empty());
    }

    #[test]
    fn interleaved_partitions_are_not_out_of_order() {
        let mut tally = Tally::new();
        // Partition 1 carries 0..5, partition 2 carries 5..10; read partition 2 first.
        feed(&mut tally, "a", &[5, 6, 7, 8, 9], 2);
        feed(&mut tally, "a", &[0, 1, 2, 3, 4], 1);
        let judged = tally.judge(&Reports::default(), WHOLE);
        assert_eq!(judged["a"].anomalies, Anomalies::default());
    }

    #[test]
    fn gaps_duplicates_and_reordering_of_an_unreported_run_are_counted() {
        let mut tally = Tally::new();
        feed(&mut tally, "a", &[0, 1, 3, 3, 6, 5], 0);
        let a = &tally.judge(&Reports::default(), WHOLE)["a"];
        assert_eq!(
            (
                a.count,
                a.anomalies.inferred_gaps,
                a.anomalies.duplicates,
                a.anomalies.out_of_order
            ),
            (6, 2, 1, 1)
        );
        assert_eq!(
            a.anomalies.lost, 0,
            "no report: nothing is known acknowledged"
        );
    }

    #[test]
    fn malformed_records_are_counted_apart() {
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
        assert_eq!((tally.consumed(), tally.malformed()), (3, 5));
    }

    #[test]
    fn a_restarted_producer_is_a_new_run_not_duplicates() {
        let mut tally = Tally::new();
        let second = "0123456789abcdef0123456789abcdef";
        for (run, ns) in [(RUN, 0..70u64), (second, 0..50)] {
            for n in ns {
                let value = event("a", run, n, NOW);
                tally.record(Some(&value), Some(run.as_bytes()), 0, NOW);
            }
        }
        let a = &tally.judge(&Reports::default(), WHOLE)["a"];
        assert_eq!((a.count, a.anomalies), (120, Anomalies::default()));
        assert_eq!(a.runs.len(), 2);
        assert!(a.runs.contains_key(second));
    }

    #[test]
    fn warmup_events_are_counted_and_kept_out_of_latency() {
        let mut tally = Tally::new();
        let slow = event("a", RUN, 0, NOW - 9.0);
        let fast = event("a", RUN, 1, NOW - 0.5);
        let warm = Marks {
            warmup: true,
            append_s: Some(NOW - 9.25),
        };
        tally.record_marked(Some(&slow), Some(RUN.as_bytes()), warm, 0, NOW);
        let appended = Marks {
            warmup: false,
            append_s: Some(NOW - 0.5 - 0.125),
        };
        tally.record_marked(Some(&fast), Some(RUN.as_bytes()), appended, 0, NOW);
        // Appended 250 and 125 ms before their timestamps: that clock is 250 ms ahead at least.
        let clock = tally.clock("a").unwrap();
        assert_eq!(clock.appended, 2);
        let near = |a: f64, b: f64| (a - b).abs() < 0.01;
        assert!(near(clock.append_lag_ms_min, -250.0), "{clock:?}");
        assert!(near(clock.append_lag_ms_max, -125.0), "{clock:?}");
        assert!(near(clock.producer_ahead_ms_at_least, 250.0), "{clock:?}");
        assert_eq!(clock.producer_behind_ms_at_most, 0.0);
        assert_eq!(tally.clock("b"), None);
        let (latency, _) = tally.latency("a").unwrap();
        assert!((latency.max - 500.0).abs() < 1.0, "{}", latency.max);
        assert_eq!(tally.warmup_events("a"), 1);
        assert_eq!(tally.origins()["a"].count(), 2);
    }

    #[test]
    fn future_timestamps_are_counted_and_kept_out_of_latency() {
        let mut tally = Tally::new();
        let ahead = event("a", RUN, 0, NOW + 5.0);
        let behind = event("a", RUN, 1, NOW - 0.5);
        tally.record(Some(&ahead), None, 0, NOW);
        tally.record(Some(&behind), None, 0, NOW);
        let (latency, ahead_ms) = tally.latency("a").unwrap();
        assert!((ahead_ms - 5000.0).abs() < 1.0, "{ahead_ms}");
        assert!((latency.max - 500.0).abs() < 1.0, "{}", latency.max);
        let a = &tally.judge(&Reports::default(), WHOLE)["a"];
        assert_eq!(a.anomalies.future_timestamps, 1);
    }

    /// The bounded fuzz of the decoder (run by every `cargo test`): records that are not events
    /// (bytes, mutations of a real event, hostile shapes) are counted as malformed or as events,
    /// never a panic, and every record is counted exactly once.
    fn record_all(records: &[Vec<u8>]) -> Tally {
        let mut tally = Tally::new();
        for (i, value) in records.iter().enumerate() {
            let header = (i % 2 == 0).then_some(RUN.as_bytes());
            tally.record(Some(value), header, (i % 3) as i32, NOW);
        }
        assert_eq!(tally.consumed() + tally.malformed(), records.len() as u64);
        // Judging what was counted must not panic either.
        let _ = tally.judge(&Reports::default(), WHOLE);
        tally
    }

    #[test]
    fn hostile_records_are_malformed_never_a_panic() {
        let real = event("a", RUN, 7, NOW - 1.0);
        let text = String::from_utf8(real.clone()).unwrap();
        let hostile: Vec<Vec<u8>> = vec![
            vec![0xff, 0xfe, 0x00, 0x80],
            [
                b"{\"timestamp\": 1.0, \"_id\": \"".as_slice(),
                &[0xc3, 0x28],
                b"\"}",
            ]
            .concat(),
            vec![b'a'; 1 << 20],
            [b"{\"x\": \"".as_slice(), &vec![b'a'; 1 << 20], b"\"}"].concat(),
            "[".repeat(100_000).into_bytes(),
            "{\"a\":".repeat(50_000).into_bytes(),
            text.replacen("1707128717", "1e400", 1).into_bytes(),
            text.replacen("1707128717", "-1707128717", 1).into_bytes(),
            text.replacen("1707128717", "99999999999999", 1)
                .into_bytes(),
            text.replacen("1707128717", "1807128717", 1).into_bytes(),
            text.replacen("Message #7", "Message #99999999999999999999999", 1)
                .into_bytes(),
            text.replacen("Message #7", "Message #-7", 1).into_bytes(),
            text.replacen("\"_id\"", "\"_id\": 5, \"x\"", 1)
                .into_bytes(),
            Vec::new(),
        ];
        let tally = record_all(&hostile);
        // Only the event from three years ahead is still an event, counted as ahead of the clock.
        assert_eq!(tally.malformed(), hostile.len() as u64 - 1);
        let a = &tally.judge(&Reports::default(), WHOLE)["a"];
        assert_eq!((a.count, a.anomalies.future_timestamps), (1, 1));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        #[test]
        fn arbitrary_bytes_never_panic(records in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512), 1..16)) {
            record_all(&records);
        }

        #[test]
        fn mutated_events_never_panic(
            edits in proptest::collection::vec((0usize..200, proptest::prelude::any::<u8>(), 0u8..3), 1..8),
        ) {
            let mut value = event("kafka-test-app-0 (10.1.29.185)", RUN, 121, NOW - 0.5);
            for (at, byte, how) in edits {
                let at = at % (value.len() + 1);
                match how {
                    0 if at < value.len() => value[at] = byte,
                    1 => value.insert(at, byte),
                    _ => value.truncate(at),
                }
            }
            record_all(&[value]);
        }
    }
}
