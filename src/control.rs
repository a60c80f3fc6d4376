//! The control topic: what each producer run says about itself, beside the data topic.
//!
//! The data topic carries only the four-key events (so an aggregation job such as the tutorial's
//! Spark job counts exactly the events). Each producer run also writes [`RunReport`]s to the
//! control topic — at start, about every second, and at the end — keyed by its run id: which `n`
//! the broker acknowledged and which failed. A producer killed with SIGKILL thus leaves a record of
//! everything acknowledged up to its last report, and `verify` can tell real loss (acknowledged
//! but never seen) from events that were never acknowledged.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::ranges::RangeSet;

/// The control topic of a data topic, unless overridden: `<topic>-kta-control`.
pub fn default_control_topic(topic: &str) -> String {
    format!("{topic}-kta-control")
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Still producing (or killed before it could say otherwise).
    Running,
    /// Finished: every event sent was acknowledged or failed.
    Finished,
}

/// A producer run's account of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Always `"producer-run"`.
    pub kind: String,
    /// The run id (also in every event's `kta-run` header).
    pub run: String,
    /// The run's origin.
    pub origin: String,
    /// The data topic.
    pub topic: String,
    /// Running or finished.
    pub state: RunState,
    /// Events handed to the client so far: `n` from 0 to `sent - 1`.
    pub sent: u64,
    /// `n` acknowledged by the broker, as half-open `[start, end)` ranges.
    pub acked: Vec<[u64; 2]>,
    /// `n` whose delivery failed, as half-open ranges.
    pub failed: Vec<[u64; 2]>,
    /// When the run started (seconds since the epoch).
    pub started: f64,
    /// When this report was written.
    pub updated: f64,
}

/// The `kind` of a producer run report.
pub const PRODUCER_RUN: &str = "producer-run";

/// Ranges as `[start, end)` pairs.
pub fn to_pairs(set: &RangeSet) -> Vec<[u64; 2]> {
    set.ranges().map(|r| [r.start, r.end]).collect()
}

/// Pairs back into a set.
pub fn from_pairs(pairs: &[[u64; 2]]) -> RangeSet {
    let mut set = RangeSet::new();
    for &[start, end] in pairs {
        set.insert_range(Range { start, end });
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let mut set = RangeSet::new();
        for n in [0, 1, 2, 5, 6, 9] {
            set.insert(n);
        }
        let pairs = to_pairs(&set);
        assert_eq!(pairs, vec![[0, 3], [5, 7], [9, 10]]);
        assert_eq!(from_pairs(&pairs), set);
    }

    #[test]
    fn report_json_shape() {
        let report = RunReport {
            kind: PRODUCER_RUN.to_owned(),
            run: "r".into(),
            origin: "o".into(),
            topic: "t".into(),
            state: RunState::Finished,
            sent: 3,
            acked: vec![[0, 3]],
            failed: vec![],
            started: 1.5,
            updated: 2.5,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["kind"], "producer-run");
        assert_eq!(json["state"], "finished");
        assert_eq!(json["acked"], serde_json::json!([[0, 3]]));
        let back: RunReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
