//! Latency as the tally keeps it: percentiles for reports, Prometheus buckets for `/metrics`.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest observed.
    pub max: f64,
    /// How many latencies these are of (warm-up events and events stamped ahead of the clock
    /// are left out).
    pub count: u64,
}

impl LatencySummary {
    /// The percentiles of a histogram of microseconds, in milliseconds.
    pub fn of(histogram_us: &Histogram<u64>) -> Self {
        let ms = |q: f64| histogram_us.value_at_quantile(q) as f64 / 1000.0;
        LatencySummary {
            p50: ms(0.5),
            p99: ms(0.99),
            p999: ms(0.999),
            max: histogram_us.max() as f64 / 1000.0,
            count: histogram_us.len(),
        }
    }
}

/// Upper bounds (seconds) of the end-to-end latency histogram buckets.
pub const LATENCY_BUCKETS_S: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// End-to-end latency in Prometheus histogram buckets, counted as events are consumed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyBuckets {
    /// Events per bucket (not cumulative); the last slot is `+Inf`.
    counts: [u64; LATENCY_BUCKETS_S.len() + 1],
    sum_s: f64,
}

impl LatencyBuckets {
    /// Counts one latency.
    pub fn record(&mut self, latency_s: f64) {
        let slot = LATENCY_BUCKETS_S.partition_point(|&bound| bound < latency_s);
        self.counts[slot] += 1;
        self.sum_s += latency_s;
    }

    /// `(upper bound, events in that bucket alone)` pairs, `+Inf` last; the exposition encoder
    /// makes them cumulative.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        LATENCY_BUCKETS_S
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts)
            .collect()
    }

    /// Sum of all latencies, seconds.
    pub fn sum_s(&self) -> f64 {
        self.sum_s
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}
