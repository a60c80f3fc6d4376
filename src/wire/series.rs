//! Pictures of a run, in the reports: per-second counts ([`Series`]) and latency histograms
//! ([`encode_histogram`]), both bounded in size however long the run is.
//!
//! A series keeps at most [`MAX_BUCKETS`] buckets: when a run outgrows them, neighbouring
//! buckets are added together and the bucket width doubles (1 s, 2 s, 4 s, …), so a day-long
//! run's report holds 512 buckets of 256 s, and the counts always add up to the run's totals.
//! Histograms travel as HdrHistogram's V2 compressed (deflate) serialisation in base64: raw
//! counts, so a fleet's histograms merge into exact fleet-wide percentiles, never averages of
//! percentiles.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Most buckets a series keeps.
pub const MAX_BUCKETS: usize = 512;

/// Counts per time bucket, from `start`, each `step_s` seconds wide.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Start of the first bucket (seconds since the epoch).
    pub start: f64,
    /// Bucket width in seconds: 1, doubled each time the run outgrows [`MAX_BUCKETS`].
    pub step_s: u64,
    /// The count in each bucket.
    pub counts: Vec<u64>,
}

impl Series {
    /// An empty series starting at `start`, one-second buckets.
    pub fn new(start: f64) -> Self {
        Series {
            start,
            step_s: 1,
            counts: Vec::new(),
        }
    }

    /// Adds `n` to the bucket of time `at` (seconds since the epoch; before `start` counts in
    /// the first bucket).
    pub fn add(&mut self, at: f64, n: u64) {
        if self.step_s == 0 {
            self.step_s = 1;
        }
        let mut slot = ((at - self.start).max(0.0) as u64 / self.step_s) as usize;
        while slot >= MAX_BUCKETS {
            self.coarsen();
            slot = ((at - self.start).max(0.0) as u64 / self.step_s) as usize;
        }
        if self.counts.len() <= slot {
            self.counts.resize(slot + 1, 0);
        }
        self.counts[slot] += n;
    }

    /// Merges neighbouring buckets and doubles the width.
    fn coarsen(&mut self) {
        self.counts = self
            .counts
            .chunks(2)
            .map(|pair| pair.iter().sum())
            .collect();
        self.step_s *= 2;
    }

    /// Every count added.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds at `at` what the series' total falls short of `total` (the count since the last
    /// sample), and opens the first bucket even when that is nothing. Sampled about once a
    /// second, so nothing is done per event.
    pub fn sample(&mut self, at: f64, total: u64) {
        let new = total.saturating_sub(self.total());
        if new > 0 || self.counts.is_empty() {
            self.add(at, new);
        }
    }
}

/// A producer run's counts over time: what it sent, what was acknowledged, what failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSeries {
    /// Events handed to the client, per bucket.
    pub sent: Series,
    /// Events acknowledged, per bucket (by the time the run sampled them).
    pub acked: Series,
    /// Events whose delivery failed, per bucket.
    pub failed: Series,
}

impl RunSeries {
    /// Empty series from `start`.
    pub fn new(start: f64) -> Self {
        RunSeries {
            sent: Series::new(start),
            acked: Series::new(start),
            failed: Series::new(start),
        }
    }

    /// Samples each series at `at` ([`Series::sample`]).
    pub fn sample(&mut self, at: f64, sent: u64, acked: u64, failed: u64) {
        self.sent.sample(at, sent);
        self.acked.sample(at, acked);
        self.failed.sample(at, failed);
    }
}

/// A histogram as base64 of its V2 compressed serialisation.
pub fn encode_histogram(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .expect("serialising into memory does not fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A histogram back from [`encode_histogram`]'s text; `None` for anything else.
pub fn decode_histogram(text: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_series_stays_bounded_and_adds_up() {
        let mut series = Series::new(1000.0);
        for second in 0..10_000u64 {
            series.add(1000.0 + second as f64 + 0.5, 3);
        }
        assert!(series.counts.len() <= MAX_BUCKETS);
        assert_eq!(series.step_s, 32);
        assert_eq!(series.total(), 30_000);
        // Each full bucket holds 32 seconds of 3 events.
        assert_eq!(series.counts[0], 96);
    }

    #[test]
    fn merged_histograms_give_the_percentiles_of_all_values() {
        let new = || Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        let (mut a, mut b, mut all) = (new(), new(), new());
        for v in 1..=10_000u64 {
            let value = v * v % 7_919 + 1;
            if v % 3 == 0 { &mut a } else { &mut b }
                .record(value)
                .unwrap();
            all.record(value).unwrap();
        }
        let mut merged = decode_histogram(&encode_histogram(&a)).unwrap();
        merged
            .add(decode_histogram(&encode_histogram(&b)).unwrap())
            .unwrap();
        for q in [0.5, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.value_at_quantile(q),
                all.value_at_quantile(q),
                "q {q}"
            );
        }
        assert_eq!((merged.len(), merged.max()), (all.len(), all.max()));
        assert_eq!(decode_histogram("not base64!"), None);
    }
}
