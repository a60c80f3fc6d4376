//! Final and periodic reports, as text for people and JSON for machines.
//!
//! The count-by-origin table has the shape of Spark's console sink in the tutorial
//! (`|origin|count|`, cells right-aligned), but prints origins in full so they can be matched
//! against a Spark table's truncated ones.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// `--output` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object on stdout.
    Json,
}

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Everything checked out.
    Pass,
    /// Something was lost, duplicated, reordered, or not delivered.
    Fail,
}

impl Verdict {
    /// The exit code for this verdict.
    pub fn exit_code(self) -> crate::ExitCode {
        match self {
            Verdict::Pass => crate::ExitCode::Pass,
            Verdict::Fail => crate::ExitCode::Fail,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest observed.
    pub max: f64,
}

/// What a consumer saw of one origin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OriginReport {
    /// Events counted, duplicates included (what `groupBy("origin").count()` gives).
    pub count: u64,
    /// Events whose `n` had already been seen.
    pub duplicates: u64,
    /// `n` values below the highest seen that never arrived.
    pub missing: u64,
    /// Events that arrived on a partition after a higher `n` of the same origin.
    pub out_of_order: u64,
    /// End-to-end latency: consume time minus the event's `timestamp`.
    pub latency_ms: LatencySummary,
}

/// A consumer's final report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumeReport {
    /// Valid events consumed.
    pub consumed: u64,
    /// Records that were not events.
    pub malformed: u64,
    /// The verdict.
    pub verdict: Verdict,
    /// Why the verdict is `fail` (empty on pass).
    pub reasons: Vec<String>,
    /// `--expect`, if given.
    pub expected: Option<u64>,
    /// Seconds from start to report.
    pub elapsed_s: f64,
    /// The consumer read only some partitions (a group shared them): `missing` counts the other
    /// members' events too and is not judged; `verify` gives the fleet verdict.
    pub partial_assignment: bool,
    /// Per origin.
    pub origins: BTreeMap<String, OriginReport>,
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
    /// The verdict: pass when nothing failed.
    pub verdict: Verdict,
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
    let mut text = origin_table(report.origins.iter().map(|(o, r)| (o.as_str(), r.count)));
    for (origin, r) in &report.origins {
        let l = &r.latency_ms;
        let _ = writeln!(
            text,
            "{origin}: count {}, missing {}, duplicates {}, out of order {}, latency ms p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
            r.count, r.missing, r.duplicates, r.out_of_order, l.p50, l.p99, l.p999, l.max
        );
    }
    let _ = writeln!(
        text,
        "consumed {} events ({} malformed records skipped) in {:.2} s",
        report.consumed, report.malformed, report.elapsed_s
    );
    text.push_str(&verdict_line(report.verdict, &report.reasons));
    text
}

/// `verdict: PASS`, or `verdict: FAIL (reason; reason)`, with a newline.
pub fn verdict_line(verdict: Verdict, reasons: &[String]) -> String {
    match verdict {
        Verdict::Pass => "verdict: PASS\n".to_owned(),
        Verdict::Fail => format!("verdict: FAIL ({})\n", reasons.join("; ")),
    }
}

/// A producer report as text.
pub fn produce_text(report: &ProduceReport) -> String {
    let l = &report.ack_latency_ms;
    format!(
        "produced to topic {} as origin {}: sent {}, acked {}, failed {} in {:.2} s ({:.1} events/s sent, {:.1} acked/s)\n\
         ack latency ms (from schedule): p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}\n\
         {}",
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
        verdict_line(report.verdict, &[format!("{} deliveries failed", report.failed)])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn json_uses_the_documented_keys() {
        let report = ConsumeReport {
            consumed: 2,
            malformed: 1,
            verdict: Verdict::Pass,
            reasons: vec![],
            expected: Some(2),
            elapsed_s: 0.5,
            partial_assignment: false,
            origins: BTreeMap::from([(
                "a".to_owned(),
                OriginReport {
                    count: 2,
                    duplicates: 0,
                    missing: 0,
                    out_of_order: 0,
                    latency_ms: LatencySummary {
                        p50: 1.0,
                        p99: 2.0,
                        p999: 3.0,
                        max: 4.0,
                    },
                },
            )]),
        };
        let json: serde_json::Value = serde_json::from_str(&to_json(&report)).unwrap();
        assert_eq!(json["consumed"], 2);
        assert_eq!(json["malformed"], 1);
        assert_eq!(json["verdict"], "pass");
        assert_eq!(json["origins"]["a"]["count"], 2);
        assert_eq!(json["origins"]["a"]["latency_ms"]["p999"], 3.0);
    }
}
