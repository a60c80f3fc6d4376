//! The control topic: what each producer run says about itself, beside the data topic.
//!
//! The data topic carries only the four-key events (so an aggregation job such as the tutorial's
//! Spark job counts exactly the events). Each producer run also writes [`RunReport`]s to the
//! control topic — at start, about every second, and at the end — keyed by its run id: which `n`
//! the broker acknowledged and which failed. A producer killed with SIGKILL thus leaves a record of
//! everything acknowledged up to its last report, and `verify` can tell real loss (acknowledged
//! but never seen) from events that were never acknowledged.
//!
//! Consumers write [`MemberReport`]s the same way: which offsets of which partitions they
//! consumed, so `verify --group` can tell whether a group as a whole consumed everything, however
//! partitions moved between its members.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::tally::ranges::RangeSet;
use crate::wire::series::{RunSeries, Series};

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

/// A record of the control topic; JSON with a `kind` of `producer-run` or `consumer-member`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ControlRecord {
    /// A producer run's report.
    ProducerRun(RunReport),
    /// A consumer group member's report.
    ConsumerMember(MemberReport),
}

impl ControlRecord {
    /// The record value.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("control records serialise")
    }

    /// Parses a record value; `None` for anything else.
    pub fn parse(value: &[u8]) -> Option<Self> {
        serde_json::from_slice(value).ok()
    }
}

/// A producer run's account of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
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
    /// `n` of transactions the run aborted (`--abort-rate`), as half-open ranges: a
    /// read-committed reader must never see them. For a transactional run `acked` holds only
    /// committed events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aborted: Vec<[u64; 2]>,
    /// `[partition, offset]`: the highest offset acknowledged on each partition written to.
    #[serde(default)]
    pub acked_high: Vec<[i64; 2]>,
    /// The rate asked for (events per second, 0 = unpaced).
    #[serde(default)]
    pub target_rate: f64,
    /// Sent, acknowledged and failed over time.
    #[serde(default)]
    pub series: RunSeries,
    /// Acknowledgement latency from each event's scheduled time, microseconds, as
    /// [`crate::wire::series::encode_histogram`] writes it (empty when none).
    #[serde(default)]
    pub ack_latency_us: String,
    /// When the run started (seconds since the epoch).
    pub started: f64,
    /// When this report was written.
    pub updated: f64,
}

/// A consumer's account of what it consumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberReport {
    /// A random id per consumer process.
    pub member: String,
    /// The consumer group id.
    pub group: String,
    /// The data topic.
    pub topic: String,
    /// Running or finished.
    pub state: RunState,
    /// Valid events consumed (redeliveries included).
    pub consumed: u64,
    /// Records that were not events.
    pub malformed: u64,
    /// Offsets consumed, per partition.
    pub offsets: Vec<PartitionOffsets>,
    /// Events consumed per origin.
    pub counts: BTreeMap<String, u64>,
    /// Events consumed over time.
    #[serde(default)]
    pub consumed_per_s: Series,
    /// End-to-end latency, microseconds, as [`crate::wire::series::encode_histogram`] writes it.
    #[serde(default)]
    pub latency_us: String,
    /// When this report was written (seconds since the epoch).
    pub updated: f64,
}

/// Offsets of one partition, as half-open `[start, end)` ranges. (A list rather than a map keyed
/// by partition: serde cannot read integer map keys inside a tagged record.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOffsets {
    /// The partition.
    pub partition: i32,
    /// Offsets consumed.
    pub ranges: Vec<[u64; 2]>,
}

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
        let report = ControlRecord::ProducerRun(RunReport {
            run: "r".into(),
            origin: "o".into(),
            topic: "t".into(),
            state: RunState::Finished,
            sent: 3,
            acked: vec![[0, 3]],
            failed: vec![],
            aborted: vec![],
            acked_high: vec![[0, 2]],
            target_rate: 0.0,
            series: Default::default(),
            ack_latency_us: String::new(),
            started: 1.5,
            updated: 2.5,
        });
        let json: serde_json::Value = serde_json::from_slice(&report.to_json()).unwrap();
        assert_eq!(json["kind"], "producer-run");
        assert_eq!(json["state"], "finished");
        assert_eq!(json["acked"], serde_json::json!([[0, 3]]));
        assert_eq!(ControlRecord::parse(&report.to_json()), Some(report));
        assert_eq!(ControlRecord::parse(b"{\"kind\": \"other\"}"), None);
    }

    #[test]
    fn member_reports_round_trip() {
        let report = ControlRecord::ConsumerMember(MemberReport {
            member: "m".into(),
            group: "relation-9-1".into(),
            topic: "t".into(),
            state: RunState::Running,
            consumed: 50,
            malformed: 1,
            offsets: vec![PartitionOffsets {
                partition: 3,
                ranges: vec![[0, 51]],
            }],
            counts: BTreeMap::from([("a (1.1.1.1)".to_owned(), 50)]),
            consumed_per_s: Default::default(),
            latency_us: String::new(),
            updated: 2.5,
        });
        assert_eq!(ControlRecord::parse(&report.to_json()), Some(report));
    }
}
