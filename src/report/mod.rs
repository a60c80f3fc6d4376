//! Final and periodic reports, as text for people and JSON for machines.
//!
//! The count-by-origin table has the shape of Spark's console sink in the tutorial
//! (`|origin|count|`, cells right-aligned), but prints origins in full so they can be matched
//! against a Spark table's truncated ones. [`html`] draws the same reports as a page.

pub mod html;

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::tally::latency::LatencySummary;
use crate::verdict::judge::{ConsumeReport, Drain, HoldEnd};
use crate::verdict::{verdict_text, Anomalies, Findings, Verdict};
use crate::wire::series::RunSeries;
use html::{Latency, OriginRow, Page, RunLine};

/// `--output` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object on stdout.
    Json,
}

/// A producer's final report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProduceReport {
    /// This run's id (the `kta-run` header of its events).
    pub run: String,
    /// Events handed to the client library.
    pub sent: u64,
    /// Events the broker acknowledged.
    pub acked: u64,
    /// Events whose delivery failed (or were still unconfirmed when the run had to end).
    pub failed: u64,
    /// Seconds from the first event to the last acknowledgement.
    pub elapsed_s: f64,
    /// Achieved rate: events per second from the first send to the last (the schedule's rate
    /// for a paced run).
    pub rate: f64,
    /// Throughput: acknowledged events per second from the first send to the end of the run
    /// (acknowledgements included).
    pub acked_per_s: f64,
    /// The rate asked for (0 = unpaced).
    pub target_rate: f64,
    /// The topic.
    pub topic: String,
    /// The origin stamped on every event.
    pub origin: String,
    /// Acknowledgement latency measured from each event's scheduled send time.
    pub ack_latency_ms: LatencySummary,
    /// The histogram those percentiles come from (microseconds), for the HTML page.
    #[serde(skip)]
    pub ack_latency_us: Option<Histogram<u64>>,
    /// Sent, acknowledged and failed over time (as in the run reports).
    pub series: RunSeries,
    /// The delivery guarantee in force (`-X acks=…` / `-X enable.idempotence=…` change it).
    pub guarantee: Guarantee,
    /// The payload size, key and compression in force (`--payload-bytes`, `--key`,
    /// `--compression`, or `-X compression.type=…`).
    pub workload: WorkloadReport,
    /// Events of the warm-up (`--warmup`): sent and verified, left out of `ack_latency_ms` (and,
    /// marked by a header, of the consumers' latency).
    pub warmup_events: u64,
    /// Transactions (`--transactional-id`): how many committed and aborted, and their events.
    /// `acked` counts committed events only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<TxnReport>,
    /// The schedule's phases (one for a steady or unpaced run; `--ramp`, `--steps`) and what was
    /// sent in each.
    pub phases: Vec<PhaseReport>,
    /// Whether the final run report reached the control topic, so `verify` knows this run
    /// finished.
    pub final_run_report: FinalReport,
    /// Why run reports are off (the control topic refused them), and how to turn them on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_reports_off: Option<String>,
    /// The longest time, in seconds (to the second), that events were pending and none was
    /// acknowledged or failed: how long the cluster took no writes (a failover's gap).
    pub longest_ack_gap_s: f64,
    /// The longest time, in seconds, one partition went between two of its acknowledgements:
    /// from a fault's start until acknowledgements flowed on every partition again (the
    /// slowest partition's recovery; [`crate::produce::stall::Recovery`]). A partition that
    /// never recovered within the run is not in it: `failed` says so.
    pub time_to_recover_s: f64,
    /// `[partition, seconds]`: each acknowledged partition's longest gap between two of its
    /// acknowledgements.
    pub recovery_by_partition_s: Vec<(u32, f64)>,
    /// The verdict: pass when nothing failed.
    pub verdict: Verdict,
}

/// The producer settings an acknowledgement means something under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Guarantee {
    /// librdkafka's `acks`: `all` (every in-sync replica), `1` (the leader) or `0` (none).
    pub acks: String,
    /// Idempotent producer: retries never write an event twice or out of order.
    pub idempotence: bool,
}

/// The shape of a producer's traffic, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadReport {
    /// Every value padded to this many bytes (`null`: the original's bytes).
    pub payload_bytes: Option<usize>,
    /// How records were keyed: `none`, `origin`, `random:K`, `sequential`.
    pub key: String,
    /// librdkafka's `compression.type` in force.
    pub compression: String,
}

/// A transactional run's transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxnReport {
    /// Transactions committed.
    pub committed: u64,
    /// Transactions aborted (`--abort-rate`, or a commit that failed).
    pub aborted: u64,
    /// Events in committed transactions: a read-committed reader must see each.
    pub committed_events: u64,
    /// Events in aborted transactions: a read-committed reader must see none.
    pub aborted_events: u64,
}

/// One phase of a producer's schedule, as planned and as sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseReport {
    /// Events per second at its beginning (0 = unpaced).
    pub from_rate: f64,
    /// Events per second at its end.
    pub to_rate: f64,
    /// When it begins, seconds after the start of sending.
    pub start_s: f64,
    /// How long it lasts (`null`: until the run ends).
    pub duration_s: Option<f64>,
    /// Events due in it that were sent: exactly what the schedule holds unless the run was
    /// stopped or limited (`--num-messages`).
    pub sent: u64,
    /// When its first and last events were handed over, seconds after the start of sending
    /// (never before they were due).
    pub first_send_s: Option<f64>,
    /// See `first_send_s`.
    pub last_send_s: Option<f64>,
}

/// What became of a producer's final run report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalReport {
    /// Acknowledged by the control topic.
    Delivered,
    /// Not acknowledged within `--flush-timeout`: `verify` shows the run as not finished.
    NotDelivered,
    /// Run reports are off (`--no-run-reports`, or the control topic refused them).
    Off,
}

/// Serialises a report as one line of JSON.
pub fn to_json<T: Serialize>(report: &T) -> String {
    serde_json::to_string(report).expect("reports serialise")
}

/// The count-by-origin table, shaped like Spark's console sink.
pub fn origin_table<'a>(rows: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let rows: Vec<(&str, String)> = rows
        .into_iter()
        .map(|(origin, count)| (origin, count.to_string()))
        .collect();
    let width_of = |header: &str, cells: &mut dyn Iterator<Item = usize>| {
        cells.fold(header.len().max(3), usize::max)
    };
    let origin_width = width_of("origin", &mut rows.iter().map(|(o, _)| o.chars().count()));
    let count_width = width_of("count", &mut rows.iter().map(|(_, c)| c.len()));
    let rule = format!(
        "+{}+{}+\n",
        "-".repeat(origin_width),
        "-".repeat(count_width)
    );
    let mut table = rule.clone();
    let _ = writeln!(
        table,
        "|{:>origin_width$}|{:>count_width$}|",
        "origin", "count"
    );
    table.push_str(&rule);
    for (origin, count) in &rows {
        let _ = writeln!(table, "|{origin:>origin_width$}|{count:>count_width$}|");
    }
    table.push_str(&rule);
    table
}

/// A consumer report as text: the table, then the details and the verdict.
pub fn consume_text(report: &ConsumeReport) -> String {
    let mut text = origin_table(
        report
            .origins
            .iter()
            .map(|(o, r)| (o.as_str(), r.verdict.count)),
    );
    for (origin, r) in &report.origins {
        let l = &r.latency_ms;
        let _ = writeln!(
            text,
            "{origin}: count {}, {}, latency ms p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
            r.verdict.count,
            r.verdict.anomalies.summary(),
            l.p50,
            l.p99,
            l.p999,
            l.max
        );
    }
    let _ = writeln!(
        text,
        "consumed {} events ({} malformed records skipped) in {:.2} s: {}",
        report.consumed,
        report.malformed,
        report.elapsed_s,
        report.accounting.sum_line()
    );
    if let Some(drain) = &report.drain {
        text.push_str(&drain_text(drain));
    }
    text.push_str(&verdict_text(report.verdict, &report.findings));
    text
}

/// The lines of a consumer report on its hold and the drain of the backlog.
fn drain_text(d: &Drain) -> String {
    let why = match d.hold_ended {
        HoldEnd::Holding => "still holding",
        HoldEnd::RunsFinished => "every run finished",
        HoldEnd::IdleTimeout => "--idle-timeout, before what it waited for",
        HoldEnd::Stopped => "stopped by a signal",
    };
    let mut text = format!(
        "hold: {:.2} s until {why}; backlog {} events acknowledged by {} runs ({} finished)\n",
        d.held_s, d.backlog, d.runs, d.runs_finished
    );
    let _ = match (d.seconds, d.events_per_s) {
        (Some(seconds), Some(rate)) => writeln!(
            text,
            "drain: {} events in {seconds:.3} s, {rate:.1} events/s (from the first assignment, \
             {:.2} s after the hold, to the last record){}",
            d.events,
            d.join_s.unwrap_or(0.0),
            if d.complete {
                ""
            } else {
                "; not every run's events were consumed"
            }
        ),
        _ => writeln!(text, "drain: {} events, no drain rate", d.events),
    };
    text
}

/// Why a producer run fails: deliveries that failed.
pub fn produce_findings(report: &ProduceReport) -> Findings {
    let mut findings = Findings::default();
    if report.failed > 0 {
        findings
            .reasons
            .push(format!("{} deliveries failed", report.failed));
    }
    if let Some(off) = &report.run_reports_off {
        findings.notes.push(off.clone());
    } else if report.final_run_report == FinalReport::NotDelivered {
        findings.notes.push(
            "the final run report did not reach the control topic within --flush-timeout: \
             `verify` will show this run as not finished"
                .to_owned(),
        );
    }
    if report.guarantee.acks != "all" || !report.guarantee.idempotence {
        findings.notes.push(format!(
            "delivery guarantee weakened by -X: acks={}, idempotence {}",
            report.guarantee.acks,
            if report.guarantee.idempotence {
                "on"
            } else {
                "off"
            }
        ));
    }
    findings
}

/// The JSON of a report, pretty-printed, for a page.
fn pretty<T: Serialize>(report: &T) -> String {
    serde_json::to_string_pretty(report).expect("reports serialise")
}

/// A producer's live page: its rate against the target, its ack latency.
pub fn produce_page(report: &ProduceReport) -> Page {
    let findings = produce_findings(report);
    Page {
        title: format!("produce to {} as {}", report.topic, report.origin),
        verdict: report.verdict,
        findings,
        totals: vec![
            ("sent".into(), report.sent),
            ("acked".into(), report.acked),
            ("failed".into(), report.failed),
        ],
        accounting: format!(
            "{:.1} events/s sent, {:.1} acknowledged/s, target {}; longest stretch without acknowledgements {:.0} s, time to recover {:.1} s",
            report.rate,
            report.acked_per_s,
            if report.target_rate > 0.0 {
                format!("{}/s", report.target_rate)
            } else {
                "none (unpaced)".to_owned()
            },
            report.longest_ack_gap_s,
            report.time_to_recover_s
        ),
        runs: vec![RunLine {
            origin: report.origin.clone(),
            target_rate: report.target_rate,
            series: report.series.clone(),
            lost: vec![],
        }],
        consumed: vec![],
        origins: vec![OriginRow {
            origin: report.origin.clone(),
            expected: None,
            count: report.acked,
            anomalies: Anomalies::default(),
        }],
        latencies: vec![Latency {
            name: "acknowledgement latency (from the schedule)".into(),
            key: "ack_latency_ms".into(),
            summary: report.ack_latency_ms,
            histogram: report.ack_latency_us.clone(),
        }],
        json: pretty(report),
    }
}

/// The producer runs of a report's origins, for a page's timeline.
pub fn run_lines<'a>(
    origins: impl Iterator<Item = (&'a String, &'a crate::tally::OriginVerdict)>,
) -> Vec<RunLine> {
    origins
        .flat_map(|(origin, o)| {
            o.runs.values().filter_map(move |r| {
                Some(RunLine {
                    origin: origin.clone(),
                    target_rate: r.target_rate.unwrap_or(0.0),
                    series: r.series.clone()?,
                    lost: r.lost_n.clone(),
                })
            })
        })
        .collect()
}

/// Headline numbers of a report: the events read, then every anomaly class with a count
/// (and the fail classes always).
pub fn totals(consumed: u64, anomalies: &Anomalies) -> Vec<(String, u64)> {
    let mut totals = vec![("consumed".to_owned(), consumed)];
    totals.extend(
        anomalies
            .classes()
            .filter(|c| c.1 == crate::verdict::Weight::Fail || c.3 > 0)
            .map(|(key, _, _, count)| (key.to_owned(), count)),
    );
    totals
}

/// A consumer's page: what it consumed over time, the producers' runs it read reports of, its
/// end-to-end latency, every origin.
pub fn consume_page(report: &ConsumeReport, topic: &str) -> Page {
    let mut latencies = Vec::new();
    if let Some(summary) = report.latency_ms {
        latencies.push(Latency {
            name: "end-to-end latency, all origins".into(),
            key: "latency_ms".into(),
            summary,
            histogram: report.latency_us.clone(),
        });
    }
    Page {
        title: format!("consume {topic}"),
        verdict: report.verdict,
        findings: report.findings.clone(),
        totals: totals(report.consumed, &report.anomalies),
        accounting: report.accounting.sum_line(),
        runs: run_lines(report.origins.iter().map(|(o, r)| (o, &r.verdict))),
        consumed: vec![report.consumed_per_s.clone()],
        origins: report
            .origins
            .iter()
            .map(|(origin, r)| OriginRow {
                origin: origin.clone(),
                expected: Some(r.verdict.expected),
                count: r.verdict.count,
                anomalies: r.verdict.anomalies,
            })
            .collect(),
        latencies,
        json: pretty(report),
    }
}

/// A producer report as text.
pub fn produce_text(report: &ProduceReport) -> String {
    let l = &report.ack_latency_ms;
    format!(
        "produced to topic {} as origin {}: sent {}, acked {}, failed {} in {:.2} s ({:.1} events/s sent, {:.1} acked/s)\n\
         ack latency ms (from schedule): p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}\n\
         {}{}",
        report.topic,
        report.origin,
        report.sent,
        report.acked,
        report.failed,
        report.elapsed_s,
        report.rate,
        report.acked_per_s,
        l.p50,
        l.p99,
        l.p999,
        l.max,
        workload_text(report),
        verdict_text(report.verdict, &produce_findings(report))
    )
}

/// The lines of a producer report on its warm-up, phases and transactions (none for a plain
/// run).
fn workload_text(report: &ProduceReport) -> String {
    let mut text = String::new();
    if report.warmup_events > 0 {
        let _ = writeln!(
            text,
            "warm-up: {} events (verified, left out of latency)",
            report.warmup_events
        );
    }
    if report.phases.len() > 1 || report.phases.iter().any(|p| p.from_rate != p.to_rate) {
        for (i, p) in report.phases.iter().enumerate() {
            let _ = writeln!(
                text,
                "phase {}: {} to {} events/s from {:.1} s: {} sent",
                i + 1,
                p.from_rate,
                p.to_rate,
                p.start_s,
                p.sent
            );
        }
    }
    if let Some(t) = &report.transactions {
        let _ = writeln!(
            text,
            "transactions: {} committed ({} events), {} aborted ({} events)",
            t.committed, t.committed_events, t.aborted, t.aborted_events
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_report_names_its_warmup_phases_and_transactions() {
        let phase = |from_rate: f64, start_s: f64, sent: u64| PhaseReport {
            from_rate,
            to_rate: from_rate,
            start_s,
            duration_s: Some(2.0),
            sent,
            first_send_s: Some(start_s),
            last_send_s: Some(start_s + 1.9),
        };
        let mut report = ProduceReport {
            run: "r".into(),
            sent: 900,
            acked: 700,
            failed: 0,
            elapsed_s: 4.0,
            rate: 225.0,
            acked_per_s: 175.0,
            target_rate: 200.0,
            topic: "t".into(),
            origin: "o".into(),
            ack_latency_ms: LatencySummary::default(),
            guarantee: Guarantee {
                acks: "all".into(),
                idempotence: true,
            },
            workload: WorkloadReport {
                payload_bytes: None,
                key: "none".into(),
                compression: "none".into(),
            },
            warmup_events: 200,
            transactions: Some(TxnReport {
                committed: 7,
                aborted: 2,
                committed_events: 700,
                aborted_events: 200,
            }),
            phases: vec![phase(200.0, 0.0, 400), phase(250.0, 2.0, 500)],
            final_run_report: FinalReport::Delivered,
            run_reports_off: None,
            longest_ack_gap_s: 0.0,
            time_to_recover_s: 0.0,
            recovery_by_partition_s: vec![],
            ack_latency_us: None,
            series: RunSeries::default(),
            verdict: Verdict::Pass,
        };
        let text = produce_text(&report);
        for line in [
            "warm-up: 200 events (verified, left out of latency)\n",
            "phase 1: 200 to 200 events/s from 0.0 s: 400 sent\n",
            "phase 2: 250 to 250 events/s from 2.0 s: 500 sent\n",
            "transactions: 7 committed (700 events), 2 aborted (200 events)\n",
        ] {
            assert!(text.contains(line), "{text}");
        }
        // A plain run says none of it.
        report.warmup_events = 0;
        report.transactions = None;
        report.phases.truncate(1);
        let plain = produce_text(&report);
        assert!(
            !plain.contains("phase") && !plain.contains("transactions"),
            "{plain}"
        );
    }

    #[test]
    fn a_drain_says_its_count_seconds_and_rate_and_how_the_hold_ended() {
        let mut drain = Drain {
            held_s: 12.345,
            hold_ended: HoldEnd::RunsFinished,
            runs: 2,
            runs_finished: 2,
            backlog: 40000,
            join_s: Some(0.25),
            events: 40000,
            seconds: Some(1.6),
            events_per_s: Drain::rate(40000, Some(1.6)),
            complete: true,
        };
        assert_eq!(
            drain_text(&drain),
            "hold: 12.35 s until every run finished; backlog 40000 events acknowledged by 2 runs \
             (2 finished)\n\
             drain: 40000 events in 1.600 s, 25000.0 events/s (from the first assignment, 0.25 s \
             after the hold, to the last record)\n"
        );
        drain.hold_ended = HoldEnd::IdleTimeout;
        drain.runs_finished = 1;
        drain.complete = false;
        let text = drain_text(&drain);
        assert!(
            text.starts_with("hold: 12.35 s until --idle-timeout, before what it waited for;")
                && text.ends_with("; not every run's events were consumed\n"),
            "{text}"
        );
        let mut findings = Findings::default();
        drain.notes(&mut findings);
        assert_eq!(
            findings.notes,
            [
                "the hold ended on --idle-timeout, before what it waited for (1 of 2 runs \
              finished, 40000 events acknowledged): the drain may have raced a producer"
            ]
        );
        // Nothing drained: no rate, rather than 0 or infinity.
        assert_eq!(Drain::rate(0, Some(1.0)), None);
        assert_eq!(Drain::rate(10, Some(0.0)), None);
        assert_eq!(Drain::rate(10, None), None);
        drain.events = 0;
        drain.seconds = None;
        drain.events_per_s = None;
        assert!(drain_text(&drain).ends_with("drain: 0 events, no drain rate\n"));
    }

    #[test]
    fn table_has_the_spark_console_shape() {
        let table = origin_table([
            ("kafka-test-app-1 (10.1.29.186)", 38),
            ("kafka-test-app-0 (10.1.29.185)", 1038),
        ]);
        assert_eq!(
            table,
            "+------------------------------+-----+\n\
             |                        origin|count|\n\
             +------------------------------+-----+\n\
             |kafka-test-app-1 (10.1.29.186)|   38|\n\
             |kafka-test-app-0 (10.1.29.185)| 1038|\n\
             +------------------------------+-----+\n"
        );
    }
}
