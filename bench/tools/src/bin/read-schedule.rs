//! Reads a topic written by one `kafka-test-app produce --rate R` run back from the beginning and
//! measures, from the events' own `timestamp` fields (taken right before each send), how well the
//! sends kept to their schedule: event `n` is due at `start + n / R`.
//!
//! Usage: read-schedule BOOTSTRAP TOPIC RATE DURATION_S
//!
//! `start` is estimated as min over n of (timestamp_n - n / R), so every event's deviation
//! (timestamp_n - start - n / R) is >= 0 and measures how late it was sent relative to the best
//! kept point of the schedule. Prints one JSON object:
//! - `events`, `expected` (R x DURATION_S), `missing`, `duplicates`;
//! - `achieved_rate`: (events - 1) / (last timestamp - first timestamp);
//! - `rate_error_pct`: achieved vs R;
//! - `worst_window_pct`: over the whole 1 s windows [start + k, start + k + 1) of the run, the
//!   largest |events in the window - R| / R;
//! - `deviation_ms`: p50 / p99 / p99.9 / max of the deviation.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 {
        eprintln!("usage: read-schedule BOOTSTRAP TOPIC RATE DURATION_S");
        std::process::exit(2);
    }
    let (bootstrap, topic) = (&args[0], &args[1]);
    let rate: f64 = args[2].parse().expect("RATE");
    let duration: f64 = args[3].parse().expect("DURATION_S");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("read-schedule-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assign");

    // timestamps[n], NaN where not (yet) seen.
    let mut timestamps: Vec<f64> = Vec::with_capacity((rate * duration) as usize + 16);
    let mut duplicates = 0u64;
    let mut malformed = 0u64;
    let mut at_eof: HashSet<i32> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while (at_eof.len() as i32) < partitions && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                at_eof.remove(&message.partition());
                match kafka_test_app::event::decode(message.payload()) {
                    Ok(event) => {
                        let n = event.n as usize;
                        if timestamps.len() <= n {
                            timestamps.resize(n + 1, f64::NAN);
                        }
                        if timestamps[n].is_nan() {
                            timestamps[n] = event.timestamp;
                        } else {
                            duplicates += 1;
                        }
                    }
                    Err(_) => malformed += 1,
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_eof.insert(p);
            }
            Some(Err(e)) => eprintln!("read-schedule: {e}"),
        }
    }
    let seen: Vec<(usize, f64)> = timestamps
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, t)| !t.is_nan())
        .collect();
    let events = seen.len();
    let missing = timestamps.len() - events;
    if events < 2 {
        eprintln!("read-schedule: only {events} events in {topic}");
        std::process::exit(1);
    }
    let interval = 1.0 / rate;
    let start = seen
        .iter()
        .map(|&(n, t)| t - n as f64 * interval)
        .fold(f64::INFINITY, f64::min);
    let mut deviation: Vec<f64> = seen
        .iter()
        .map(|&(n, t)| (t - start - n as f64 * interval) * 1e3)
        .collect();
    deviation.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| deviation[((deviation.len() - 1) as f64 * p).round() as usize];

    let (first, last) = (seen[0].1, seen[events - 1].1);
    let achieved = (events - 1) as f64 / (last - first);
    let whole = duration.floor() as usize;
    let mut windows = vec![0u64; whole.max(1)];
    for &(_, t) in &seen {
        let k = ((t - start).max(0.0)).floor() as usize;
        if k < whole {
            windows[k] += 1;
        }
    }
    let (worst_k, worst) = windows
        .iter()
        .enumerate()
        .map(|(k, &c)| (k, (c as f64 - rate).abs() / rate * 100.0))
        .fold((0, 0.0f64), |acc, x| if x.1 > acc.1 { x } else { acc });
    println!(
        "{}",
        serde_json::json!({
            "topic": topic,
            "target_rate": rate,
            "duration_s": duration,
            "events": events,
            "expected": (rate * duration).round() as u64,
            "missing": missing,
            "duplicates": duplicates,
            "malformed": malformed,
            "achieved_rate": achieved,
            "rate_error_pct": (achieved - rate) / rate * 100.0,
            "worst_window_pct": worst,
            "worst_window": { "second": worst_k, "events": windows[worst_k] },
            "window_min": windows.iter().min(),
            "window_max": windows.iter().max(),
            "deviation_ms": { "p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": q(1.0) },
        })
    );
}
