//! Feeds a `kafka_test_app::tally::Tally` many events from many origins, with no gaps, without a
//! broker, and reports the throughput and the peak resident memory (VmHWM) of the process.
//!
//! Usage: tally-mem [EVENTS] [ORIGINS] [PARTITIONS]    (defaults: 100000000 100 5)
//!
//! Events are interleaved across origins (origin o's event n comes before any origin's n + 1)
//! and spread round-robin over the partitions, each origin's `n` increasing per partition, as a
//! consumer of several producers sees them. Prints one JSON object; exits 1 unless the verdict is
//! pass with exactly the expected counts.

use std::time::Instant;

use kafka_test_app::event::EventEncoder;
use kafka_test_app::report::Verdict;
use kafka_test_app::tally::Tally;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.replace('_', "").parse().expect("numeric arguments"))
        .collect();
    let events = args.first().copied().unwrap_or(100_000_000);
    let origins = args.get(1).copied().unwrap_or(100).max(1);
    let partitions = args.get(2).copied().unwrap_or(5).max(1);
    let per_origin = events / origins;
    let events = per_origin * origins;

    let mut encoders: Vec<EventEncoder> = (0..origins)
        .map(|o| {
            EventEncoder::new(&format!(
                "bench-host-{o} (10.0.{}.{})",
                o / 250,
                o % 250 + 1
            ))
        })
        .collect();
    // One run (the `kta-run` header) per origin, as when each producer runs once.
    let runs: Vec<Vec<u8>> = (0..origins)
        .map(|o| format!("{:032x}", 0x5f0c_6d3e_u128 << 64 | o as u128).into_bytes())
        .collect();
    let mut tally = Tally::new();
    let base = 1_763_000_000.0_f64;
    let rss_before_kib = status_kib("VmRSS:");
    let start = Instant::now();
    for n in 0..per_origin {
        let timestamp = base + n as f64 * 1e-4;
        let partition = (n % partitions) as i32;
        for (o, encoder) in encoders.iter_mut().enumerate() {
            let id = uuid::Uuid::from_u128(((n as u128) << 32) | o as u128 | (1 << 127));
            let bytes = encoder.encode(timestamp, id, n);
            tally.record(Some(bytes), Some(&runs[o]), partition, timestamp + 0.005);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let report = tally.report(Some(events), elapsed);
    let exact = report.consumed == events
        && report.malformed == 0
        && report.origins.len() as u64 == origins
        && report.origins.values().all(|o| {
            o.count == per_origin && o.missing == 0 && o.duplicates == 0 && o.out_of_order == 0
        });
    let pass = exact && report.verdict == Verdict::Pass;
    println!(
        "{}",
        serde_json::json!({
            "events": events,
            "origins": origins,
            "partitions": partitions,
            "elapsed_s": elapsed,
            "events_per_s": events as f64 / elapsed,
            "vm_rss_before_kib": rss_before_kib,
            "vm_hwm_kib": status_kib("VmHWM:"),
            "verdict": if pass { "pass" } else { "fail" },
            "reasons": report.reasons,
        })
    );
    std::process::exit(if pass { 0 } else { 1 });
}
