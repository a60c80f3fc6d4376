//! `verify --against FILE`: check an aggregation job's count by origin against what was seen.
//!
//! Accepts the tutorial's Spark console output (the last batch in the file wins; a log prefix such
//! as `2024-02-16T12:50:12.963Z [sparkd] ` before the table is ignored), CSV (`origin,count`) or
//! JSON lines (`{"origin": …, "count": …}`). Spark's console sink truncates strings longer than 20
//! characters to 17 plus `...`; such origins are matched by prefix, and a prefix that fits several
//! origins is reported as ambiguous.
//!
//! A Spark driver's whole log (console output and log lines together, `2>&1`) also says which
//! offsets the job read: `KafkaMicroBatchStream: Initial offsets: {…}` where its reading began (a
//! query without `startingOffsets` begins at the end, `latest`), and the `Streaming query made
//! progress: {…}` report of each batch the `endOffset` it had read to. `verify` uses the first to
//! check a job that started after the producers from its start, and the second to tell a batch
//! taken before the job had read the whole topic (behind) from a wrong answer.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One row of the job's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// The origin as the job printed it (possibly truncated).
    pub origin: String,
    /// The job's count.
    pub count: u64,
}

/// Offsets by topic and partition, as Spark's Kafka source writes them.
pub type Offsets = BTreeMap<String, BTreeMap<i32, i64>>;

/// A job's answer: its rows and, from a Spark driver's log, the offsets its reading covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobAnswer {
    /// The count by origin (the last batch, for Spark).
    pub rows: Vec<JobRow>,
    /// The Spark batch the rows are (`Batch: N`), for finding that batch's progress report.
    pub batch: Option<u64>,
    /// Where the job's reading of each partition began: the lowest over every `Initial offsets`
    /// line (a job reading the topic twice logs one per read). Empty without such lines.
    pub initial: Offsets,
    /// Where the rows' batch had read to: the `endOffset` of that batch's last progress report,
    /// the highest per partition over its sources. Empty when the log has no such report.
    pub end: Offsets,
}

/// Reads a job's answer from a file.
pub fn read(path: &Path) -> Result<JobAnswer> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read --against {}: {e}", path.display())))?;
    let answer =
        parse(&text).map_err(|e| Error::Usage(format!("--against {}: {e}", path.display())))?;
    if answer.rows.is_empty() {
        return Err(Error::Usage(format!(
            "--against {}: no `origin | count` rows found; give a Spark console table, CSV \
             (origin,count) or JSON lines",
            path.display()
        )));
    }
    Ok(answer)
}

#[derive(Deserialize)]
struct JsonRow {
    origin: String,
    count: u64,
}

/// Parses the rows of the last batch (Spark) or all rows (CSV, JSON lines).
pub fn parse(text: &str) -> std::result::Result<JobAnswer, String> {
    if text.lines().any(|line| batch_number(line).is_some()) {
        return Ok(parse_spark(text));
    }
    let rows = parse_rows(text)?;
    Ok(JobAnswer {
        rows,
        ..JobAnswer::default()
    })
}

/// `N` of a console sink's `Batch: N` line (after any log prefix).
fn batch_number(line: &str) -> Option<u64> {
    let (before, number) = line.trim_end().rsplit_once("Batch: ")?;
    let starts_line = before.is_empty() || before.ends_with(char::is_whitespace);
    starts_line.then(|| number.parse().ok()).flatten()
}

/// Spark's console output, alone or inside the driver's log: the last batch's table rows, the
/// `Initial offsets` lines and that batch's progress report; every other line is the log's own.
fn parse_spark(text: &str) -> JobAnswer {
    let mut answer = JobAnswer::default();
    // Progress reports by batch, the last of each batch kept.
    let mut progress: BTreeMap<u64, Offsets> = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(batch) = batch_number(line) {
            // A new batch replaces the previous one: it is the complete result so far.
            answer.rows.clear();
            answer.batch = Some(batch);
        } else if let Some(json) = after(line, "KafkaMicroBatchStream: Initial offsets: ") {
            if let Ok(offsets) = serde_json::from_str::<Offsets>(json) {
                merge(&mut answer.initial, offsets, std::cmp::min);
            }
        } else if let Some(first) = after(line, "Streaming query made progress: ") {
            // Pretty-printed JSON over several lines (about 60): taken once it parses, else
            // (cut short, or lines with a prefix of their own) left aside with its lines read on.
            let (mut json, mut rest) = (first.to_owned(), lines.clone());
            for _ in 0..PROGRESS_LINES {
                if let Some((batch, end)) = progress_end(&json) {
                    progress.insert(batch, end);
                    lines = rest;
                    break;
                }
                let Some(more) = rest.next() else { break };
                json.push('\n');
                json.push_str(more);
            }
        } else if let Some(row) = spark_row(line) {
            answer.rows.push(row);
        }
    }
    if let Some(end) = answer.batch.and_then(|batch| progress.remove(&batch)) {
        answer.end = end;
    }
    answer
}

/// The most lines one progress report is looked for in.
const PROGRESS_LINES: usize = 1000;

/// The text after `marker` in `line`.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| line[i + marker.len()..].trim())
}

/// Adds `more` to `into`, keeping `pick` of two offsets of one partition.
fn merge(into: &mut Offsets, more: Offsets, pick: fn(i64, i64) -> i64) {
    for (topic, partitions) in more {
        let known = into.entry(topic).or_default();
        for (partition, offset) in partitions {
            let kept = known.get(&partition).map_or(offset, |&k| pick(k, offset));
            known.insert(partition, kept);
        }
    }
}

/// A progress report's batch and where its sources had read to.
fn progress_end(json: &str) -> Option<(u64, Offsets)> {
    let report: serde_json::Value = serde_json::from_str(json).ok()?;
    let batch = report.get("batchId")?.as_u64()?;
    let mut end = Offsets::new();
    for source in report.get("sources")?.as_array()? {
        // A Kafka source's offsets are JSON (other sources may be anything: left aside).
        if let Ok(offsets) = serde_json::from_value::<Offsets>(source["endOffset"].clone()) {
            merge(&mut end, offsets, std::cmp::max);
        }
    }
    Some((batch, end))
}

/// A row `|origin|count|` of a console table (after any log prefix); the header and borders,
/// and log lines that happen to hold a `|`, are not rows.
fn spark_row(line: &str) -> Option<JobRow> {
    let table = &line[line.find('|')?..];
    let cells: Vec<&str> = table.trim_end().split('|').collect();
    match cells.as_slice() {
        ["", origin, count, ""] => Some(JobRow {
            origin: origin.trim().to_owned(),
            count: count.trim().parse().ok()?,
        }),
        _ => None,
    }
}

/// Every `origin,count` (CSV) or `{"origin", "count"}` (JSON lines) row, or a row's table.
fn parse_rows(text: &str) -> std::result::Result<Vec<JobRow>, String> {
    let mut rows = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end();
        let at = || format!("line {}", number + 1);
        if let Some(table) = line.find('|').map(|i| &line[i..]) {
            let cells: Vec<&str> = table.split('|').collect();
            if cells.len() != 4 {
                return Err(format!("{}: expected |origin|count|, got {table}", at()));
            }
            let (origin, count) = (cells[1].trim(), cells[2].trim());
            if origin == "origin" && count == "count" {
                continue;
            }
            let count = count
                .parse()
                .map_err(|_| format!("{}: '{count}' is not a count", at()))?;
            rows.push(JobRow {
                origin: origin.to_owned(),
                count,
            });
        } else if line.trim_start().starts_with('{') {
            let row: JsonRow = serde_json::from_str(line).map_err(|e| format!("{}: {e}", at()))?;
            rows.push(JobRow {
                origin: row.origin,
                count: row.count,
            });
        } else if let Some((origin, count)) = line.rsplit_once(',') {
            let origin = origin.trim().trim_matches('"');
            let count = count.trim();
            match count.parse() {
                Ok(count) => rows.push(JobRow {
                    origin: origin.to_owned(),
                    count,
                }),
                // A CSV header.
                Err(_) if rows.is_empty() && origin == "origin" => {}
                Err(_) => return Err(format!("{}: '{count}' is not a count", at())),
            }
        }
    }
    Ok(rows)
}

/// How one job row compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// The job's count equals what was seen.
    Equal,
    /// The counts differ.
    Differs,
    /// No origin fits the row.
    Unknown,
    /// A truncated origin fits several origins.
    Ambiguous,
}

/// One row of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The origin as the job printed it.
    pub job_origin: String,
    /// The origin it matched, if exactly one.
    pub origin: Option<String>,
    /// Origins a truncated row fits, when ambiguous.
    pub candidates: Vec<String>,
    /// The job's count.
    pub job_count: u64,
    /// Events of that origin seen on the topic (duplicates included, as a `count()` would).
    pub seen: Option<u64>,
    /// `job_count - seen`.
    pub difference: Option<i64>,
    /// The outcome.
    pub result: Match,
}

/// Compares job rows with the count seen per origin; also returns origins the job did not list.
pub fn compare(rows: &[JobRow], seen: &BTreeMap<String, u64>) -> (Vec<Comparison>, Vec<String>) {
    let mut listed = std::collections::BTreeSet::new();
    let comparisons = rows
        .iter()
        .map(|row| {
            let candidates: Vec<&String> = match row.origin.strip_suffix("...") {
                // Spark's truncation: 17 characters and "...".
                Some(prefix) if row.origin.chars().count() == 20 => seen
                    .keys()
                    .filter(|o| o.starts_with(prefix) && o.chars().count() > 20)
                    .collect(),
                _ => seen.keys().filter(|o| **o == row.origin).collect(),
            };
            let (origin, result, candidates) = match candidates.as_slice() {
                [] => (None, Match::Unknown, vec![]),
                [one] => {
                    listed.insert((*one).clone());
                    let result = if seen[*one] == row.count {
                        Match::Equal
                    } else {
                        Match::Differs
                    };
                    (Some((*one).clone()), result, vec![])
                }
                many => (
                    None,
                    Match::Ambiguous,
                    many.iter().map(|o| (*o).clone()).collect(),
                ),
            };
            let seen_count = origin.as_ref().map(|o| seen[o]);
            Comparison {
                job_origin: row.origin.clone(),
                difference: seen_count.map(|s| row.count as i64 - s as i64),
                seen: seen_count,
                origin,
                candidates,
                job_count: row.count,
                result,
            }
        })
        .collect();
    let unlisted = seen
        .keys()
        .filter(|o| !listed.contains(*o))
        .cloned()
        .collect();
    (comparisons, unlisted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two batches of the tutorial's Spark console output: the last one counts.
    const SPARK: &str = concat!(
        include_str!("../../tests/data/spark-batch-12.txt"),
        include_str!("../../tests/data/spark-batch-13.txt")
    );

    fn seen() -> BTreeMap<String, u64> {
        BTreeMap::from([
            ("kafka-test-app-0 (10.1.29.185)".to_owned(), 38),
            ("kafka-test-app-1 (10.1.29.186)".to_owned(), 38),
            ("kafka-test-app-2 (10.1.29.187)".to_owned(), 39),
        ])
    }

    #[test]
    fn the_last_spark_batch_wins_and_truncated_origins_match_by_prefix() {
        let rows = parse(SPARK).unwrap().rows;
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            JobRow {
                origin: "kafka-test-app-1 ...".into(),
                count: 38
            }
        );
        let (comparisons, unlisted) = compare(&rows, &seen());
        assert!(unlisted.is_empty());
        assert!(
            comparisons.iter().all(|c| c.result == Match::Equal),
            "{comparisons:?}"
        );
        assert_eq!(
            comparisons[2].origin.as_deref(),
            Some("kafka-test-app-2 (10.1.29.187)")
        );
    }

    #[test]
    fn a_changed_count_is_reported_with_both_counts() {
        let rows = parse(&SPARK.replace(
            "|kafka-test-app-2 ...|   39|",
            "|kafka-test-app-2 ...|   41|",
        ))
        .unwrap()
        .rows;
        let (comparisons, _) = compare(&rows, &seen());
        let differs: Vec<_> = comparisons
            .iter()
            .filter(|c| c.result != Match::Equal)
            .collect();
        assert_eq!(differs.len(), 1);
        assert_eq!(
            differs[0].origin.as_deref(),
            Some("kafka-test-app-2 (10.1.29.187)")
        );
        assert_eq!(
            (differs[0].job_count, differs[0].seen, differs[0].difference),
            (41, Some(39), Some(2))
        );
    }

    #[test]
    fn ambiguous_prefixes_and_unknown_origins_are_named() {
        let mut seen = seen();
        seen.insert("kafka-test-app-1 (10.1.29.200)".to_owned(), 5);
        let rows = parse("|kafka-test-app-1 ...|   43|\n|somebody-else|1|\n")
            .unwrap()
            .rows;
        let (comparisons, unlisted) = compare(&rows, &seen);
        assert_eq!(comparisons[0].result, Match::Ambiguous);
        assert_eq!(comparisons[0].candidates.len(), 2);
        assert_eq!(comparisons[1].result, Match::Unknown);
        assert_eq!(unlisted.len(), 4);
    }

    /// A real driver's log (scripts/tutorial, Spark 3.4.1: console output and log lines
    /// together, log lines inside the table's frame, multi-line progress reports).
    const DRIVER_LOG: &str = include_str!("../../tests/data/spark-driver.log");

    #[test]
    fn a_driver_log_gives_the_last_batch_its_initial_and_end_offsets() {
        let answer = parse(DRIVER_LOG).unwrap();
        assert_eq!(answer.batch, Some(1));
        let rows: Vec<(&str, u64)> = (answer.rows.iter())
            .map(|r| (r.origin.as_str(), r.count))
            .collect();
        assert_eq!(
            rows,
            [
                ("kafka-test-app-2 ...", 300),
                ("kafka-test-app-0 ...", 300),
                ("kafka-test-app-1 ...", 300)
            ]
        );
        let topic = "spark-streaming-store".to_owned();
        let zeros = (0..6).map(|p| (p, 0)).collect();
        assert_eq!(answer.initial, BTreeMap::from([(topic.clone(), zeros)]));
        let end = BTreeMap::from([(0, 143), (1, 165), (2, 130), (3, 153), (4, 154), (5, 155)]);
        assert_eq!(answer.end, BTreeMap::from([(topic, end)]));
    }

    #[test]
    fn reads_twice_keep_the_lowest_start_and_a_batch_without_its_report_has_no_end() {
        let late = DRIVER_LOG.replace(
            r#"Initial offsets: {"spark-streaming-store":{"2":0,"5":0,"4":0,"1":0,"3":0,"0":0}}"#,
            concat!(
                r#"Initial offsets: {"spark-streaming-store":{"2":40,"5":0,"4":0,"1":0,"3":0,"0":7}}"#,
                "\n",
                r#"x INFO KafkaMicroBatchStream: Initial offsets: {"spark-streaming-store":{"2":50,"0":5}}"#
            ),
        );
        let answer = parse(&late).unwrap();
        let start = &answer.initial["spark-streaming-store"];
        assert_eq!((start[&0], start[&2], start[&5]), (5, 40, 0));
        // Cut inside batch 1's progress report: its rows stand, its end is not known.
        let cut = &DRIVER_LOG[..DRIVER_LOG.rfind("\"endOffset\"").unwrap()];
        let answer = parse(cut).unwrap();
        assert_eq!((answer.batch, answer.rows.len()), (Some(1), 3));
        assert!(answer.end.is_empty(), "{:?}", answer.end);
        // A report of another batch says nothing of this one.
        let other = DRIVER_LOG.replace("\"batchId\" : 1,", "\"batchId\" : 2,");
        assert!(parse(&other).unwrap().end.is_empty());
    }

    #[test]
    fn csv_and_json_lines() {
        let csv = parse("origin,count\nkafka-test-app-0 (10.1.29.185),38\n")
            .unwrap()
            .rows;
        assert_eq!(
            csv,
            vec![JobRow {
                origin: "kafka-test-app-0 (10.1.29.185)".into(),
                count: 38
            }]
        );
        let json = parse("{\"origin\": \"kafka-test-app-0 (10.1.29.185)\", \"count\": 38}\n")
            .unwrap()
            .rows;
        assert_eq!(json, csv);
        assert!(parse("origin,count\na,many\n").is_err());
    }
}
