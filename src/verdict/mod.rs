//! What can go wrong, in one place: the anomaly classes every report counts, how each weighs on
//! the verdict, and how one producer run is judged against what was seen of it.
//!
//! The vocabulary follows Jepsen's Kafka analysis. Every event read is accounted for in exactly
//! one class of [`Accounting`] (delivered, duplicate, unacked-seen, unreported tail, beyond sent,
//! unreported run, foreign), and every acknowledged event is either delivered or *lost*; the
//! [`Anomalies`] of a report are those counts that are not plain delivery, with their weight:
//!
//! | class | meaning | verdict |
//! |---|---|---|
//! | lost | acknowledged by the broker, never seen | fail |
//! | duplicate | a second copy of a run's event (same run and `n`, with or without headers) | fail |
//! | out-of-order | behind a higher `n` of the same run on the same partition | fail |
//! | beyond sent | `n` at or above what a *finished* run says it sent | fail |
//! | truncated | a partition's log ends below an offset the run had acknowledged | fail |
//! | unacked-seen | its delivery failed or timed out, yet it was written | counted |
//! | unreported tail | sent after the run's last report (a producer that did not finish) | counted |
//! | inferred gap | a hole in `n` of a run no report covers: not known to be acknowledged | incomplete |
//! | foreign | not an event of a run of this tool (the original client's, another writer's) | counted |
//! | foreign gap | a hole in `n` of foreign events of an origin | counted |
//! | future timestamp | stamped ahead of the reader's clock (skewed clocks) | counted |
//! | nonmonotonic poll | a consumer's offsets on a partition went back without a rebalance | fail |
//! | skipped offsets | offsets a consumer's partition jumped over without a rebalance | counted |
//!
//! Adding a class is one line in [`anomalies!`] and its counting rule.

pub mod judge;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::tally::ranges::RangeSet;
use crate::wire::control::{from_pairs, RunReport, RunState};
use crate::wire::series::RunSeries;

/// Pass, fail, incomplete, or behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Everything checked out.
    Pass,
    /// Something was lost, duplicated, reordered, written twice or not delivered.
    Fail,
    /// Nothing was found wrong, but not everything could be judged: a producer run did not
    /// finish, a consumer stopped before the end or was never assigned partitions, a gap is not
    /// known to be acknowledged.
    Incomplete,
    /// An aggregation job's answer (`verify --against`) is a batch taken before the job had
    /// read all the topic holds, and no count of it is above the topic's: nothing wrong yet,
    /// but not the final answer either. Wrong answers and unfinished runs are judged first.
    Behind,
}

impl Verdict {
    /// The exit code for this verdict.
    pub fn exit_code(self) -> crate::error::ExitCode {
        match self {
            Verdict::Pass => crate::error::ExitCode::Pass,
            Verdict::Fail => crate::error::ExitCode::Fail,
            Verdict::Incomplete => crate::error::ExitCode::Incomplete,
            Verdict::Behind => crate::error::ExitCode::Behind,
        }
    }
}

/// How an anomaly class weighs on the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// Any count above zero fails the verdict.
    Fail,
    /// Any count above zero makes a passing verdict incomplete.
    Incomplete,
    /// Counted and shown; no effect on the verdict.
    Counted,
}

macro_rules! anomalies {
    ($( $(#[$doc:meta])* $field:ident: $weight:ident, $words:literal; )*) => {
        /// Counts of every anomaly class. Embedded (flattened) in every report that judges
        /// events, so the JSON has one key per class.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        pub struct Anomalies {
            $( $(#[$doc])* pub $field: u64, )*
        }

        impl Anomalies {
            /// Every class: its JSON key, weight, words for reasons, and count.
            pub fn classes(&self) -> impl Iterator<Item = (&'static str, Weight, &'static str, u64)> {
                [$( (stringify!($field), Weight::$weight, $words, self.$field), )*].into_iter()
            }

            /// Adds another count to this one, class by class.
            pub fn add(&mut self, other: &Anomalies) {
                $( self.$field += other.$field; )*
            }
        }
    };
}

anomalies! {
    /// Acknowledged by the broker, never seen.
    lost: Fail, "lost (acknowledged, never seen)";
    /// A further copy of an event of a run (same run and `n`, whatever its headers).
    duplicates: Fail, "duplicate";
    /// Behind a higher `n` of the same run on the same partition.
    out_of_order: Fail, "out of order";
    /// `n` at or above what a finished run says it sent.
    beyond_sent: Fail, "more than the run sent";
    /// Partitions whose log now ends at or below an offset the run had acknowledged.
    truncated: Fail, "partitions truncated below an acknowledged offset";
    /// Events of a transaction their producer aborted, seen by a read-committed reader.
    aborted_reads: Fail, "aborted reads (events of an aborted transaction, seen read-committed)";
    /// Events of an aborted transaction seen by a read-uncommitted reader, as it may.
    aborted_seen: Counted, "aborted but seen (read uncommitted)";
    /// Seen although the producer saw its delivery fail or time out.
    unacked_seen: Counted, "unacked but seen (delivery failed, yet written)";
    /// Sent after the run's last report: neither acknowledged nor failed in it.
    unreported_tail: Counted, "unreported tail (sent after the run's last report)";
    /// Holes in `n` of a run no report covers: not known to be acknowledged, so not lost.
    inferred_gaps: Incomplete, "inferred gaps (no report says whether they were acknowledged)";
    /// Events not from a run of this tool (a random `_id`: the original client, other writers).
    foreign: Counted, "foreign (not from a run of this tool)";
    /// Holes in `n` of an origin's foreign events.
    foreign_gaps: Counted, "gaps in foreign events";
    /// Stamped ahead of the reader's clock (their latency is left out of the percentiles).
    future_timestamps: Counted, "timestamped ahead of this clock";
    /// A consumer's offsets on a partition went back without a rebalance (a consumer's view).
    nonmonotonic_polls: Fail, "nonmonotonic polls (offsets went back without a rebalance)";
    /// Offsets a consumer's partition skipped between two polls without a rebalance (a
    /// consumer's view; transaction markers occupy offsets too, so these are counted, not
    /// judged: `verify --group` checks every record was consumed).
    skipped_offsets: Counted, "skipped offsets without a rebalance";
}

impl Anomalies {
    /// The classes of `weight` with a count, as `"<subject>: <count> <words>"`.
    pub fn reasons(&self, subject: &str, weight: Weight) -> impl Iterator<Item = String> + '_ {
        let subject = subject.to_owned();
        self.classes()
            .filter(move |&(_, w, _, count)| w == weight && count > 0)
            .map(move |(_, _, words, count)| format!("{subject}: {count} {words}"))
    }

    /// The non-zero classes as `key N, key N` (`none` when there is none), for text reports.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for (key, _, _, count) in self.classes().filter(|c| c.3 > 0) {
            let sep = if text.is_empty() { "" } else { ", " };
            let _ = write!(text, "{sep}{} {count}", key.replace('_', " "));
        }
        if text.is_empty() {
            text.push_str("no anomalies");
        }
        text
    }
}

/// Where every event read went: each in exactly one class; the sum is the events read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Acknowledged and seen (first copies).
    pub delivered: u64,
    /// Further copies of a run's events.
    pub duplicates: u64,
    /// First copies of events whose delivery failed.
    pub unacked_seen: u64,
    /// First copies of events sent after the run's last report.
    pub unreported_tail: u64,
    /// First copies of events at or above what a finished run sent.
    pub beyond_sent: u64,
    /// First copies of events of transactions their run aborted.
    pub aborted: u64,
    /// First copies of events of runs without any report.
    pub unreported_run: u64,
    /// Events not from a run of this tool.
    pub foreign: u64,
}

impl Accounting {
    /// The events accounted for.
    pub fn total(&self) -> u64 {
        self.delivered
            + self.duplicates
            + self.unacked_seen
            + self.unreported_tail
            + self.beyond_sent
            + self.aborted
            + self.unreported_run
            + self.foreign
    }

    /// Adds another account to this one.
    pub fn add(&mut self, other: &Accounting) {
        self.delivered += other.delivered;
        self.duplicates += other.duplicates;
        self.unacked_seen += other.unacked_seen;
        self.unreported_tail += other.unreported_tail;
        self.beyond_sent += other.beyond_sent;
        self.aborted += other.aborted;
        self.unreported_run += other.unreported_run;
        self.foreign += other.foreign;
    }

    /// `N events = D delivered + …` (only the non-zero terms), for text reports.
    pub fn sum_line(&self) -> String {
        let terms = [
            ("delivered", self.delivered),
            ("duplicate", self.duplicates),
            ("unacked-seen", self.unacked_seen),
            ("unreported tail", self.unreported_tail),
            ("beyond sent", self.beyond_sent),
            ("aborted", self.aborted),
            ("of unreported runs", self.unreported_run),
            ("foreign", self.foreign),
        ];
        let parts: Vec<String> = terms
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
        let parts = if parts.is_empty() {
            "0".to_owned()
        } else {
            parts.join(" + ")
        };
        format!("{} events = {parts}", self.total())
    }
}

/// What a reader could see of a run, which decides what may be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// Every acknowledged event should be among those read (the reader read every partition
    /// from its first offset to an end past the reports): `lost` is judged.
    pub whole: bool,
    /// Every partition was read from offset 0, so a gap below the lowest `n` seen is a gap.
    pub from_zero: bool,
    /// Where each partition's log ended when it was read (partition → end offset), if known:
    /// a run's acknowledged offset at or past it is a truncation.
    pub ends: Option<&'a BTreeMap<i32, i64>>,
    /// The reader read uncommitted: events of aborted transactions are expected among what it
    /// read (`aborted_seen`), not aborted reads.
    pub read_uncommitted: bool,
}

/// What was seen of one run, as the judging needs it.
pub struct Seen<'a> {
    /// `n` seen (first copies).
    pub ns: &'a RangeSet,
    /// Further copies.
    pub duplicates: u64,
    /// Events behind a higher `n` on their partition.
    pub out_of_order: u64,
}

/// One producer run, expected versus seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunVerdict {
    /// `running` (its last report says so: killed, or its final report undelivered),
    /// `finished`, or `unreported` (events seen, no report).
    pub state: String,
    /// The run's full id, where known (headers or reports).
    pub run_id: Option<String>,
    /// Events the run reported acknowledged.
    pub expected: Option<u64>,
    /// Events the run said it sent.
    pub sent: Option<u64>,
    /// Events the run reported failed (not acknowledged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
    /// Events of transactions the run aborted (absent for a run without aborts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<u64>,
    /// When the run's last report was written (seconds since the epoch).
    pub last_report: Option<f64>,
    /// Events of this run on the topic (duplicates included).
    pub count: u64,
    /// The anomalies of this run.
    #[serde(flatten)]
    pub anomalies: Anomalies,
    /// Where its events went.
    #[serde(skip)]
    pub accounting: Accounting,
    /// The rate the run asked for, from its report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    /// Sent, acknowledged and failed over time, from its report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<RunSeries>,
    /// The `n` lost (acknowledged, never seen), as ranges: where the HTML page marks them on
    /// the timeline (by when they were sent). Their count is `lost`.
    #[serde(skip)]
    pub lost_n: Vec<std::ops::Range<u64>>,
}

/// Judges one run: what its latest report says against what was seen of it.
pub fn judge_run(seen: &Seen<'_>, report: Option<&RunReport>, scope: Scope<'_>) -> RunVerdict {
    let count = seen.ns.len() + seen.duplicates;
    let mut anomalies = Anomalies {
        duplicates: seen.duplicates,
        out_of_order: seen.out_of_order,
        ..Anomalies::default()
    };
    let mut accounting = Accounting {
        duplicates: seen.duplicates,
        ..Accounting::default()
    };
    let Some(report) = report else {
        // With part of the topic in view, holes are events the reader did not see, not gaps.
        if scope.whole {
            anomalies.inferred_gaps = gaps(seen.ns, scope.from_zero);
        }
        accounting.unreported_run = seen.ns.len();
        return RunVerdict {
            state: "unreported".into(),
            run_id: None,
            expected: None,
            sent: None,
            failed: None,
            aborted: None,
            last_report: None,
            count,
            anomalies,
            accounting,
            target_rate: None,
            series: None,
            lost_n: Vec::new(),
        };
    };
    let acked = from_pairs(&report.acked);
    let failed = from_pairs(&report.failed);
    let aborted = from_pairs(&report.aborted);
    let delivered = seen.ns.overlap(&acked);
    let unacked_seen = seen.ns.overlap(&failed);
    let aborted_seen = seen.ns.overlap(&aborted);
    match scope.read_uncommitted {
        true => anomalies.aborted_seen = aborted_seen,
        false => anomalies.aborted_reads = aborted_seen,
    }
    accounting.aborted = aborted_seen;
    let beyond_sent = match report.state {
        RunState::Finished => seen.ns.count_from(report.sent),
        RunState::Running => 0,
    };
    let mut lost_n = Vec::new();
    if scope.whole {
        anomalies.lost = acked.len() - delivered;
        if anomalies.lost > 0 {
            lost_n = acked.difference(seen.ns).ranges().collect();
        }
    }
    if let Some(ends) = scope.ends {
        anomalies.truncated = report
            .acked_high
            .iter()
            .filter(|[partition, offset]| {
                i32::try_from(*partition)
                    .is_ok_and(|p| ends.get(&p).is_none_or(|&end| *offset >= end))
            })
            .count() as u64;
    }
    anomalies.unacked_seen = unacked_seen;
    anomalies.beyond_sent = beyond_sent;
    anomalies.unreported_tail =
        seen.ns.len() - delivered - unacked_seen - beyond_sent - aborted_seen;
    accounting.delivered = delivered;
    accounting.unacked_seen = unacked_seen;
    accounting.beyond_sent = beyond_sent;
    accounting.unreported_tail = anomalies.unreported_tail;
    RunVerdict {
        state: match report.state {
            RunState::Running => "running".into(),
            RunState::Finished => "finished".into(),
        },
        run_id: Some(report.run.clone()),
        expected: Some(acked.len()),
        sent: Some(report.sent),
        failed: Some(failed.len()),
        aborted: (!aborted.is_empty()).then(|| aborted.len()),
        last_report: Some(report.updated),
        count,
        anomalies,
        accounting,
        target_rate: Some(report.target_rate),
        series: Some(report.series.clone()),
        lost_n,
    }
}

/// Holes in `ns` below its highest value: from 0 when the reader read from offset 0, otherwise
/// only between the lowest and the highest seen (a single event implies no gap below it).
pub fn gaps(ns: &RangeSet, from_zero: bool) -> u64 {
    let Some(low) = ns.start() else { return 0 };
    let from = if from_zero { 0 } else { low };
    ns.end() - from - ns.len()
}

/// Reasons and notes, gathered while judging; they decide the verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Findings {
    /// Why the verdict fails.
    pub reasons: Vec<String>,
    /// Why a verdict that found nothing wrong is still incomplete.
    pub incomplete: Vec<String>,
    /// Why an aggregation job's answer, wrong in nothing, is not its final one (a batch taken
    /// while the job had not read the whole topic yet). Left out of JSON when empty: only
    /// `verify --against` fills it, and every other report stays as it was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub behind: Vec<String>,
    /// What was counted and is worth knowing, without effect on the verdict.
    pub notes: Vec<String>,
}

impl Findings {
    /// Files each anomaly class of `anomalies` with a count under its weight.
    pub fn anomalies(&mut self, subject: &str, anomalies: &Anomalies) {
        self.reasons
            .extend(anomalies.reasons(subject, Weight::Fail));
        self.incomplete
            .extend(anomalies.reasons(subject, Weight::Incomplete));
        self.notes
            .extend(anomalies.reasons(subject, Weight::Counted));
    }

    /// The verdict these findings call for.
    pub fn verdict(&self) -> Verdict {
        if !self.reasons.is_empty() {
            Verdict::Fail
        } else if !self.incomplete.is_empty() {
            Verdict::Incomplete
        } else if !self.behind.is_empty() {
            Verdict::Behind
        } else {
            Verdict::Pass
        }
    }
}

/// `verdict: PASS`, `verdict: FAIL (reason; reason)`, `verdict: INCOMPLETE (why; why)` or
/// `verdict: BEHIND (why)`, after a `note:` line per note, with a newline.
pub fn verdict_text(verdict: Verdict, findings: &Findings) -> String {
    let mut text = String::new();
    for note in &findings.notes {
        let _ = writeln!(text, "note: {note}");
    }
    if verdict != Verdict::Incomplete {
        for why in &findings.incomplete {
            let _ = writeln!(text, "not judged: {why}");
        }
    }
    let _ = match verdict {
        Verdict::Pass => writeln!(text, "verdict: PASS"),
        Verdict::Fail => writeln!(text, "verdict: FAIL ({})", findings.reasons.join("; ")),
        Verdict::Incomplete => writeln!(
            text,
            "verdict: INCOMPLETE ({})",
            findings.incomplete.join("; ")
        ),
        Verdict::Behind => writeln!(text, "verdict: BEHIND ({})", findings.behind.join("; ")),
    };
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::control::to_pairs;

    fn set(ranges: &[(u64, u64)]) -> RangeSet {
        let mut set = RangeSet::new();
        for &(start, end) in ranges {
            set.insert_range(start..end);
        }
        set
    }

    fn report(state: RunState, sent: u64, acked: &RangeSet, failed: &RangeSet) -> RunReport {
        RunReport {
            run: "r".into(),
            origin: "o".into(),
            topic: "t".into(),
            state,
            sent,
            acked: to_pairs(acked),
            failed: to_pairs(failed),
            aborted: vec![],
            acked_high: vec![],
            target_rate: 0.0,
            series: Default::default(),
            ack_latency_us: String::new(),
            started: 1.0,
            updated: 2.0,
        }
    }

    const WHOLE: Scope = Scope {
        whole: true,
        from_zero: true,
        ends: None,
        read_uncommitted: false,
    };

    #[test]
    fn every_event_is_in_one_class_and_the_sum_is_what_was_read() {
        // Finished run: sent 100, acked 0..90, failed 90..100; seen 10..95 plus n=100 and 120,
        // and three further copies.
        let ns = set(&[(10, 95), (100, 101), (120, 121)]);
        let seen = Seen {
            ns: &ns,
            duplicates: 3,
            out_of_order: 0,
        };
        let r = report(
            RunState::Finished,
            100,
            &set(&[(0, 90)]),
            &set(&[(90, 100)]),
        );
        let v = judge_run(&seen, Some(&r), WHOLE);
        assert_eq!(v.count, 90);
        assert_eq!(
            (
                v.anomalies.lost,
                v.anomalies.unacked_seen,
                v.anomalies.beyond_sent,
                v.anomalies.duplicates
            ),
            (10, 5, 2, 3)
        );
        assert_eq!(v.accounting.total(), v.count);
        assert_eq!(v.accounting.delivered + v.anomalies.lost, 90);
    }

    #[test]
    fn aborted_events_seen_are_aborted_reads_read_committed_and_counted_read_uncommitted() {
        // Committed 0..40 and 60..100, aborted 40..60; seen: all committed and 45..50.
        let mut r = report(
            RunState::Finished,
            100,
            &set(&[(0, 40), (60, 100)]),
            &RangeSet::new(),
        );
        r.aborted = vec![[40, 60]];
        let seen_ns = set(&[(0, 40), (45, 50), (60, 100)]);
        let seen = Seen {
            ns: &seen_ns,
            duplicates: 0,
            out_of_order: 0,
        };
        let committed = judge_run(&seen, Some(&r), WHOLE);
        assert_eq!(committed.anomalies.aborted_reads, 5);
        assert_eq!(committed.anomalies.aborted_seen, 0);
        assert_eq!(committed.anomalies.lost, 0);
        assert_eq!(committed.anomalies.unreported_tail, 0);
        assert_eq!(committed.accounting.aborted, 5);
        assert_eq!(committed.accounting.total(), 85);
        assert_eq!(committed.aborted, Some(20));
        let uncommitted = judge_run(
            &seen,
            Some(&r),
            Scope {
                read_uncommitted: true,
                ..WHOLE
            },
        );
        assert_eq!(uncommitted.anomalies.aborted_reads, 0);
        assert_eq!(uncommitted.anomalies.aborted_seen, 5);
        assert_eq!(uncommitted.accounting.total(), 85);
    }

    #[test]
    fn a_running_run_has_a_tail_not_events_beyond_sent() {
        let ns = set(&[(0, 60)]);
        let seen = Seen {
            ns: &ns,
            duplicates: 0,
            out_of_order: 0,
        };
        let r = report(RunState::Running, 50, &set(&[(0, 50)]), &RangeSet::new());
        let v = judge_run(&seen, Some(&r), WHOLE);
        assert_eq!(
            (v.anomalies.unreported_tail, v.anomalies.beyond_sent),
            (10, 0)
        );
        assert_eq!(v.state, "running");
    }

    #[test]
    fn loss_is_judged_only_over_a_whole_view() {
        let ns = set(&[(50, 100)]);
        let seen = Seen {
            ns: &ns,
            duplicates: 0,
            out_of_order: 0,
        };
        let r = report(RunState::Finished, 100, &set(&[(0, 100)]), &RangeSet::new());
        let partial = Scope {
            whole: false,
            from_zero: false,
            ends: None,
            read_uncommitted: false,
        };
        assert_eq!(judge_run(&seen, Some(&r), partial).anomalies.lost, 0);
        assert_eq!(judge_run(&seen, Some(&r), WHOLE).anomalies.lost, 50);
    }

    /// A partition whose log now ends at or below an offset the run had acknowledged is
    /// truncated, even when the counts balance.
    #[test]
    fn a_log_ending_below_an_acknowledged_offset_is_truncated() {
        let ns = set(&[(0, 10)]);
        let seen = Seen {
            ns: &ns,
            duplicates: 0,
            out_of_order: 0,
        };
        let mut r = report(RunState::Finished, 10, &set(&[(0, 10)]), &RangeSet::new());
        r.acked_high = vec![[0, 41], [1, 7], [2, 3]];
        let ends = BTreeMap::from([(0, 42), (1, 7)]);
        let scope = Scope {
            ends: Some(&ends),
            read_uncommitted: false,
            ..WHOLE
        };
        let v = judge_run(&seen, Some(&r), scope);
        // Partition 1 ends at 7 (offset 7 gone); partition 2 is not there at all.
        assert_eq!((v.anomalies.truncated, v.anomalies.lost), (2, 0));
    }

    #[test]
    fn a_single_event_implies_no_gap_unless_read_from_zero() {
        let ns = set(&[(7, 8)]);
        assert_eq!(gaps(&ns, false), 0);
        assert_eq!(gaps(&ns, true), 7);
        assert_eq!(gaps(&set(&[(3, 5), (8, 9)]), false), 3);
        assert_eq!(gaps(&RangeSet::new(), true), 0);
    }

    #[test]
    fn findings_weigh_each_class() {
        let mut findings = Findings::default();
        findings.anomalies(
            "a",
            &Anomalies {
                unacked_seen: 2,
                ..Anomalies::default()
            },
        );
        assert_eq!(findings.verdict(), Verdict::Pass);
        findings.anomalies(
            "a",
            &Anomalies {
                inferred_gaps: 1,
                ..Anomalies::default()
            },
        );
        assert_eq!(findings.verdict(), Verdict::Incomplete);
        findings.anomalies(
            "a",
            &Anomalies {
                lost: 4,
                ..Anomalies::default()
            },
        );
        assert_eq!(findings.verdict(), Verdict::Fail);
        assert_eq!(
            findings.reasons,
            vec!["a: 4 lost (acknowledged, never seen)"]
        );
        assert_eq!(
            verdict_text(findings.verdict(), &findings),
            "note: a: 2 unacked but seen (delivery failed, yet written)\n\
             not judged: a: 1 inferred gaps (no report says whether they were acknowledged)\n\
             verdict: FAIL (a: 4 lost (acknowledged, never seen))\n"
        );
    }

    #[test]
    fn the_json_has_one_key_per_class() {
        let json = serde_json::to_value(Anomalies::default()).unwrap();
        let keys: Vec<&str> = Anomalies::default().classes().map(|c| c.0).collect();
        assert_eq!(json.as_object().unwrap().len(), keys.len());
        for key in keys {
            assert_eq!(json[key], 0, "{key}");
        }
    }
}
