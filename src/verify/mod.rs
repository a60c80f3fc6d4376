//! `verify`: one verdict for a whole fleet.
//!
//! Reads the control topic (every producer run's latest report: what the broker acknowledged,
//! what failed) and then the data topic from the beginning, without a consumer group, and compares
//! per origin and per run what was acknowledged with what is on the topic. Reading the reports
//! first means every event a report calls acknowledged was written before the data topic is read.

pub mod against;

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use rdkafka::message::Message;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::kafka::config::Isolation;
use crate::kafka::reader::{read_all_isolated, read_to_end, LogEnds};
use crate::kafka::session::Session;
use crate::report::html::{Latency, OriginRow, Page};
use crate::report::{self, origin_table, OutputFormat};
use crate::tally::latency::LatencySummary;
use crate::tally::ranges::RangeSet;
use crate::tally::{keep_latest, OriginVerdict, Reports, Tally};
use crate::verdict::judge;
use crate::verdict::{verdict_text, Accounting, Anomalies, Findings, Scope, Verdict};
use crate::wire::control::{from_pairs, ControlRecord, MemberReport};
use crate::wire::event::python_timestamp;
use crate::wire::series::{decode_histogram, Series};
use crate::wire::{run_header_and_marks, Marks};
use against::{Comparison, Match};
use hdrhistogram::Histogram;

/// What `verify` does.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The data topic.
    pub topic: String,
    /// The control topic with the run reports.
    pub control_topic: String,
    /// An aggregation job's answer to check.
    pub against: Option<std::path::PathBuf>,
    /// A consumer group whose members' reports to check for complete consumption.
    pub group: Option<String>,
    /// Report format.
    pub output: OutputFormat,
    /// Committed records only, or aborted transactions' too.
    pub isolation: Isolation,
}

/// The aggregation job comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgainstReport {
    /// Row by row.
    pub rows: Vec<Comparison>,
    /// Origins on the topic that the job did not list.
    pub unlisted: Vec<String>,
}

/// What a consumer group consumed, from its members' reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupVerdict {
    /// The group id.
    pub group: String,
    /// Members (consumer processes) that reported.
    pub members: usize,
    /// Events the members consumed, redeliveries included.
    pub consumed: u64,
    /// Records consumed more than once (by two members around a rebalance, or after a
    /// restart): redeliveries, not producer duplicates.
    pub redelivered: u64,
    /// Records of the topic that no member consumed.
    pub unconsumed: u64,
    /// Events consumed per origin, summed over members.
    pub counts: BTreeMap<String, u64>,
    /// End-to-end latency of the whole group, from every member's histogram merged.
    pub latency_ms: Option<LatencySummary>,
    /// That merged histogram (microseconds), for the HTML page.
    #[serde(skip)]
    pub latency_us: Option<Histogram<u64>>,
    /// Each member's events consumed over time, from its latest report: drawn on the HTML
    /// page as their sum (each member report carries its own in the control topic).
    #[serde(skip)]
    pub consumed_per_s: Vec<Series>,
}

/// The fleet verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Data topic.
    pub topic: String,
    /// Control topic.
    pub control_topic: String,
    /// Pass, fail or incomplete.
    pub verdict: Verdict,
    /// Why: failures, what could not be judged, notes.
    #[serde(flatten)]
    pub findings: Findings,
    /// Events on the data topic.
    pub consumed: u64,
    /// Records on the data topic that are not events.
    pub malformed: u64,
    /// Every anomaly class, summed over origins.
    #[serde(flatten)]
    pub anomalies: Anomalies,
    /// Where every event went.
    pub accounting: Accounting,
    /// Acknowledgement latency of the whole fleet, from every run's histogram merged (exact
    /// fleet-wide percentiles, not averages of percentiles).
    pub ack_latency_ms: Option<LatencySummary>,
    /// That merged histogram (microseconds), for the HTML page.
    #[serde(skip)]
    pub ack_latency_us: Option<Histogram<u64>>,
    /// Per origin.
    pub origins: BTreeMap<String, OriginVerdict>,
    /// The aggregation job comparison, with `--against`.
    pub against: Option<AgainstReport>,
    /// The consumer group's consumption, with `--group`.
    pub group: Option<GroupVerdict>,
}

/// Runs `verify`: read the control topic, read the data topic, judge, then the group and the
/// aggregation job. Must be called from a blocking thread.
pub fn verify(session: &Session, options: &VerifyOptions) -> Result<VerifyReport> {
    let job = options.against.as_deref().map(against::read).transpose()?;
    let control = read_control(session, options)?;
    let data = read_data(session, options)?;
    Ok(assess(options, &control, &data, job))
}

/// What the control topic says: every run's latest report, and every member's of `--group`.
#[derive(Debug, Default)]
struct Control {
    /// The latest report of every producer run of the data topic.
    reports: Reports,
    /// The latest report of every member of `--group`, by member id.
    members: HashMap<String, MemberReport>,
}

impl Control {
    /// Takes one control record (others' topics and groups, and what does not parse, aside).
    fn take(&mut self, payload: Option<&[u8]>, options: &VerifyOptions) {
        match payload.and_then(ControlRecord::parse) {
            Some(ControlRecord::ProducerRun(report)) if report.topic == options.topic => {
                keep_latest(&mut self.reports, report);
            }
            Some(ControlRecord::ConsumerMember(member))
                if member.topic == options.topic
                    && options.group.as_ref() == Some(&member.group) =>
            {
                let newer = (self.members.get(&member.member))
                    .is_none_or(|known| known.updated <= member.updated);
                if newer {
                    self.members.insert(member.member.clone(), member);
                }
            }
            _ => {}
        }
    }
}

/// What the data topic holds, from each partition's first offset to its end.
#[derive(Debug, Default)]
struct Data {
    /// The events counted by origin and run.
    tally: Tally,
    /// The offsets read of each partition.
    offsets: BTreeMap<i32, RangeSet>,
    /// Where each partition ended when reading began.
    ends: LogEnds,
}

impl Data {
    /// Takes one record of the data topic, with its run header and its [`Marks`]; `now` is the reader's clock, for future timestamps.
    fn take(
        &mut self,
        payload: Option<&[u8]>,
        (run, marks): (Option<&[u8]>, Marks),
        partition: i32,
        offset: i64,
        now: f64,
    ) {
        self.tally
            .record_marked(payload, run, marks, partition, now);
        if let Ok(offset) = u64::try_from(offset) {
            self.offsets.entry(partition).or_default().insert(offset);
        }
    }
}

/// Every run's latest report and every member's of `--group`, from the control topic. Read
/// before the data topic, so every event a report calls acknowledged is on the topic by then.
fn read_control(session: &Session, options: &VerifyOptions) -> Result<Control> {
    let mut control = Control::default();
    let found = read_to_end(session, &options.control_topic, |message| {
        control.take(message.payload(), options)
    })?;
    if !found {
        tracing::warn!(
            control_topic = %options.control_topic,
            "no control topic: no run reports, so loss at the tail of a run cannot be seen"
        );
    }
    Ok(control)
}

/// The data topic from its first offset to its end: the tally and the offsets read.
fn read_data(session: &Session, options: &VerifyOptions) -> Result<Data> {
    let mut data = Data::default();
    let now = python_timestamp(SystemTime::now());
    let found = read_all_isolated(session, &options.topic, options.isolation, |message| {
        let (partition, offset) = (message.partition(), message.offset());
        data.take(
            message.payload(),
            run_header_and_marks(message),
            partition,
            offset,
            now,
        );
    })?;
    let Some(ends) = found else {
        return Err(Error::TopicMissing {
            topic: options.topic.clone(),
            waited: session.connect_timeout(),
        });
    };
    data.ends = ends;
    Ok(data)
}

/// The verdict on what was read: the runs against the topic, then the group, then the job.
fn assess(
    options: &VerifyOptions,
    control: &Control,
    data: &Data,
    job: Option<Vec<against::JobRow>>,
) -> VerifyReport {
    let read = Read {
        offsets: &data.offsets,
        ends: &data.ends,
        isolation: options.isolation,
    };
    let (topic, control_topic) = (&options.topic, &options.control_topic);
    let mut report = judge(topic, control_topic, &data.tally, &control.reports, read);
    if let Some(group) = &options.group {
        let verdict = judge_group(group, &control.members, &data.offsets);
        group_findings(&verdict, options, &mut report.findings);
        report.group = Some(verdict);
    }
    if let Some(rows) = job {
        let seen = report
            .origins
            .iter()
            .map(|(origin, o)| (origin.clone(), o.count))
            .collect();
        let (rows, unlisted) = against::compare(&rows, &seen);
        against_findings(&rows, &unlisted, &mut report.findings);
        report.against = Some(AgainstReport { rows, unlisted });
    }
    report.verdict = report.findings.verdict();
    report
}

/// Why the group's consumption fails, if it does.
fn group_findings(verdict: &GroupVerdict, options: &VerifyOptions, findings: &mut Findings) {
    if verdict.members == 0 {
        findings.reasons.push(format!(
            "no member of consumer group {} reported on {}",
            verdict.group, options.control_topic
        ));
    } else if verdict.unconsumed > 0 {
        findings.reasons.push(format!(
            "consumer group {} did not consume {} records of {}",
            verdict.group, verdict.unconsumed, options.topic
        ));
    }
}

/// Why the aggregation job's answer fails, row by row.
fn against_findings(rows: &[Comparison], unlisted: &[String], findings: &mut Findings) {
    for row in rows {
        let reason = match (row.result, &row.origin) {
            (Match::Equal, _) => continue,
            (Match::Differs, Some(origin)) => format!(
                "aggregation job counts {} for {origin}, the topic has {} ({:+})",
                row.job_count,
                row.seen.unwrap_or(0),
                row.difference.unwrap_or(0)
            ),
            (Match::Ambiguous, _) => format!(
                "aggregation job row '{}' fits several origins: {}",
                row.job_origin,
                row.candidates.join(", ")
            ),
            _ => format!(
                "aggregation job row '{}' matches no origin on the topic",
                row.job_origin
            ),
        };
        findings.reasons.push(reason);
    }
    for origin in unlisted {
        findings
            .reasons
            .push(format!("aggregation job has no row for {origin}"));
    }
}

/// What `verify` read of the data topic.
#[derive(Debug, Clone, Copy)]
pub struct Read<'a> {
    /// The offsets read of each partition, from its first offset to its end.
    pub offsets: &'a BTreeMap<i32, RangeSet>,
    /// Where each partition ended.
    pub ends: &'a LogEnds,
    /// Whether aborted transactions' records were read too.
    pub isolation: Isolation,
}

/// Compares what runs reported with what the topic holds.
pub fn judge(
    topic: &str,
    control_topic: &str,
    tally: &Tally,
    reports: &Reports,
    read: Read<'_>,
) -> VerifyReport {
    let scope = Scope {
        whole: true,
        from_zero: read.offsets.values().all(|r| r.start() == Some(0)),
        ends: Some(read.ends),
        read_uncommitted: read.isolation == Isolation::ReadUncommitted,
    };
    let origins = tally.judge(reports, scope);
    let mut findings = Findings::default();
    crate::verdict::judge::clock_notes(tally, &mut findings);
    if origins.is_empty() {
        findings.reasons.push(format!(
            "nothing to verify: no events on {topic} and no run reports"
        ));
    }
    judge::origins(&origins, &mut findings);
    let (anomalies, accounting) = judge::totals(&origins);
    let ack_latency_us = merged_histogram(reports.values().map(|r| r.ack_latency_us.as_str()));
    VerifyReport {
        topic: topic.to_owned(),
        control_topic: control_topic.to_owned(),
        verdict: findings.verdict(),
        findings,
        consumed: tally.consumed(),
        malformed: tally.malformed(),
        anomalies,
        accounting,
        ack_latency_ms: ack_latency_us.as_ref().map(LatencySummary::of),
        ack_latency_us,
        origins,
        against: None,
        group: None,
    }
}

/// Encoded histograms merged into one (`None` when there is none, or all are empty).
fn merged_histogram<'a>(encoded: impl Iterator<Item = &'a str>) -> Option<Histogram<u64>> {
    let mut merged: Option<Histogram<u64>> = None;
    for histogram in encoded.filter_map(decode_histogram) {
        match &mut merged {
            Some(all) => {
                if all.add(&histogram).is_err() {
                    tracing::warn!("a latency histogram does not fit the others; left out");
                }
            }
            None => merged = Some(histogram),
        }
    }
    merged.filter(|h| !h.is_empty())
}

/// What a group consumed of the records `on_topic` (offsets per partition), from its members'
/// latest reports.
pub fn judge_group(
    group: &str,
    members: &HashMap<String, MemberReport>,
    on_topic: &BTreeMap<i32, RangeSet>,
) -> GroupVerdict {
    let mut union: BTreeMap<i32, RangeSet> = BTreeMap::new();
    let mut total = 0;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for member in members.values() {
        for offsets in &member.offsets {
            let consumed = from_pairs(&offsets.ranges);
            total += consumed.len();
            let merged = union.entry(offsets.partition).or_default();
            for range in consumed.ranges() {
                merged.insert_range(range);
            }
        }
        for (origin, count) in &member.counts {
            *counts.entry(origin.clone()).or_default() += count;
        }
    }
    let unconsumed = on_topic
        .iter()
        .map(|(partition, offsets)| {
            offsets.len() - union.get(partition).map_or(0, |u| u.overlap(offsets))
        })
        .sum();
    let latency_us = merged_histogram(members.values().map(|m| m.latency_us.as_str()));
    GroupVerdict {
        group: group.to_owned(),
        members: members.len(),
        consumed: members.values().map(|m| m.consumed).sum(),
        redelivered: total - union.values().map(RangeSet::len).sum::<u64>(),
        unconsumed,
        counts,
        latency_ms: latency_us.as_ref().map(LatencySummary::of),
        latency_us,
        consumed_per_s: members.values().map(|m| m.consumed_per_s.clone()).collect(),
    }
}

/// The aggregation job's rows against the topic, for the text report.
fn against_text(against: &AgainstReport) -> String {
    use std::fmt::Write as _;
    let mut text = "aggregation job:\n".to_owned();
    for row in &against.rows {
        let _ = writeln!(
            text,
            "  {:<24} job {:>8}  topic {:>8}  {:?}",
            row.job_origin,
            row.job_count,
            row.seen.map_or("-".to_owned(), |s| s.to_string()),
            row.result
        );
    }
    text
}

/// The report as a page: the fleet's runs over time, its latency, every origin.
pub fn page(report: &VerifyReport) -> Page {
    let mut latencies = Vec::new();
    if let Some(summary) = report.ack_latency_ms {
        latencies.push(Latency {
            name: "acknowledgement latency, whole fleet (merged histograms)".into(),
            key: "ack_latency_ms".into(),
            summary,
            histogram: report.ack_latency_us.clone(),
        });
    }
    let group = report.group.as_ref();
    if let Some(summary) = group.and_then(|g| g.latency_ms) {
        latencies.push(Latency {
            name: "end-to-end latency, whole group (merged histograms)".into(),
            key: "group.latency_ms".into(),
            summary,
            histogram: group.and_then(|g| g.latency_us.clone()),
        });
    }
    let mut totals = report::totals(report.consumed, &report.anomalies);
    totals.insert(
        1,
        (
            "expected".to_owned(),
            report.origins.values().map(|o| o.expected).sum(),
        ),
    );
    Page {
        title: format!("verify {}", report.topic),
        verdict: report.verdict,
        findings: report.findings.clone(),
        totals,
        accounting: report.accounting.sum_line(),
        runs: report::run_lines(report.origins.iter()),
        consumed: group.map(|g| g.consumed_per_s.clone()).unwrap_or_default(),
        origins: report
            .origins
            .iter()
            .map(|(origin, o)| OriginRow {
                origin: origin.clone(),
                expected: Some(o.expected),
                count: o.count,
                anomalies: o.anomalies,
            })
            .collect(),
        latencies,
        json: serde_json::to_string_pretty(report).expect("reports serialise"),
    }
}

/// The report as text: the Spark-shaped table, the runs, the job comparison, the verdict.
pub fn text(report: &VerifyReport) -> String {
    use std::fmt::Write as _;
    let mut text = origin_table(report.origins.iter().map(|(o, v)| (o.as_str(), v.count)));
    for (origin, o) in &report.origins {
        let _ = writeln!(
            text,
            "{origin}: count {}, acked {}, {}",
            o.count,
            o.expected,
            o.anomalies.summary()
        );
        for (run, r) in &o.runs {
            let expected = r.expected.map_or("-".to_owned(), |e| e.to_string());
            let _ = writeln!(
                text,
                "  run {run} [{}]: acked {expected}, seen {}, {}",
                r.state,
                r.count,
                r.anomalies.summary()
            );
        }
    }
    if let Some(l) = &report.ack_latency_ms {
        let _ = writeln!(
            text,
            "ack latency ms, whole fleet (merged histograms): p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
            l.p50, l.p99, l.p999, l.max
        );
    }
    if let Some(group) = &report.group {
        if let Some(l) = &group.latency_ms {
            let _ = writeln!(
                text,
                "end-to-end latency ms, whole group (merged histograms): p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
                l.p50, l.p99, l.p999, l.max
            );
        }
        let _ = writeln!(
            text,
            "consumer group {}: {} members consumed {} events ({} redelivered), {} records not consumed",
            group.group, group.members, group.consumed, group.redelivered, group.unconsumed
        );
    }
    if let Some(against) = &report.against {
        text.push_str(&against_text(against));
    }
    let _ = writeln!(
        text,
        "{} events on {} ({} malformed records skipped): {}",
        report.consumed,
        report.topic,
        report.malformed,
        report.accounting.sum_line()
    );
    text.push_str(&verdict_text(report.verdict, &report.findings));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tally::ranges::RangeSet;
    use crate::wire::control::{to_pairs, RunReport, RunState};
    use crate::wire::event::{derived_id, run_key, EventEncoder};

    /// Run ids as the producer makes them (32 hex digits).
    const R1: &str = "11111111111111111111111111111111";
    const R2: &str = "22222222222222222222222222222222";

    /// One record of a recorded topic (tests/data/recorded-run).
    #[derive(serde::Deserialize)]
    struct Recorded {
        partition: i32,
        offset: i64,
        run: Option<String>,
        value: String,
    }

    fn recorded(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/recorded-run")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn records(name: &str) -> Vec<Recorded> {
        let text = recorded(name);
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// A real run recorded on Apache Kafka (two producers, one group member) judged again prints
    /// the very bytes `verify` printed when it was recorded, JSON and text.
    #[test]
    fn a_recorded_run_gives_the_recorded_report() {
        let options = VerifyOptions {
            topic: "rec".into(),
            control_topic: "rec-kta-control".into(),
            against: None,
            group: Some("rec-g1".into()),
            output: OutputFormat::Json,
            isolation: Isolation::ReadCommitted,
        };
        let mut control = Control::default();
        for record in records("control.jsonl") {
            control.take(Some(record.value.as_bytes()), &options);
        }
        let mut data = Data::default();
        // Any reader's clock after the run (no event is then stamped in the future).
        let now = 2_000_000_000.0;
        for r in records("data.jsonl") {
            let run = r.run.as_deref().map(str::as_bytes);
            data.take(
                Some(r.value.as_bytes()),
                (run, Marks::default()),
                r.partition,
                r.offset,
                now,
            );
        }
        data.ends = serde_json::from_str(&recorded("ends.json")).unwrap();
        assert_eq!(data.tally.consumed(), 800);

        let report = assess(&options, &control, &data, None);
        assert_eq!(
            crate::report::to_json(&report),
            recorded("verify.json").trim_end()
        );
        assert_eq!(text(&report), recorded("verify.txt"));
    }

    fn value(origin: &str, run: &str, n: u64) -> Vec<u8> {
        EventEncoder::new(origin)
            .encode(1.0, derived_id(run_key(run), n), n)
            .to_vec()
    }

    fn feed(tally: &mut Tally, origin: &str, run: &str, ns: impl IntoIterator<Item = u64>) {
        for n in ns {
            tally.record(Some(&value(origin, run, n)), Some(run.as_bytes()), 0, 2.0);
        }
    }

    fn report(origin: &str, run: &str, acked: std::ops::Range<u64>, failed: &[u64]) -> RunReport {
        let mut acked_set = RangeSet::new();
        acked_set.insert_range(acked);
        let mut failed_set = RangeSet::new();
        failed.iter().for_each(|&n| {
            failed_set.insert(n);
        });
        RunReport {
            run: run.into(),
            origin: origin.into(),
            topic: "t".into(),
            state: RunState::Finished,
            sent: acked_set.end().max(failed_set.end()),
            acked: to_pairs(&acked_set),
            failed: to_pairs(&failed_set),
            aborted: vec![],
            acked_high: vec![],
            target_rate: 0.0,
            series: Default::default(),
            ack_latency_us: String::new(),
            started: 1.0,
            updated: 1_707_128_717.0,
        }
    }

    fn reports(list: Vec<RunReport>) -> Reports {
        let mut reports = Reports::default();
        list.into_iter().for_each(|r| keep_latest(&mut reports, r));
        reports
    }

    /// Judges as `verify` does after reading every partition from offset 0 to its end.
    fn judge_all(tally: &Tally, reports: &Reports) -> VerifyReport {
        let records = tally.consumed() + tally.malformed();
        let mut read = RangeSet::new();
        read.insert_range(0..records);
        let offsets = BTreeMap::from([(0, read)]);
        let ends = LogEnds::from([(0, records as i64)]);
        let read = Read {
            offsets: &offsets,
            ends: &ends,
            isolation: Isolation::ReadCommitted,
        };
        judge("t", "c", tally, reports, read)
    }

    #[test]
    fn tail_loss_is_lost_and_fails() {
        let mut tally = Tally::new();
        feed(&mut tally, "a", R1, 0..90);
        let verdict = judge_all(&tally, &reports(vec![report("a", R1, 0..100, &[])]));
        assert_eq!(verdict.origins["a"].anomalies.lost, 10);
        // Which ones, for the page's timeline.
        let run = verdict.origins["a"].runs.values().next().unwrap();
        assert_eq!(
            run.lost_n,
            vec![std::ops::Range {
                start: 90,
                end: 100
            }]
        );
        assert_eq!(verdict.verdict, Verdict::Fail);
        assert_eq!(
            verdict.findings.reasons,
            vec!["a: 10 lost (acknowledged, never seen)"]
        );
    }

    #[test]
    fn a_run_whose_every_event_was_lost_is_seen() {
        let tally = Tally::new();
        let verdict = judge_all(&tally, &reports(vec![report("ghost", R1, 0..50, &[])]));
        assert_eq!(verdict.origins["ghost"].anomalies.lost, 50);
        assert_eq!(verdict.origins["ghost"].count, 0);
        assert_eq!(verdict.verdict, Verdict::Fail);
    }

    #[test]
    fn restarts_under_one_origin_and_timeouts_that_arrived_are_no_failure() {
        let mut tally = Tally::new();
        // r1 finished with 0..45 acknowledged; r2 saw a timeout for n = 29, which arrived anyway.
        feed(&mut tally, "a", R1, 0..45);
        feed(&mut tally, "a", R2, 0..30);
        let verdict = judge_all(
            &tally,
            &reports(vec![
                report("a", R1, 0..45, &[]),
                report("a", R2, 0..29, &[29]),
            ]),
        );
        let a = &verdict.origins["a"];
        assert_eq!(
            (
                a.count,
                a.anomalies.lost,
                a.anomalies.duplicates,
                a.anomalies.unacked_seen
            ),
            (75, 0, 0, 1)
        );
        assert_eq!(verdict.verdict, Verdict::Pass, "{:?}", verdict.findings);
        assert_eq!(
            verdict.findings.notes,
            vec!["a: 1 unacked but seen (delivery failed, yet written)"]
        );
        assert_eq!(verdict.accounting.total(), 75);
    }

    #[test]
    fn failed_events_not_on_the_topic_are_said_and_do_not_fail_the_verdict() {
        let mut tally = Tally::new();
        // 0..20 acknowledged, 20..30 failed; of those, 20 and 21 were written anyway.
        feed(&mut tally, "a", R1, 0..22);
        let failed: Vec<u64> = (20..30).collect();
        let verdict = judge_all(&tally, &reports(vec![report("a", R1, 0..20, &failed)]));
        assert_eq!(verdict.verdict, Verdict::Pass, "{:?}", verdict.findings);
        assert_eq!(
            verdict.findings.notes,
            vec![
                "a: 2 unacked but seen (delivery failed, yet written)".to_owned(),
                format!(
                    "run {} of a: 8 of 30 events failed delivery and are not on the topic (never \
                     acknowledged, so not lost)",
                    verdict.origins["a"].runs.keys().next().unwrap()
                ),
            ]
        );
    }

    /// One run's stream as a consumer sees it: 0..n acknowledged, with `swaps` (adjacent pairs
    /// swapped, disjoint), `drops` and `dups` (a copy right after its original) injected at
    /// distinct positions. Returns the stream and the injected (lost, duplicates, out-of-order).
    fn injected(n: u64, marks: &[u8]) -> (Vec<u64>, (u64, u64, u64)) {
        let mut stream = Vec::new();
        let (mut lost, mut dups, mut swaps) = (0, 0, 0);
        let mut i = 0;
        while i < n {
            match marks.get(i as usize).copied().unwrap_or(0) % 8 {
                // Swap i and i+1 (the later-sent one arrives first: one out-of-order).
                1 if i + 1 < n => {
                    stream.extend([i + 1, i]);
                    swaps += 1;
                    i += 2;
                    continue;
                }
                2 => lost += 1,
                3 => {
                    stream.extend([i, i]);
                    dups += 1;
                }
                _ => stream.push(i),
            }
            i += 1;
        }
        (stream, (lost, dups, swaps))
    }

    proptest::proptest! {
        /// For any two runs of one origin interleaved on a partition, with drops, duplicates and
        /// reorderings injected, verify reports exactly the injected counts, and every event is
        /// accounted for once.
        #[test]
        fn verify_reports_exactly_the_injected_anomalies(
            n1 in 1u64..300,
            n2 in 1u64..300,
            marks1 in proptest::collection::vec(proptest::prelude::any::<u8>(), 300),
            marks2 in proptest::collection::vec(proptest::prelude::any::<u8>(), 300),
            interleave in proptest::collection::vec(proptest::prelude::any::<bool>(), 600),
        ) {
            let (s1, (lost1, dups1, ooo1)) = injected(n1, &marks1);
            let (s2, (lost2, dups2, ooo2)) = injected(n2, &marks2);
            let mut tally = Tally::new();
            let (mut a, mut b) = (s1.iter(), s2.iter());
            let mut pick = interleave.iter().cycle();
            loop {
                let next = if *pick.next().unwrap() { a.next().map(|&n| (R1, n)) } else { b.next().map(|&n| (R2, n)) };
                let next = next.or_else(|| a.next().map(|&n| (R1, n))).or_else(|| b.next().map(|&n| (R2, n)));
                let Some((run, n)) = next else { break };
                feed(&mut tally, "o", run, [n]);
            }
            let verdict = judge_all(
                &tally,
                &reports(vec![report("o", R1, 0..n1, &[]), report("o", R2, 0..n2, &[])]),
            );
            let o = &verdict.origins["o"].anomalies;
            proptest::prop_assert_eq!(o.lost, lost1 + lost2);
            proptest::prop_assert_eq!(o.duplicates, dups1 + dups2);
            proptest::prop_assert_eq!(o.out_of_order, ooo1 + ooo2);
            proptest::prop_assert_eq!(o.unacked_seen + o.beyond_sent + o.unreported_tail, 0);
            proptest::prop_assert_eq!(verdict.accounting.total(), (s1.len() + s2.len()) as u64);
            let clean = lost1 + lost2 + dups1 + dups2 + ooo1 + ooo2 == 0;
            proptest::prop_assert_eq!(verdict.verdict == Verdict::Pass, clean);
        }
    }

    /// Probe case 1: a byte copy of an event, republished without headers, is a duplicate of
    /// that event, never a loss and never a new event.
    #[test]
    fn a_copy_without_headers_is_a_duplicate() {
        for copied in [100, 0] {
            let mut tally = Tally::new();
            feed(&mut tally, "a", R1, 0..500);
            tally.record(Some(&value("a", R1, copied)), None, 3, 2.0);
            let verdict = judge_all(&tally, &reports(vec![report("a", R1, 0..500, &[])]));
            let a = &verdict.origins["a"];
            assert_eq!(
                (
                    a.count,
                    a.expected,
                    a.anomalies.lost,
                    a.anomalies.duplicates
                ),
                (501, 500, 0, 1)
            );
            assert_eq!(verdict.verdict, Verdict::Fail);
            assert_eq!(verdict.findings.reasons, vec!["a: 1 duplicate"]);
        }
    }

    /// Probe case 2: events of an origin that never reported (the original client's) are
    /// foreign: counted, never called acknowledged, never lost.
    #[test]
    fn foreign_events_are_counted_not_judged() {
        for n in [0, 7] {
            let mut tally = Tally::new();
            feed(&mut tally, "a", R1, 0..10);
            let original = EventEncoder::new("python-client (10.1.1.1)")
                .encode(1.0, uuid::Uuid::new_v4(), n)
                .to_vec();
            tally.record(Some(&original), None, 0, 2.0);
            let verdict = judge_all(&tally, &reports(vec![report("a", R1, 0..10, &[])]));
            let p = &verdict.origins["python-client (10.1.1.1)"];
            assert_eq!((p.count, p.expected, p.anomalies.lost), (1, 0, 0));
            assert_eq!((p.anomalies.foreign, p.anomalies.foreign_gaps), (1, n));
            assert_eq!(verdict.verdict, Verdict::Pass, "{:?}", verdict.findings);
            let mut notes = vec![
                "python-client (10.1.1.1): 1 foreign (not from a run of this tool)".to_owned(),
            ];
            if n > 0 {
                notes.push(format!(
                    "python-client (10.1.1.1): {n} gaps in foreign events"
                ));
            }
            assert_eq!(verdict.findings.notes, notes);
        }
    }

    /// Probe case 3: an event of a finished run beyond what it says it sent fails.
    #[test]
    fn more_than_a_finished_run_sent_fails() {
        let mut tally = Tally::new();
        feed(&mut tally, "a", R1, 0..501);
        let verdict = judge_all(&tally, &reports(vec![report("a", R1, 0..500, &[])]));
        assert_eq!(verdict.origins["a"].anomalies.beyond_sent, 1);
        assert_eq!(verdict.verdict, Verdict::Fail);
        assert_eq!(
            verdict.findings.reasons,
            vec!["a: 1 more than the run sent"]
        );
    }

    /// Probe case 6: a run whose last report says running (killed, or its final report never
    /// delivered) is named, and the verdict is incomplete, not a pass.
    #[test]
    fn a_run_that_did_not_finish_is_named() {
        let mut tally = Tally::new();
        feed(&mut tally, "a", R1, 0..1358);
        let mut killed = report("a", R1, 0..1300, &[]);
        killed.state = RunState::Running;
        killed.sent = 1330;
        let verdict = judge_all(&tally, &reports(vec![killed]));
        assert_eq!(verdict.verdict, Verdict::Incomplete);
        assert_eq!(
            verdict.findings.incomplete,
            vec![format!(
                "run {R1} of a did not finish: its last report (2024-02-05T10:25:17Z) says \
                 running, 1300 acknowledged of 1330 sent; 58 events after it"
            )]
        );
        assert_eq!(verdict.origins["a"].anomalies.unreported_tail, 58);
        assert!(text(&verdict).ends_with(&format!(
            "verdict: INCOMPLETE (run {R1} of a did not finish: its last report \
             (2024-02-05T10:25:17Z) says running, 1300 acknowledged of 1330 sent; 58 events after it)\n"
        )));
    }

    /// Fleet percentiles come from the runs' histograms merged: equal to the percentiles of
    /// every raw value, not an average of each run's percentiles.
    #[test]
    fn fleet_ack_latency_is_exact_over_every_run() {
        use crate::wire::series::encode_histogram;
        let new = || hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        let (mut fast, mut slow, mut all) = (new(), new(), new());
        for v in 0..1000u64 {
            fast.record(1000 + v).unwrap();
            all.record(1000 + v).unwrap();
        }
        for v in 0..10u64 {
            slow.record(2_000_000 + v * 1000).unwrap();
            all.record(2_000_000 + v * 1000).unwrap();
        }
        let mut r1 = report("a", R1, 0..1000, &[]);
        r1.ack_latency_us = encode_histogram(&fast);
        let mut r2 = report("b", R2, 0..10, &[]);
        r2.ack_latency_us = encode_histogram(&slow);
        let mut tally = Tally::new();
        feed(&mut tally, "a", R1, 0..1000);
        feed(&mut tally, "b", R2, 0..10);
        let verdict = judge_all(&tally, &reports(vec![r1, r2]));
        assert_eq!(verdict.ack_latency_ms, Some(LatencySummary::of(&all)));
        // p99.9 lands among the slow run's values, which averaging per-run p99.9s would hide.
        assert!(verdict.ack_latency_ms.unwrap().p999 >= 2000.0);
    }

    #[test]
    fn an_older_report_never_replaces_a_newer_one() {
        let mut newer = report("a", R1, 0..100, &[]);
        newer.updated += 10.0;
        let mut older = report("a", R1, 0..50, &[]);
        older.state = RunState::Running;
        let kept = reports(vec![newer.clone(), older]);
        assert_eq!(kept[&run_key(R1)], newer);
    }

    fn member(name: &str, offsets: &[(i32, [u64; 2])]) -> MemberReport {
        let by_partition = offsets
            .iter()
            .map(
                |&(partition, range)| crate::wire::control::PartitionOffsets {
                    partition,
                    ranges: vec![range],
                },
            )
            .collect();
        MemberReport {
            member: name.into(),
            group: "g1".into(),
            topic: "t".into(),
            state: RunState::Finished,
            consumed: offsets.iter().map(|(_, [s, e])| e - s).sum(),
            malformed: 0,
            offsets: by_partition,
            counts: BTreeMap::new(),
            consumed_per_s: Default::default(),
            latency_us: String::new(),
            updated: 1.0,
        }
    }

    #[test]
    fn a_group_that_shared_partitions_consumed_everything_with_redeliveries() {
        let mut on_topic = BTreeMap::new();
        for partition in 0..2 {
            let mut set = RangeSet::new();
            set.insert_range(0..100);
            on_topic.insert(partition, set);
        }
        // Partition 1 moved from a to b at offset 60; b re-read 50..60 after the rebalance.
        let members = HashMap::from([
            ("a".to_owned(), member("a", &[(0, [0, 100]), (1, [0, 60])])),
            ("b".to_owned(), member("b", &[(1, [50, 100])])),
        ]);
        let verdict = judge_group("g1", &members, &on_topic);
        assert_eq!(
            (verdict.members, verdict.redelivered, verdict.unconsumed),
            (2, 10, 0)
        );

        let short = HashMap::from([("a".to_owned(), member("a", &[(0, [0, 100]), (1, [0, 60])]))]);
        assert_eq!(judge_group("g1", &short, &on_topic).unconsumed, 40);
    }

    #[test]
    fn duplicates_fail() {
        let mut tally = Tally::new();
        feed(&mut tally, "a", R1, (0..10).chain([4]));
        let verdict = judge_all(&tally, &reports(vec![report("a", R1, 0..10, &[])]));
        assert_eq!(verdict.origins["a"].anomalies.duplicates, 1);
        assert_eq!(verdict.verdict, Verdict::Fail);
    }
}
