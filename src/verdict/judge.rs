//! Judging: a [`Tally`] and the producer runs' reports become a verdict, for one consumer
//! (`consume`) and for the whole fleet (`verify`).
//!
//! A consumer judges only what it could see ([`View`]): loss only when it read every partition
//! from its first offset to an end past the reports it knows; after resuming from committed
//! offsets, with part of the partitions, or stopped before the end, it still judges duplicates,
//! order and events beyond what a run sent, and leaves loss to `verify --group`.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::tally::latency::LatencySummary;
use crate::tally::ClockBound;
use crate::tally::{OriginVerdict, Reports, Tally};
use crate::verdict::{Accounting, Anomalies, Findings, Scope, Verdict};
use crate::wire::series::Series;

/// Files every origin's anomalies under their weight, and names each run that did not finish.
pub fn origins(origins: &BTreeMap<String, OriginVerdict>, findings: &mut Findings) {
    for (origin, o) in origins {
        findings.anomalies(origin, &o.anomalies);
        for (run, r) in o.runs.iter().filter(|(_, r)| r.state == "running") {
            let when = r.last_report.map_or("-".to_owned(), rfc3339);
            findings.incomplete.push(format!(
                "run {run} of {origin} did not finish: its last report ({when}) says running, \
                 {} acknowledged of {} sent; {} events after it",
                r.expected.unwrap_or(0),
                r.sent.unwrap_or(0),
                r.anomalies.unreported_tail
            ));
        }
        // Failed events that were written anyway are counted as unacked-seen; the others are
        // said here, so that a passing verdict does not hide a producer's failures.
        for (run, r) in &o.runs {
            let unseen = r
                .failed
                .unwrap_or(0)
                .saturating_sub(r.anomalies.unacked_seen);
            if unseen > 0 {
                findings.notes.push(format!(
                    "run {run} of {origin}: {unseen} of {} events failed delivery and are not on \
                     the topic (never acknowledged, so not lost)",
                    r.sent.unwrap_or(0)
                ));
            }
        }
        for (run, r) in o.runs.iter().filter(|(_, r)| r.state == "unreported") {
            findings.notes.push(format!(
                "run {run} of {origin}: {} events seen, but none of its run reports arrived (its \
                 producer could not write the control topic, or ran with --no-run-reports), so \
                 its loss is not judged",
                r.count
            ));
        }
    }
}

/// A time in seconds since the epoch, as RFC 3339 to the second.
pub(crate) fn rfc3339(seconds: f64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The anomalies and accounting of every origin added up.
pub fn totals(origins: &BTreeMap<String, OriginVerdict>) -> (Anomalies, Accounting) {
    let mut anomalies = Anomalies::default();
    let mut accounting = Accounting::default();
    for o in origins.values() {
        anomalies.add(&o.anomalies);
        accounting.add(&o.accounting);
    }
    (anomalies, accounting)
}

/// Where a consumer is against the ends of its partitions.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Ends {
    /// Still reading: the end is ahead, so loss is not judged yet.
    #[default]
    Reading,
    /// Stopped, and the cluster did not say where the partitions end.
    Unknown,
    /// Stopped this many records before the end of each assigned partition.
    Behind(BTreeMap<i32, u64>),
}

/// What one consumer could see of the topic when it stopped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// Partitions were ever assigned to it.
    pub assigned: bool,
    /// It held only some partitions at some point (its group shared them).
    pub partial: bool,
    /// Partitions where it started above the partition's first offset (resumed from the group's
    /// committed offsets).
    pub resumed: Vec<i32>,
    /// Every partition it read, it read from offset 0.
    pub from_zero: bool,
    /// Where it is against the ends of its partitions.
    pub ends: Ends,
    /// It stopped because `--expect` was reached.
    pub at_expect: bool,
    /// Records read again at an offset already read (after a rebalance), not counted twice.
    pub redelivered: u64,
    /// Polls whose offset on a partition went back without a rebalance.
    pub nonmonotonic_polls: u64,
    /// Offsets skipped between two polls of a partition without a rebalance.
    pub skipped_offsets: u64,
    /// The consumer group, for the wording.
    pub group: String,
    /// The consumer read uncommitted (aborted transactions' events are no aborted reads).
    pub read_uncommitted: bool,
    /// It was stopped while holding its group back (`--hold-until-done`), so it never joined.
    pub stopped_holding: bool,
}

impl View {
    fn behind_total(&self) -> u64 {
        match &self.ends {
            Ends::Behind(by) => by.values().sum(),
            _ => 0,
        }
    }

    /// What may be judged from this view.
    pub fn scope(&self) -> Scope<'static> {
        let whole = self.assigned
            && !self.partial
            && self.resumed.is_empty()
            && matches!(self.ends, Ends::Behind(_))
            && self.behind_total() == 0;
        Scope {
            whole,
            from_zero: whole && self.from_zero,
            ends: None,
            read_uncommitted: self.read_uncommitted,
        }
    }
}

/// What a consumer saw of one origin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OriginReport {
    /// Its runs judged (counts, anomalies, runs).
    #[serde(flatten)]
    pub verdict: OriginVerdict,
    /// End-to-end latency: consume time minus the event's `timestamp` (events stamped in the
    /// future left out).
    pub latency_ms: LatencySummary,
    /// How far ahead of the consumer's clock its events were stamped at most (0: none were).
    pub clock_ahead_ms_max: f64,
    /// Warm-up events (`produce --warmup`): counted and judged, left out of `latency_ms`.
    pub warmup_events: u64,
    /// How its clock compares with the broker's, from append times (a topic with
    /// `message.timestamp.type=LogAppendTime`; absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockBound>,
}

/// Events that reached the broker more than this long after their timestamps make an origin's
/// latencies suspect: its clock may be behind.
const IMPLAUSIBLE_APPEND_LAG_MS: f64 = 1000.0;

/// Notes on origins whose clock the broker's append times show ahead of the broker's, or
/// possibly behind it: their latencies are not to be trusted as they are.
pub fn clock_notes(tally: &Tally, findings: &mut Findings) {
    let mut origins: Vec<&String> = tally.origins().keys().collect();
    origins.sort();
    for origin in origins {
        let Some(clock) = tally.clock(origin) else {
            continue;
        };
        if clock.producer_ahead_ms_at_least > 0.0 {
            findings.notes.push(format!(
                "{origin}: its clock is at least {:.0} ms ahead of the broker's (events appended \
                 before their timestamps); its latencies are understated by as much",
                clock.producer_ahead_ms_at_least
            ));
        } else if clock.producer_behind_ms_at_most > IMPLAUSIBLE_APPEND_LAG_MS {
            findings.notes.push(format!(
                "{origin}: every event reached the broker at least {:.0} ms after its timestamp: \
                 its clock is behind the broker's by up to that much, or the events waited that \
                 long; its latencies may be overstated",
                clock.producer_behind_ms_at_most
            ));
        }
    }
}

/// A consumer's final (or running) report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumeReport {
    /// Valid events consumed.
    pub consumed: u64,
    /// Records that were not events.
    pub malformed: u64,
    /// Records read again at an offset already read, not counted twice.
    pub redelivered: u64,
    /// The verdict.
    pub verdict: Verdict,
    /// Why: failures, what could not be judged, notes.
    #[serde(flatten)]
    pub findings: Findings,
    /// `--expect`, if given.
    pub expected: Option<u64>,
    /// Seconds from start to report.
    pub elapsed_s: f64,
    /// The consumer read only some partitions (a group shared them).
    pub partial_assignment: bool,
    /// Loss was judged: the consumer read every partition from its start to its end.
    pub loss_judged: bool,
    /// Records left between where it stopped and the end of its partitions.
    pub behind: u64,
    /// Every anomaly class, summed over origins.
    #[serde(flatten)]
    pub anomalies: Anomalies,
    /// Where every event went.
    pub accounting: Accounting,
    /// Per origin.
    pub origins: BTreeMap<String, OriginReport>,
    /// End-to-end latency of every origin's events together (`None` before the first).
    pub latency_ms: Option<LatencySummary>,
    /// The histogram of those (microseconds), for the HTML page.
    #[serde(skip)]
    pub latency_us: Option<Histogram<u64>>,
    /// Events consumed over time, sampled about once a second by the consumer.
    pub consumed_per_s: Series,
    /// Backlog mode (`--hold-until-done`): the hold and the drain that followed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
}

/// Why a consumer's hold (`--hold-until-done`) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldEnd {
    /// Still holding (a running report).
    Holding,
    /// Every run announced had finished (and as many had reported as `--hold-runs` asked).
    RunsFinished,
    /// Nothing new on the control topic for `--idle-timeout`: the drain may race a producer.
    IdleTimeout,
    /// A signal stopped the consumer during the hold.
    Stopped,
}

/// A backlog built while the consumer held its group back, and how fast it was drained: what an
/// operator finding the cluster's drain capacity reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drain {
    /// Seconds from the consumer's start to the end of the hold (it joined its group then).
    pub held_s: f64,
    /// Why the hold ended.
    pub hold_ended: HoldEnd,
    /// Producer runs of the topic announced on the control topic when the hold ended.
    pub runs: u64,
    /// Of those, how many had finished.
    pub runs_finished: u64,
    /// Events those runs had acknowledged when the hold ended: the backlog.
    pub backlog: u64,
    /// Seconds from the end of the hold to the first assignment (joining the group; `None`
    /// before one).
    pub join_s: Option<f64>,
    /// Valid events consumed in the drain.
    pub events: u64,
    /// Seconds from the first assignment to the last record read (while draining: to now).
    pub seconds: Option<f64>,
    /// `events / seconds`: the drain rate (`None` before an event was drained).
    pub events_per_s: Option<f64>,
    /// The drain ended with every run announced finished and everything it acknowledged
    /// consumed (`--until-complete`'s condition), not on a timeout or a signal.
    pub complete: bool,
}

impl Drain {
    /// The drain's events over its seconds, once both are known and positive.
    pub fn rate(events: u64, seconds: Option<f64>) -> Option<f64> {
        seconds
            .filter(|&s| s > 0.0 && events > 0)
            .map(|s| events as f64 / s)
    }

    /// A note when the hold ended on the idle timeout rather than on its condition: the drain
    /// may have raced a producer.
    pub fn notes(&self, findings: &mut Findings) {
        if self.hold_ended == HoldEnd::IdleTimeout {
            findings.notes.push(format!(
                "the hold ended on --idle-timeout, before what it waited for ({} of {} runs \
                 finished, {} events acknowledged): the drain may have raced a producer",
                self.runs_finished, self.runs, self.backlog
            ));
        }
    }
}

/// Lists partitions as `0, 3, 4`.
fn partition_list<'a>(partitions: impl IntoIterator<Item = &'a i32>) -> String {
    let list: Vec<String> = partitions.into_iter().map(i32::to_string).collect();
    list.join(", ")
}

/// Judges what one consumer saw.
pub fn consume(
    tally: &Tally,
    reports: &Reports,
    view: &View,
    expected: Option<u64>,
    elapsed_s: f64,
) -> ConsumeReport {
    let scope = view.scope();
    let verdicts = tally.judge(reports, scope);
    let mut findings = Findings::default();
    origins(&verdicts, &mut findings);
    let behind = view.behind_total();
    if view.stopped_holding {
        findings.incomplete.push(
            "stopped while holding the group back (--hold-until-done): nothing was consumed"
                .to_owned(),
        );
    } else if !view.assigned {
        findings.incomplete.push(format!(
            "no partitions were assigned to this consumer by group {} (the group coordinator \
             may still be waiting out a previous member's session)",
            view.group
        ));
    } else if verdicts.is_empty() && !view.partial && tally.consumed() == 0 {
        findings.reasons.push("no events were consumed".to_owned());
    }
    match &view.ends {
        Ends::Behind(by) if behind > 0 => {
            let at = partition_list(by.iter().filter(|(_, &n)| n > 0).map(|(p, _)| p));
            let line = format!("stopped {behind} records before the end of partitions {at}");
            if view.at_expect {
                findings.notes.push(format!("{line} (--expect reached)"));
            } else {
                findings.incomplete.push(line);
            }
        }
        Ends::Unknown if view.assigned => findings.incomplete.push(
            "the cluster did not say where its partitions end, so loss was not judged".to_owned(),
        ),
        _ => {}
    }
    if !view.resumed.is_empty() {
        findings.notes.push(format!(
            "resumed from committed offsets on partitions {}: loss is judged by `verify --group`",
            partition_list(&view.resumed)
        ));
    }
    if view.partial {
        findings.notes.push(
            "read only some partitions (its group shared them): loss is judged by `verify --group`"
                .to_owned(),
        );
    }
    if view.redelivered > 0 {
        findings.notes.push(format!(
            "{} records read again after a rebalance (not counted twice)",
            view.redelivered
        ));
    }
    if let Some(expected) = expected {
        let consumed = tally.consumed();
        if consumed < expected
            && view.assigned
            && matches!(view.ends, Ends::Behind(_))
            && behind == 0
        {
            findings
                .reasons
                .push(format!("expected {expected} events, consumed {consumed}"));
        }
    }
    let polls = Anomalies {
        nonmonotonic_polls: view.nonmonotonic_polls,
        skipped_offsets: view.skipped_offsets,
        ..Anomalies::default()
    };
    findings.anomalies(&format!("member of group {}", view.group), &polls);
    let (mut anomalies, accounting) = totals(&verdicts);
    let latency = tally.latency_histogram();
    anomalies.add(&polls);
    let origins = verdicts
        .into_iter()
        .map(|(origin, verdict)| {
            let (latency_ms, clock_ahead_ms_max) = tally
                .latency(&origin)
                .unwrap_or((LatencySummary::default(), 0.0));
            let report = OriginReport {
                warmup_events: tally.warmup_events(&origin),
                clock: tally.clock(&origin),
                verdict,
                latency_ms,
                clock_ahead_ms_max,
            };
            (origin, report)
        })
        .collect();
    clock_notes(tally, &mut findings);
    ConsumeReport {
        consumed: tally.consumed(),
        malformed: tally.malformed(),
        redelivered: view.redelivered,
        verdict: findings.verdict(),
        findings,
        expected,
        elapsed_s,
        partial_assignment: view.partial,
        loss_judged: scope.whole,
        behind,
        anomalies,
        accounting,
        origins,
        latency_ms: Some(LatencySummary::of(&latency)).filter(|_| !latency.is_empty()),
        latency_us: Some(latency),
        consumed_per_s: Series::default(),
        drain: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tally::keep_latest;
    use crate::tally::ranges::RangeSet;
    use crate::wire::control::{to_pairs, RunReport, RunState};
    use crate::wire::event::{derived_id, run_key, EventEncoder};

    const RUN: &str = "5f0c6d3e9a8b4c1d8e7f6a5b4c3d2e1f";

    /// A tally of `ns` of one run, and that run's finished report acknowledging `0..acked`.
    fn seen_and_reported(ns: std::ops::Range<u64>, acked: u64) -> (Tally, Reports) {
        let mut tally = Tally::new();
        let mut encoder = EventEncoder::new("a");
        for n in ns {
            let value = encoder.encode(1.0, derived_id(run_key(RUN), n), n).to_vec();
            tally.record(Some(&value), Some(RUN.as_bytes()), 0, 2.0);
        }
        let mut set = RangeSet::new();
        set.insert_range(0..acked);
        let mut reports = Reports::default();
        keep_latest(
            &mut reports,
            RunReport {
                run: RUN.into(),
                origin: "a".into(),
                topic: "t".into(),
                state: RunState::Finished,
                sent: acked,
                acked: to_pairs(&set),
                failed: vec![],
                aborted: vec![],
                acked_high: vec![],
                target_rate: 0.0,
                series: Default::default(),
                ack_latency_us: String::new(),
                started: 1.0,
                updated: 2.0,
            },
        );
        (tally, reports)
    }

    fn whole_view() -> View {
        View {
            assigned: true,
            from_zero: true,
            ends: Ends::Behind(BTreeMap::from([(0, 0)])),
            group: "g1".into(),
            ..View::default()
        }
    }

    #[test]
    fn a_whole_view_judges_loss() {
        let (tally, reports) = seen_and_reported(0..1990, 2000);
        let report = consume(&tally, &reports, &whole_view(), None, 1.0);
        assert_eq!(report.verdict, Verdict::Fail);
        assert_eq!(
            report.findings.reasons,
            vec!["a: 10 lost (acknowledged, never seen)"]
        );
        assert!(report.loss_judged);
        let json: serde_json::Value =
            serde_json::from_str(&crate::report::to_json(&report)).unwrap();
        assert_eq!(json["lost"], 10);
        assert_eq!(json["origins"]["a"]["lost"], 10);
        assert_eq!(json["origins"]["a"]["count"], 1990);
        assert_eq!(json["verdict"], "fail");
    }

    /// Probe case 4: a consumer restarted in its group resumes from the committed offsets; the
    /// events before them were consumed by its earlier self, not lost.
    #[test]
    fn a_resumed_consumer_leaves_loss_to_verify_group() {
        let (tally, reports) = seen_and_reported(1000..2000, 2000);
        let view = View {
            resumed: vec![0],
            from_zero: false,
            ..whole_view()
        };
        let report = consume(&tally, &reports, &view, None, 1.0);
        assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.findings);
        assert_eq!(report.anomalies.lost, 0);
        assert_eq!(
            report.findings.notes,
            vec!["resumed from committed offsets on partitions 0: loss is judged by `verify --group`"]
        );
    }

    /// Probe case 5: stopping on idle before the end of the partitions is not loss.
    #[test]
    fn stopping_before_the_end_is_incomplete_not_loss() {
        let (tally, reports) = seen_and_reported(0..5729, 30000);
        let view = View {
            ends: Ends::Behind(BTreeMap::from([(0, 24271), (1, 0)])),
            ..whole_view()
        };
        let report = consume(&tally, &reports, &view, None, 1.0);
        assert_eq!(report.verdict, Verdict::Incomplete);
        assert_eq!(report.anomalies.lost, 0);
        assert_eq!(
            report.findings.incomplete,
            vec!["stopped 24271 records before the end of partitions 0"]
        );
        assert_eq!(crate::error::ExitCode::Incomplete as u8, 3);
        assert_eq!(
            report.verdict.exit_code(),
            crate::error::ExitCode::Incomplete
        );
    }

    /// Probe case 5, after a consumer SIGKILL: a member that never got partitions says so.
    #[test]
    fn a_consumer_never_assigned_says_so() {
        let view = View {
            group: "relation-9-1".into(),
            ..View::default()
        };
        let report = consume(&Tally::new(), &Reports::default(), &view, None, 60.0);
        assert_eq!(report.verdict, Verdict::Incomplete);
        assert_eq!(
            report.findings.incomplete,
            vec![
                "no partitions were assigned to this consumer by group relation-9-1 (the group \
                  coordinator may still be waiting out a previous member's session)"
            ]
        );
    }

    #[test]
    fn a_consumer_stopped_while_holding_says_so() {
        let view = View {
            group: "g1".into(),
            stopped_holding: true,
            ..View::default()
        };
        let report = consume(&Tally::new(), &Reports::default(), &view, None, 3.0);
        assert_eq!(report.verdict, Verdict::Incomplete);
        assert_eq!(
            report.findings.incomplete,
            vec!["stopped while holding the group back (--hold-until-done): nothing was consumed"]
        );
    }

    #[test]
    fn unknown_ends_are_incomplete_and_reading_is_not_judged_yet() {
        let (tally, reports) = seen_and_reported(0..5, 10);
        let unknown = View {
            ends: Ends::Unknown,
            ..whole_view()
        };
        let report = consume(&tally, &reports, &unknown, None, 1.0);
        assert_eq!(report.verdict, Verdict::Incomplete);
        assert_eq!(
            report.findings.incomplete,
            vec!["the cluster did not say where its partitions end, so loss was not judged"]
        );
        let reading = View {
            ends: Ends::Reading,
            ..whole_view()
        };
        let report = consume(&tally, &reports, &reading, None, 1.0);
        assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.findings);
        assert!(!report.loss_judged);
    }

    #[test]
    fn offsets_going_back_without_a_rebalance_fail() {
        let (tally, reports) = seen_and_reported(0..10, 10);
        let view = View {
            nonmonotonic_polls: 2,
            skipped_offsets: 1,
            ..whole_view()
        };
        let report = consume(&tally, &reports, &view, None, 1.0);
        assert_eq!(report.verdict, Verdict::Fail);
        assert_eq!(
            report.findings.reasons,
            vec![
                "member of group g1: 2 nonmonotonic polls (offsets went back without a rebalance)"
            ]
        );
        assert_eq!(
            report.findings.notes,
            vec!["member of group g1: 1 skipped offsets without a rebalance"]
        );
        assert_eq!(
            (
                report.anomalies.nonmonotonic_polls,
                report.anomalies.skipped_offsets
            ),
            (2, 1)
        );
    }

    #[test]
    fn nothing_consumed_from_a_whole_view_fails() {
        let report = consume(&Tally::new(), &Reports::default(), &whole_view(), None, 1.0);
        assert_eq!(report.findings.reasons, vec!["no events were consumed"]);
        let short = consume(
            &Tally::new(),
            &Reports::default(),
            &whole_view(),
            Some(3),
            1.0,
        );
        assert_eq!(
            short.findings.reasons,
            vec!["no events were consumed", "expected 3 events, consumed 0"]
        );
    }

    #[test]
    fn a_partial_assignment_does_not_judge_gaps() {
        let (tally, reports) = seen_and_reported(0..5, 10);
        let view = View {
            partial: true,
            ..whole_view()
        };
        let report = consume(&tally, &reports, &view, None, 1.0);
        assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.findings);
        assert!(!report.loss_judged);
    }
}
