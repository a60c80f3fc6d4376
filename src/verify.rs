//! `verify`: one verdict for a whole fleet.
//!
//! Reads the control topic (every producer run's latest report: what the broker acknowledged,
//! what failed) and then the data topic from the beginning, without a consumer group, and compares
//! per origin and per run what was acknowledged with what is on the topic. Reading the reports
//! first means every event a report calls acknowledged was written before the data topic is read.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use rdkafka::message::Message;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::against::{self, Comparison, Match};
use crate::consumer::run_id;
use crate::control::{from_pairs, ControlRecord, MemberReport, RunReport, RunState};
use crate::error::{Error, Result};
use crate::event::python_timestamp;
use crate::kafka_config::ConnectionSettings;
use crate::ranges::RangeSet;
use crate::reader::read_to_end;
use crate::report::{origin_table, verdict_line, OutputFormat, Verdict};
use crate::tally::{RunTally, Tally};

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
}

/// One producer run, expected versus seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunVerdict {
    /// `running`, `finished`, or `unreported` (events seen, but no report: a run without
    /// reports, or events from another client).
    pub state: String,
    /// Events the run reported acknowledged.
    pub expected: Option<u64>,
    /// Events of this run on the topic (duplicates included).
    pub count: u64,
    /// Acknowledged but never seen: real loss. For unreported runs: gaps below the highest `n`.
    pub missing: u64,
    /// Events whose `n` was seen before.
    pub duplicates: u64,
    /// Seen although the producer saw their delivery fail (e.g. a timeout).
    pub unacked_seen: u64,
    /// Seen but neither acknowledged nor failed in the last report (sent after it: a producer
    /// killed before reporting again).
    pub unreported_seen: u64,
    /// Events behind a higher `n` of the run on their partition.
    pub out_of_order: u64,
}

/// One origin: its runs added up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OriginVerdict {
    /// Events on the topic (duplicates included): what an aggregation job counts.
    pub count: u64,
    /// Events acknowledged by its runs (reported runs only).
    pub expected: u64,
    /// Sum over runs.
    pub missing: u64,
    /// Sum over runs.
    pub duplicates: u64,
    /// Sum over runs.
    pub unacked_seen: u64,
    /// Sum over runs.
    pub out_of_order: u64,
    /// Per run id (`""` for events without one).
    pub runs: BTreeMap<String, RunVerdict>,
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
}

/// The fleet verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Data topic.
    pub topic: String,
    /// Control topic.
    pub control_topic: String,
    /// Pass or fail.
    pub verdict: Verdict,
    /// Why it failed.
    pub reasons: Vec<String>,
    /// Events on the data topic.
    pub consumed: u64,
    /// Records on the data topic that are not events.
    pub malformed: u64,
    /// Per origin.
    pub origins: BTreeMap<String, OriginVerdict>,
    /// The aggregation job comparison, with `--against`.
    pub against: Option<AgainstReport>,
    /// The consumer group's consumption, with `--group`.
    pub group: Option<GroupVerdict>,
}

/// Runs `verify`. Must be called from a blocking thread.
pub fn verify(
    settings: &ConnectionSettings,
    options: &VerifyOptions,
    shutdown: &CancellationToken,
) -> Result<VerifyReport> {
    let job = options.against.as_deref().map(against::read).transpose()?;

    let mut reports: HashMap<String, RunReport> = HashMap::new();
    let mut members: HashMap<String, MemberReport> = HashMap::new();
    let control_found =
        read_to_end(
            settings,
            &options.control_topic,
            shutdown,
            |message| match message.payload().and_then(ControlRecord::parse) {
                Some(ControlRecord::ProducerRun(report)) if report.topic == options.topic => {
                    let (run, updated) = (report.run.clone(), report.updated);
                    keep_latest(&mut reports, run, report, updated, |r| r.updated);
                }
                Some(ControlRecord::ConsumerMember(member))
                    if member.topic == options.topic
                        && options.group.as_ref() == Some(&member.group) =>
                {
                    let (id, updated) = (member.member.clone(), member.updated);
                    keep_latest(&mut members, id, member, updated, |m| m.updated);
                }
                _ => {}
            },
        )?;
    if !control_found {
        tracing::warn!(
            control_topic = %options.control_topic,
            "no control topic: no run reports, so loss at the tail of a run cannot be seen"
        );
    }

    let mut tally = Tally::new();
    let mut offsets: BTreeMap<i32, RangeSet> = BTreeMap::new();
    let now = python_timestamp(SystemTime::now());
    let data_found = read_to_end(settings, &options.topic, shutdown, |message| {
        tally.record(message.payload(), run_id(message), message.partition(), now);
        if let Ok(offset) = u64::try_from(message.offset()) {
            offsets
                .entry(message.partition())
                .or_default()
                .insert(offset);
        }
    })?;
    if !data_found {
        return Err(Error::TopicMissing {
            topic: options.topic.clone(),
            waited: settings.connect_timeout,
        });
    }
    let mut report = judge(&options.topic, &options.control_topic, &tally, &reports);
    if let Some(group) = &options.group {
        let verdict = judge_group(group, &members, &offsets);
        if verdict.members == 0 {
            report.reasons.push(format!(
                "no member of consumer group {group} reported on {}",
                options.control_topic
            ));
        } else if verdict.unconsumed > 0 {
            report.reasons.push(format!(
                "consumer group {group} did not consume {} records of {}",
                verdict.unconsumed, options.topic
            ));
        }
        report.group = Some(verdict);
        if !report.reasons.is_empty() {
            report.verdict = Verdict::Fail;
        }
    }
    if let Some(rows) = job {
        let seen = report
            .origins
            .iter()
            .map(|(origin, o)| (origin.clone(), o.count))
            .collect();
        let (rows, unlisted) = against::compare(&rows, &seen);
        for row in &rows {
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
            report.reasons.push(reason);
        }
        for origin in &unlisted {
            report
                .reasons
                .push(format!("aggregation job has no row for {origin}"));
        }
        report.against = Some(AgainstReport { rows, unlisted });
        if !report.reasons.is_empty() {
            report.verdict = Verdict::Fail;
        }
    }
    Ok(report)
}

/// Keeps the most recent report per key (a control topic may hold several per run or member).
fn keep_latest<T>(
    map: &mut HashMap<String, T>,
    key: String,
    value: T,
    updated: f64,
    updated_of: fn(&T) -> f64,
) {
    if map
        .get(&key)
        .is_none_or(|known| updated_of(known) <= updated)
    {
        map.insert(key, value);
    }
}

/// Compares what runs reported with what the topic holds.
pub fn judge(
    topic: &str,
    control_topic: &str,
    tally: &Tally,
    reports: &HashMap<String, RunReport>,
) -> VerifyReport {
    let empty = RunTally::default();
    let mut origins: BTreeMap<String, OriginVerdict> = BTreeMap::new();
    // Every run seen on the topic, and every reported run (one whose events all vanished too).
    let mut runs: Vec<(&str, &str, &RunTally)> = Vec::new();
    for (origin, seen) in tally.origins() {
        for (run, run_tally) in seen.runs() {
            runs.push((origin, run, run_tally));
        }
    }
    for report in reports.values() {
        let seen = tally
            .origins()
            .get(&report.origin)
            .is_some_and(|o| o.runs().contains_key(&report.run));
        if !seen {
            runs.push((&report.origin, &report.run, &empty));
        }
    }
    for (origin, run, seen) in runs {
        let verdict = match reports.get(run).filter(|r| r.origin == origin) {
            Some(report) => {
                let acked = from_pairs(&report.acked);
                let failed = from_pairs(&report.failed);
                let seen_acked = seen.seen().overlap(&acked);
                let unacked_seen = seen.seen().overlap(&failed);
                RunVerdict {
                    state: match report.state {
                        RunState::Running => "running".into(),
                        RunState::Finished => "finished".into(),
                    },
                    expected: Some(acked.len()),
                    count: seen.count(),
                    missing: acked.len() - seen_acked,
                    duplicates: seen.duplicates(),
                    unacked_seen,
                    unreported_seen: seen.seen().len() - seen_acked - unacked_seen,
                    out_of_order: seen.out_of_order(),
                }
            }
            None => RunVerdict {
                state: "unreported".into(),
                expected: None,
                count: seen.count(),
                missing: seen.gaps(),
                duplicates: seen.duplicates(),
                unacked_seen: 0,
                unreported_seen: seen.seen().len(),
                out_of_order: seen.out_of_order(),
            },
        };
        let entry = origins
            .entry(origin.to_owned())
            .or_insert_with(|| OriginVerdict {
                count: 0,
                expected: 0,
                missing: 0,
                duplicates: 0,
                unacked_seen: 0,
                out_of_order: 0,
                runs: BTreeMap::new(),
            });
        entry.count += verdict.count;
        entry.expected += verdict.expected.unwrap_or(0);
        entry.missing += verdict.missing;
        entry.duplicates += verdict.duplicates;
        entry.unacked_seen += verdict.unacked_seen;
        entry.out_of_order += verdict.out_of_order;
        entry.runs.insert(run.to_owned(), verdict);
    }
    let mut reasons = Vec::new();
    if origins.is_empty() {
        reasons.push(format!(
            "nothing to verify: no events on {topic} and no run reports"
        ));
    }
    for (origin, o) in &origins {
        for (what, value) in [
            ("missing (acknowledged, never seen)", o.missing),
            ("duplicates", o.duplicates),
            ("out of order", o.out_of_order),
        ] {
            if value > 0 {
                reasons.push(format!("{origin}: {value} {what}"));
            }
        }
    }
    VerifyReport {
        topic: topic.to_owned(),
        control_topic: control_topic.to_owned(),
        verdict: if reasons.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        reasons,
        consumed: tally.consumed(),
        malformed: tally.malformed(),
        origins,
        against: None,
        group: None,
    }
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
    GroupVerdict {
        group: group.to_owned(),
        members: members.len(),
        consumed: members.values().map(|m| m.consumed).sum(),
        redelivered: total - union.values().map(RangeSet::len).sum::<u64>(),
        unconsumed,
        counts,
    }
}

/// The report as text: the Spark-shaped table, the runs, the job comparison, the verdict.
pub fn text(report: &VerifyReport) -> String {
    use std::fmt::Write as _;
    let mut text = origin_table(report.origins.iter().map(|(o, v)| (o.as_str(), v.count)));
    for (origin, o) in &report.origins {
        let _ = writeln!(
            text,
            "{origin}: count {}, acked {}, missing {}, duplicates {}, unacked seen {}, out of order {}",
            o.count, o.expected, o.missing, o.duplicates, o.unacked_seen, o.out_of_order
        );
        for (run, r) in &o.runs {
            let name = if run.is_empty() {
                "(no run id)"
            } else {
                run.as_str()
            };
            let expected = r.expected.map_or("-".to_owned(), |e| e.to_string());
            let _ = writeln!(
                text,
                "  run {name} [{}]: acked {expected}, seen {}, missing {}, duplicates {}, unacked seen {}, unreported seen {}, out of order {}",
                r.state, r.count, r.missing, r.duplicates, r.unacked_seen, r.unreported_seen, r.out_of_order
            );
        }
    }
    if let Some(group) = &report.group {
        let _ = writeln!(
            text,
            "consumer group {}: {} members consumed {} events ({} redelivered), {} records not consumed",
            group.group, group.members, group.consumed, group.redelivered, group.unconsumed
        );
    }
    if let Some(against) = &report.against {
        text.push_str("aggregation job:\n");
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
    }
    let _ = writeln!(
        text,
        "{} events on {} ({} malformed records skipped)",
        report.consumed, report.topic, report.malformed
    );
    text.push_str(&verdict_line(report.verdict, &report.reasons));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::to_pairs;
    use crate::event::EventEncoder;
    use crate::ranges::RangeSet;

    fn feed(tally: &mut Tally, origin: &str, run: &str, ns: impl IntoIterator<Item = u64>) {
        let mut encoder = EventEncoder::new(origin);
        for n in ns {
            let value = encoder.encode(1.0, uuid::Uuid::new_v4(), n).to_vec();
            tally.record(Some(&value), Some(run.as_bytes()), 0, 2.0);
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
            started: 1.0,
            updated: 2.0,
        }
    }

    fn reports(list: Vec<RunReport>) -> HashMap<String, RunReport> {
        list.into_iter().map(|r| (r.run.clone(), r)).collect()
    }

    #[test]
    fn tail_loss_is_missing_and_fails() {
        let mut tally = Tally::new();
        feed(&mut tally, "a", "r1", 0..90);
        let verdict = judge(
            "t",
            "c",
            &tally,
            &reports(vec![report("a", "r1", 0..100, &[])]),
        );
        assert_eq!(verdict.origins["a"].missing, 10);
        assert_eq!(verdict.verdict, Verdict::Fail);
        assert_eq!(
            verdict.reasons,
            vec!["a: 10 missing (acknowledged, never seen)"]
        );
    }

    #[test]
    fn a_run_whose_every_event_was_lost_is_seen() {
        let tally = Tally::new();
        let verdict = judge(
            "t",
            "c",
            &tally,
            &reports(vec![report("ghost", "r9", 0..50, &[])]),
        );
        assert_eq!(verdict.origins["ghost"].missing, 50);
        assert_eq!(verdict.origins["ghost"].count, 0);
        assert_eq!(verdict.verdict, Verdict::Fail);
    }

    #[test]
    fn restarts_under_one_origin_and_timeouts_that_arrived_are_no_failure() {
        let mut tally = Tally::new();
        // A killed run: its last report acked 0..40; 0..45 made it to the topic.
        feed(&mut tally, "a", "r1", 0..45);
        feed(&mut tally, "a", "r2", 0..30);
        let mut killed = report("a", "r1", 0..40, &[]);
        killed.state = RunState::Running;
        // r2 saw a timeout for n = 29, which arrived anyway.
        let verdict = judge(
            "t",
            "c",
            &tally,
            &reports(vec![killed, report("a", "r2", 0..29, &[29])]),
        );
        let a = &verdict.origins["a"];
        assert_eq!(
            (a.count, a.missing, a.duplicates, a.unacked_seen),
            (75, 0, 0, 1)
        );
        assert_eq!(a.runs["r1"].unreported_seen, 5);
        assert_eq!(verdict.verdict, Verdict::Pass, "{:?}", verdict.reasons);
    }

    fn member(name: &str, offsets: &[(i32, [u64; 2])]) -> MemberReport {
        let by_partition = offsets
            .iter()
            .map(|&(partition, range)| crate::control::PartitionOffsets {
                partition,
                ranges: vec![range],
            })
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
        feed(&mut tally, "a", "r1", (0..10).chain([4]));
        let verdict = judge(
            "t",
            "c",
            &tally,
            &reports(vec![report("a", "r1", 0..10, &[])]),
        );
        assert_eq!(verdict.origins["a"].duplicates, 1);
        assert_eq!(verdict.verdict, Verdict::Fail);
    }
}
