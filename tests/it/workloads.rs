//! Workloads people test with, on real Apache Kafka: payload size, keys and compression, each
//! verified exactly; the bytes on the topic are still the original's event (four fields first).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{app, json, run, Broker};
use rdkafka::Message;

/// One record as the topic holds it: partition, key, value.
type Record = (i32, Option<Vec<u8>>, Vec<u8>);

/// Every record of `topic` (a PLAINTEXT cluster), read with the library's whole-topic reader.
fn records(broker: &Broker, topic: &str) -> Vec<Record> {
    let settings = kafka_test_app::testing::ConnectionSettings {
        bootstrap_servers: broker.bootstrap(),
        ..Default::default()
    };
    let mut records = Vec::new();
    let found = kafka_test_app::testing::read_to_end(
        &settings,
        topic,
        &tokio_util::sync::CancellationToken::new(),
        |message| {
            records.push((
                message.partition(),
                message.key().map(<[u8]>::to_vec),
                message.payload().unwrap_or_default().to_vec(),
            ))
        },
    )
    .unwrap();
    assert!(found, "topic {topic} does not exist");
    records
}

/// Python's own reading of each value: the first four keys of `json.loads` in order, and whether
/// `json.dumps` of what it read gives the value back byte for byte (the original's shape).
fn python_reads(values: &[Vec<u8>]) -> Vec<(Vec<String>, bool)> {
    let program = r#"
import json, sys
for line in sys.stdin:
    value = json.loads(line)
    event = json.loads(value)
    print(json.dumps([list(event)[:4], json.dumps(event) == value]))
"#;
    let mut child = Command::new("python3")
        .args(["-c", program])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().unwrap();
    let input: String = values
        .iter()
        .map(|v| serde_json::to_string(std::str::from_utf8(v).unwrap()).unwrap() + "\n")
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Produces `count` events to a fresh 6-partition topic with `options`, then checks what a user
/// would: the producer's report, `verify`'s exact verdict, the consumer's count by origin (the
/// Spark job's), and the values Python reads. Returns the records on the topic.
fn produce_and_check(
    topic: &str,
    options: &[&str],
    count: u64,
) -> (serde_json::Value, Vec<Record>) {
    let broker = Broker::start();
    let origin = format!("workload-{topic} (10.0.0.18)");
    let count_arg = count.to_string();
    let produced = json(&run(
        app()
            .args([
                "produce",
                "--topic",
                topic,
                "--partitions",
                "6",
                "--rate",
                "0",
            ])
            .args([
                "--num-messages",
                &count_arg,
                "--origin",
                &origin,
                "--output",
                "json",
            ])
            .args(options)
            .envs(broker.env()),
        0,
    ));
    assert_eq!(
        (&produced["sent"], &produced["acked"], &produced["failed"]),
        (&count.into(), &count.into(), &0.into()),
        "{produced}"
    );
    let verified = json(&run(
        app()
            .args(["verify", "--topic", topic, "--output", "json"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(verified["verdict"], "pass", "{verified}");
    assert_eq!(verified["consumed"], count, "{verified}");
    assert_eq!(verified["malformed"], 0, "{verified}");
    assert_eq!(verified["origins"][&origin]["count"], count, "{verified}");
    crate::fleet::assert_no_anomaly(&verified);
    let consumed = json(&run(
        app()
            .args(["consume", "--topic", topic, "--expect", &count_arg])
            .args(["--idle-timeout", "60s", "--output", "json"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(consumed["verdict"], "pass", "{consumed}");
    assert_eq!(consumed["origins"][&origin]["count"], count, "{consumed}");

    let records = records(broker, topic);
    assert_eq!(records.len() as u64, count);
    let values: Vec<Vec<u8>> = records.iter().map(|(_, _, v)| v.clone()).collect();
    for (keys, dumps_back) in python_reads(&values) {
        assert_eq!(keys, ["timestamp", "_id", "origin", "content"]);
        assert!(dumps_back, "json.dumps(json.loads(value)) is not the value");
    }
    (produced, records)
}

#[test]
fn padded_events_are_n_bytes_and_verify_exactly() {
    let (produced, records) = produce_and_check("wl-padded", &["--payload-bytes", "1024"], 3000);
    assert_eq!(produced["workload"]["payload_bytes"], 1024);
    let lengths: BTreeSet<usize> = records.iter().map(|(_, _, v)| v.len()).collect();
    assert_eq!(lengths, BTreeSet::from([1024]));
    for (_, key, value) in &records {
        assert_eq!(key, &None, "the original sends no key");
        let event: serde_json::Value = serde_json::from_slice(value).unwrap();
        assert!(event["padding"]
            .as_str()
            .unwrap()
            .bytes()
            .all(|b| b == b'x'));
    }
}

#[test]
fn the_default_event_has_no_padding_field_and_no_key() {
    let (produced, records) = produce_and_check("wl-default", &[], 500);
    assert_eq!(
        produced["workload"]["payload_bytes"],
        serde_json::Value::Null
    );
    assert_eq!(produced["workload"]["key"], "none");
    assert_eq!(produced["workload"]["compression"], "none");
    for (_, key, value) in &records {
        assert_eq!(key, &None);
        let text = std::str::from_utf8(value).unwrap();
        assert!(!text.contains("padding") && text.ends_with("\"}"), "{text}");
    }
}

#[test]
fn random_keys_use_at_most_k_partitions_and_sequential_keys_are_distinct() {
    let (produced, records) = produce_and_check("wl-random-keys", &["--key", "random:3"], 3000);
    assert_eq!(produced["workload"]["key"], "random:3");
    let keys: BTreeSet<Vec<u8>> = records.iter().filter_map(|(_, k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        BTreeSet::from([b"0".to_vec(), b"1".to_vec(), b"2".to_vec()])
    );
    let mut partitions_of_key: BTreeMap<Vec<u8>, BTreeSet<i32>> = BTreeMap::new();
    for (partition, key, _) in &records {
        partitions_of_key
            .entry(key.clone().unwrap())
            .or_default()
            .insert(*partition);
    }
    // Each key on one partition, so at most 3 partitions of the 6 are used.
    assert!(
        partitions_of_key.values().all(|p| p.len() == 1),
        "{partitions_of_key:?}"
    );
    let used: BTreeSet<i32> = records.iter().map(|(p, _, _)| *p).collect();
    assert!(used.len() <= 3, "{used:?}");

    let (_, records) = produce_and_check("wl-sequential-keys", &["--key", "sequential"], 3000);
    let keys: BTreeSet<Vec<u8>> = records.iter().filter_map(|(_, k, _)| k.clone()).collect();
    let expected: BTreeSet<Vec<u8>> = (0..3000u64).map(|n| n.to_string().into_bytes()).collect();
    assert_eq!(keys, expected, "every event's key is its n, all distinct");
    for (_, key, value) in &records {
        let event: serde_json::Value = serde_json::from_slice(value).unwrap();
        let n = std::str::from_utf8(key.as_deref().unwrap()).unwrap();
        assert_eq!(event["content"], format!("Message #{n}"));
    }
}

#[test]
fn origin_keys_put_each_producer_on_one_partition() {
    let topic = "wl-origin-key";
    let (produced, records) = produce_and_check(topic, &["--key", "origin"], 3000);
    assert_eq!(produced["workload"]["key"], "origin");
    let origin = format!("workload-{topic} (10.0.0.18)");
    for (_, key, _) in &records {
        assert_eq!(key.as_deref(), Some(origin.as_bytes()));
    }
    let used: BTreeSet<i32> = records.iter().map(|(p, _, _)| *p).collect();
    assert_eq!(used.len(), 1, "one key, one partition of the 6: {used:?}");
}

#[test]
fn every_compression_codec_verifies_exactly() {
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("wl-{codec}");
        let (produced, records) = produce_and_check(
            &topic,
            &["--compression", codec, "--payload-bytes", "2048"],
            3000,
        );
        assert_eq!(produced["workload"]["compression"], codec);
        assert!(records.iter().all(|(_, _, v)| v.len() == 2048));
        // The broker stores the batches as they came: 6 MB of values, mostly padding, take far
        // less on disk when compressed.
        let on_disk = log_bytes(Broker::start(), &topic);
        assert!(on_disk < 1_500_000, "{codec}: {on_disk} bytes on disk");
    }
    let (_, _) = produce_and_check("wl-uncompressed", &["--payload-bytes", "2048"], 3000);
    let on_disk = log_bytes(Broker::start(), "wl-uncompressed");
    assert!(
        on_disk > 3000 * 2048,
        "uncompressed: {on_disk} bytes on disk"
    );
}

/// Bytes of `topic`'s log segments on the one node's disk.
fn log_bytes(broker: &Broker, topic: &str) -> u64 {
    let data = broker.dir().join("node1/data");
    let mut total = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let is_partition = name
            .strip_prefix(topic)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
        if !is_partition {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "log") {
                total += std::fs::metadata(&file).unwrap().len();
            }
        }
    }
    assert!(
        total > 0,
        "no log segments of {topic} under {}",
        data.display()
    );
    total
}

/// Every phase's count in a producer report.
fn phase_counts(produced: &serde_json::Value) -> Vec<u64> {
    produced["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sent"].as_u64().unwrap())
        .collect()
}

/// Steps with a warm-up, consumed while they are produced by a consumer that polls in large
/// batches and ends on the control topic's word (`--until-complete`): each step's count is
/// exactly rate × duration, the warm-up's events are verified but out of both latencies, and the
/// consumer ends with every event, not on a count.
#[test]
fn steps_with_a_warmup_send_exact_counts_and_the_consumer_ends_on_the_control_topic() {
    let broker = Broker::start();
    let topic = "wl-steps";
    let origin = "steps (10.0.0.19)";
    // The consumer starts first and waits for the topic: the only run it will see announced is
    // the one below, so it cannot end before that run has begun.
    let (consumer, stderr) = crate::common::spawn(
        app()
            .args([
                "consume",
                "--topic",
                topic,
                "--until-complete",
                "--output",
                "json",
            ])
            .args(["--idle-timeout", "120s"])
            // Large batches: a poll returns many events at once.
            .args([
                "-X",
                "fetch.min.bytes=200000",
                "-X",
                "fetch.wait.max.ms=400",
            ])
            .envs(broker.env()),
    );
    let stderr = crate::common::drain(stderr);
    let produced = json(&run(
        app()
            .args([
                "produce", "--topic", topic, "--origin", origin, "--output", "json",
            ])
            .args(["--steps", "200@2s,500@1s,100@1s", "--warmup", "1s"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(phase_counts(&produced), [400, 500, 100], "{produced}");
    assert_eq!(produced["sent"], 1000);
    assert_eq!(produced["acked"], 1000);
    // The first second of the 200/s step.
    assert_eq!(produced["warmup_events"], 200);
    assert_eq!(produced["ack_latency_ms"]["count"], 800, "{produced}");
    // No event is handed over before it is due: each step begins on time or later.
    for (phase, start) in produced["phases"]
        .as_array()
        .unwrap()
        .iter()
        .zip([0.0, 2.0, 3.0])
    {
        assert_eq!(phase["start_s"], start);
        assert!(phase["first_send_s"].as_f64().unwrap() >= start, "{phase}");
    }
    let last = produced["phases"][2]["last_send_s"].as_f64().unwrap();
    assert!(
        last >= 3.99,
        "the last event (due at 3.99 s) was sent at {last} s"
    );

    let (code, stdout) = crate::common::finish(consumer);
    let stderr = stderr.join().unwrap();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("every announced producer run is fully consumed"),
        "{stderr}"
    );
    let consumed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(consumed["consumed"], 1000, "{consumed}");
    assert_eq!(consumed["verdict"], "pass", "{consumed}");
    let row = &consumed["origins"][origin];
    assert_eq!(row["count"], 1000);
    assert_eq!(row["warmup_events"], 200);
    assert_eq!(row["latency_ms"]["count"], 800, "{row}");

    let verified = json(&run(
        app()
            .args(["verify", "--topic", topic, "--output", "json"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(verified["consumed"], 1000, "{verified}");
    assert_eq!(verified["origins"][origin]["count"], 1000);
    crate::fleet::assert_no_anomaly(&verified);
}

/// A ramp from 0 to 400/s over 2 s holds 400 events (the integral of its rate), sends none early
/// (event 399 is due at √3.99 s), and verifies exactly.
#[test]
fn a_ramp_sends_the_integral_of_its_rate_and_verifies_exactly() {
    let broker = Broker::start();
    let topic = "wl-ramp";
    let produced = json(&run(
        app()
            .args(["produce", "--topic", topic, "--origin", "ramp (10.0.0.21)"])
            .args(["--ramp", "0:400:2s", "--output", "json"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(phase_counts(&produced), [400], "{produced}");
    assert_eq!(
        (&produced["sent"], &produced["acked"]),
        (&400.into(), &400.into())
    );
    assert_eq!(produced["warmup_events"], 0);
    assert_eq!(produced["ack_latency_ms"]["count"], 400);
    let last = produced["phases"][0]["last_send_s"].as_f64().unwrap();
    assert!(last >= 3.99f64.sqrt(), "event 399 was sent at {last} s");
    let verified = json(&run(
        app()
            .args(["verify", "--topic", topic, "--output", "json"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(verified["verdict"], "pass", "{verified}");
    assert_eq!(verified["origins"]["ramp (10.0.0.21)"]["count"], 400);
}

/// `verify` of `topic` with extra arguments, expecting exit code `code`.
fn verify(broker: &Broker, topic: &str, extra: &[&str], code: i32) -> serde_json::Value {
    json(&run(
        app()
            .args(["verify", "--topic", topic, "--output", "json"])
            .args(extra)
            .envs(broker.env()),
        code,
    ))
}

/// Transactions of 20 events, a fifth of them aborted: read committed, every committed event is
/// seen once and no aborted one (the consumer's count by origin is the committed count); read
/// uncommitted, the aborted events are counted apart, never as loss or duplicates; an aborted
/// event written again outside its transaction (a pipeline republishing aborted data) is an
/// aborted read and fails the verdict.
#[test]
fn transactions_with_aborts_verify_exactly_and_an_aborted_read_fails() {
    let broker = Broker::start();
    let topic = "wl-txn";
    let origin = "txn (10.0.0.22)";
    let produced = json(&run(
        app()
            .args([
                "produce", "--topic", topic, "--origin", origin, "--output", "json",
            ])
            .args(["--rate", "0", "--num-messages", "2000"])
            .args(["--transactional-id", "wl-txn-1", "--txn-events", "20"])
            .args(["--abort-rate", "0.2"])
            .envs(broker.env()),
        0,
    ));
    let txn = &produced["transactions"];
    let (committed, aborted) = (
        txn["committed_events"].as_u64().unwrap(),
        txn["aborted_events"].as_u64().unwrap(),
    );
    assert_eq!(committed + aborted, 2000, "{produced}");
    assert_eq!(txn["committed"].as_u64().unwrap() * 20, committed);
    assert_eq!(txn["aborted"].as_u64().unwrap() * 20, aborted);
    // 100 draws at 0.2: none aborted has odds of 2e-10.
    assert!(aborted > 0 && committed > 0, "{produced}");
    assert_eq!(
        (&produced["acked"], &produced["failed"]),
        (&committed.into(), &0.into())
    );

    let report = verify(broker, topic, &[], 0);
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(report["consumed"], committed);
    assert_eq!(report["origins"][origin]["count"], committed);
    assert_eq!(report["aborted_reads"], 0);
    crate::fleet::assert_no_anomaly(&report);
    assert_eq!(report["unreported_tail"], 0);

    let uncommitted = verify(broker, topic, &["--isolation", "read_uncommitted"], 0);
    assert_eq!(uncommitted["verdict"], "pass", "{uncommitted}");
    assert_eq!(uncommitted["consumed"], 2000);
    assert_eq!(uncommitted["aborted_seen"], aborted);
    assert_eq!(uncommitted["accounting"]["aborted"], aborted);
    assert_eq!(uncommitted["accounting"]["delivered"], committed);
    crate::fleet::assert_no_anomaly(&uncommitted);

    let consumed = json(&run(
        app()
            .args([
                "consume",
                "--topic",
                topic,
                "--until-complete",
                "--output",
                "json",
            ])
            .args(["--idle-timeout", "60s"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(
        consumed["origins"][origin]["count"], committed,
        "{consumed}"
    );
    assert_eq!(consumed["verdict"], "pass");
    // The consumer reading uncommitted counts the aborted events apart, as verify does.
    let read_uncommitted = json(&run(
        app()
            .args(["consume", "--topic", topic, "--until-complete"])
            .args(["--isolation", "read_uncommitted", "--output", "json"])
            .args(["--idle-timeout", "60s"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(read_uncommitted["verdict"], "pass", "{read_uncommitted}");
    assert_eq!(read_uncommitted["consumed"], 2000, "{read_uncommitted}");
    assert_eq!(read_uncommitted["origins"][origin]["count"], 2000);
    assert_eq!(
        read_uncommitted["aborted_seen"], aborted,
        "{read_uncommitted}"
    );
    assert_eq!(read_uncommitted["aborted_reads"], 0);
    assert_eq!(read_uncommitted["accounting"]["delivered"], committed);
    crate::fleet::assert_no_anomaly(&read_uncommitted);

    // Inject an aborted read: one aborted event written again, outside any transaction.
    let seen: BTreeSet<u64> = records(broker, topic)
        .iter()
        .map(|(_, _, v)| kafka_test_app::event::decode(Some(v)).unwrap().n)
        .collect();
    let first_aborted = (0..2000).find(|n| !seen.contains(n)).unwrap();
    let run_id = produced["run"].as_str().unwrap();
    let producer = crate::fleet::raw_producer(broker);
    crate::fleet::write_events(&producer, topic, origin, run_id, &[first_aborted]);
    let failed = verify(broker, topic, &[], 1);
    assert_eq!(failed["verdict"], "fail");
    assert_eq!(failed["aborted_reads"], 1, "{failed}");
    let reasons: Vec<&str> = failed["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(
            &format!(
                "{origin}: 1 aborted reads (events of an aborted transaction, seen read-committed)"
            )
            .as_str()
        ),
        "{reasons:?}"
    );
    // The copy came late, so it may also sit behind higher events of its partition; nothing
    // else is wrong.
    assert!(failed["out_of_order"].as_u64().unwrap() <= 1, "{failed}");
    assert_eq!(
        (&failed["lost"], &failed["duplicates"]),
        (&0.into(), &0.into())
    );
}

/// A transactional producer killed inside a transaction: the next producer with the same
/// transactional id fences it and its open transaction is aborted, so a read-committed verify
/// sees none of its events (and the successor's exactly); only read uncommitted shows them.
#[test]
fn a_producer_killed_mid_transaction_is_fenced_and_its_transaction_aborted() {
    let broker = Broker::start();
    let topic = "wl-fenced";
    let (mut killed, mut stderr) = crate::common::spawn(
        app()
            .args([
                "produce",
                "--topic",
                topic,
                "--origin",
                "killed (10.0.0.23)",
            ])
            .args([
                "--rate",
                "500",
                "--duration",
                "120s",
                "--report-interval",
                "1s",
            ])
            .args([
                "--transactional-id",
                "wl-fenced-1",
                "--txn-events",
                "1000000",
            ])
            .envs(broker.env()),
    );
    // A progress line with acknowledgements: events of the open transaction are on the log.
    let mut lines = Vec::new();
    for _ in 0..30 {
        let line = crate::common::wait_for_line(&mut stderr, "progress");
        let acked_some = line.last().is_some_and(|l| !l.contains("acked=0"));
        lines.extend(line);
        if acked_some {
            break;
        }
    }
    crate::common::signal(&killed, libc::SIGKILL);
    killed.wait().unwrap();
    assert!(lines.iter().any(|l| l.contains("progress")), "{lines:?}");

    let successor = json(&run(
        app()
            .args([
                "produce",
                "--topic",
                topic,
                "--origin",
                "successor (10.0.0.24)",
            ])
            .args(["--rate", "0", "--num-messages", "100", "--output", "json"])
            .args(["--transactional-id", "wl-fenced-1", "--txn-events", "10"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(successor["transactions"]["committed_events"], 100);

    // The killed run did not finish: incomplete, and nothing else.
    let report = verify(broker, topic, &[], 3);
    assert_eq!(
        report["origins"]["successor (10.0.0.24)"]["count"], 100,
        "{report}"
    );
    assert!(
        report["origins"]
            .get("killed (10.0.0.23)")
            .is_none_or(|o| o["count"] == 0),
        "{report}"
    );
    assert_eq!(report["consumed"], 100);
    crate::fleet::assert_no_anomaly(&report);
    assert_eq!(report["aborted_reads"], 0);
    let uncommitted = verify(broker, topic, &["--isolation", "read_uncommitted"], 3);
    let written = uncommitted["origins"]["killed (10.0.0.23)"]["count"]
        .as_u64()
        .unwrap();
    assert!(written > 0, "{uncommitted}");
    assert_eq!(uncommitted["consumed"], 100 + written);
    crate::fleet::assert_no_anomaly(&uncommitted);
}

/// A topic whose records carry the broker's append time (`LogAppendTime`), made with the
/// admin API.
fn create_log_append_time_topic(broker: &Broker, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        broker.client_config().create().unwrap();
    let new = NewTopic::new(topic, 3, TopicReplication::Fixed(1))
        .set("message.timestamp.type", "LogAppendTime");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = runtime
        .block_on(admin.create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(30))),
        ))
        .unwrap();
    for result in results {
        result.unwrap();
    }
}

/// Producers whose clocks are 5 s ahead and 3 s behind (the `--clock-offset` test hook), on a
/// topic with broker append times: the consumer bounds each clock's offset from the append
/// times and says which latencies are not to be trusted; the counts and the verdict are
/// unchanged. (Whether the ahead one's events are still in the consumer's future when read
/// depends on timing, so `future_timestamps` is left to tally's unit tests.)
#[test]
fn append_times_bound_each_producers_clock_offset() {
    let broker = Broker::start();
    let topic = "wl-skew";
    create_log_append_time_topic(broker, topic);
    let origins = [
        ("ahead (10.0.0.25)", "5s"),
        ("behind (10.0.0.26)", "-3s"),
        ("true (10.0.0.27)", "0s"),
    ];
    for (origin, offset) in origins {
        json(&run(
            app()
                .args([
                    "produce", "--topic", topic, "--origin", origin, "--output", "json",
                ])
                .args([
                    "--rate",
                    "0",
                    "--num-messages",
                    "200",
                    "--clock-offset",
                    offset,
                ])
                .envs(broker.env()),
            0,
        ));
    }
    let consumed = json(&run(
        app()
            .args([
                "consume",
                "--topic",
                topic,
                "--until-complete",
                "--output",
                "json",
            ])
            .args(["--idle-timeout", "60s"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(consumed["verdict"], "pass", "{consumed}");
    let clock = |origin: &str| consumed["origins"][origin]["clock"].clone();
    let ahead = clock("ahead (10.0.0.25)");
    assert_eq!(ahead["appended"], 200, "{consumed}");
    // 5 s ahead, less the time an event took to reach the broker (well under a second here).
    let at_least = ahead["producer_ahead_ms_at_least"].as_f64().unwrap();
    assert!((4000.0..=5000.0).contains(&at_least), "{ahead}");
    let behind = clock("behind (10.0.0.26)");
    assert_eq!(behind["producer_ahead_ms_at_least"], 0.0);
    let at_most = behind["producer_behind_ms_at_most"].as_f64().unwrap();
    assert!((3000.0..4000.0).contains(&at_most), "{behind}");
    let honest = clock("true (10.0.0.27)");
    assert!(
        honest["producer_behind_ms_at_most"].as_f64().unwrap() < 1000.0,
        "{honest}"
    );
    let notes: Vec<&str> = consumed["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        // Only the clock notes: whether the ahead one's events were still in the consumer's
        // future when read ("timestamped ahead of this clock") depends on timing.
        .filter(|n| !n.contains("timestamped ahead of this clock"))
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with(&format!(
        "ahead (10.0.0.25): its clock is at least {at_least:.0} ms ahead of the broker's"
    )));
    assert!(notes[1].starts_with(&format!(
        "behind (10.0.0.26): every event reached the broker at least {at_most:.0} ms after its \
         timestamp"
    )));
    let verified = verify(broker, topic, &[], 0);
    assert_eq!(verified["consumed"], 600);
    let clock_notes = verified["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            let n = n.as_str().unwrap();
            n.contains("ahead of the broker's") || n.contains("after its timestamp")
        })
        .count();
    assert_eq!(clock_notes, 2, "{verified}");
}

/// Whether consumer group `group` has a member now, and the sum of the offsets it committed on
/// the `partitions` partitions of `topic` (records consumed, on a topic without transactions):
/// what the cluster itself says of a held-back group.
fn group_state(broker: &Broker, group: &str, topic: &str, partitions: i32) -> (bool, i64) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let timeout = std::time::Duration::from_secs(10);
    let admin: BaseConsumer = broker
        .client_config()
        .set("group.id", group)
        .create()
        .unwrap();
    let groups = admin.fetch_group_list(Some(group), timeout).unwrap();
    let has_member = groups
        .groups()
        .iter()
        .any(|g| g.name() == group && !g.members().is_empty());
    let mut list = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = admin.committed_offsets(list, timeout).unwrap();
    let sum = committed
        .elements()
        .iter()
        .filter_map(|e| e.offset().to_raw())
        .filter(|&offset| offset >= 0)
        .sum();
    (has_member, sum)
}

/// The drain of a consumer report, after checking what every drained backlog must show: the hold
/// ended as `hold_ended` says, the drain consumed exactly the backlog (`events` acknowledged by
/// `runs` runs, all finished) and all of it, and its rate is its count over its seconds.
fn assert_drained(
    consumed: &serde_json::Value,
    hold_ended: &str,
    runs: u64,
    events: u64,
) -> serde_json::Value {
    assert_eq!(consumed["verdict"], "pass", "{consumed}");
    assert_eq!(consumed["consumed"], events, "{consumed}");
    assert_eq!(consumed["loss_judged"], true, "{consumed}");
    crate::fleet::assert_no_anomaly(consumed);
    let drain = consumed["drain"].clone();
    assert_eq!(drain["hold_ended"], hold_ended, "{drain}");
    assert_eq!(
        (&drain["runs"], &drain["runs_finished"]),
        (&runs.into(), &runs.into()),
        "{drain}"
    );
    assert_eq!(drain["backlog"], events, "{drain}");
    assert_eq!(drain["events"], events, "{drain}");
    assert_eq!(drain["complete"], true, "{drain}");
    let seconds = drain["seconds"].as_f64().unwrap();
    let rate = drain["events_per_s"].as_f64().unwrap();
    assert!(seconds > 0.0 && rate > 0.0, "{drain}");
    let count_over_seconds = events as f64 / seconds;
    assert!(
        (rate - count_over_seconds).abs() <= 1e-9 * count_over_seconds,
        "{rate} events/s reported, {events} events in {seconds} s: {drain}"
    );
    assert!(drain["join_s"].as_f64().unwrap() >= 0.0, "{drain}");
    drain
}

/// Backlog mode. A consumer started before any producer holds its group back
/// (`--hold-until-done --hold-runs 2`) while two producers build a backlog one after the other:
/// once the first has finished, the cluster shows the group with no member and nothing
/// committed. Once the second has finished, the consumer joins and drains: exact verdict, the
/// drain's count is the backlog's (every event the two runs acknowledged), its rate is that count
/// over its seconds, and it ends on the control topic's word (the idle timeout is far off). A
/// consumer started once the backlog is built (no `--hold-runs`) drains it at once, alike; one
/// waiting for a third run that never comes ends its hold on `--idle-timeout`, with a note that
/// says so, and drains alike.
#[test]
fn a_backlog_built_while_the_group_is_held_back_is_drained_exactly() {
    let broker = Broker::start();
    let topic = "wl-backlog";
    let (prefix, group) = ("wl-backlog-held-", "wl-backlog-held-1");
    let hold = |prefix: &str, extra: &[&str]| {
        let mut command = app();
        command
            .args(["consume", "--topic", topic, "--hold-until-done"])
            .args(["--consumer-group-prefix", prefix, "--output", "json"])
            .args(extra)
            .envs(broker.env());
        command
    };
    let (consumer, mut stderr) = crate::common::spawn(&mut hold(
        prefix,
        &["--hold-runs", "2", "--idle-timeout", "120s"],
    ));
    crate::common::wait_for_line(&mut stderr, "holding the group back");
    let produce = |origin: &str, count: u64| {
        let produced = json(&run(
            app()
                .args(["produce", "--topic", topic, "--partitions", "6"])
                .args(["--rate", "0", "--num-messages", &count.to_string()])
                .args(["--origin", origin, "--output", "json"])
                .envs(broker.env()),
            0,
        ));
        assert_eq!(produced["acked"], count, "{produced}");
    };
    let (a, b) = ("backlog-a (10.0.0.28)", "backlog-b (10.0.0.29)");
    produce(a, 15000);
    // The consumer has read the first run's final report, and holds on for the second.
    crate::common::wait_for_line(&mut stderr, "holding: 1 of 1 runs finished");
    assert_eq!(
        group_state(broker, group, topic, 6),
        (false, 0),
        "the held-back group has no member and has committed nothing"
    );
    produce(b, 25000);
    let stderr = crate::common::drain(stderr);
    let (code, stdout) = crate::common::finish(consumer);
    let stderr = stderr.join().unwrap();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("stopping: every announced producer run is fully consumed"),
        "{stderr}"
    );
    let consumed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(consumed["origins"][a]["count"], 15000, "{consumed}");
    assert_eq!(consumed["origins"][b]["count"], 25000, "{consumed}");
    assert_drained(&consumed, "runs_finished", 2, 40000);
    // What the group committed is the whole topic: 40 000 records over the six partitions.
    assert_eq!(group_state(broker, group, topic, 6), (false, 40000));

    // Started once the backlog is built, a held consumer of another group drains it at once.
    let later = json(&run(
        &mut hold("wl-backlog-later-", &["--idle-timeout", "120s"]),
        0,
    ));
    assert_drained(&later, "runs_finished", 2, 40000);

    // Waiting for 3 runs where no more will come, the hold ends on --idle-timeout and says the
    // drain may have raced a producer; the drain still ends with every event seen.
    let idle = json(&run(
        &mut hold(
            "wl-backlog-idle-",
            &["--hold-runs", "3", "--idle-timeout", "10s"],
        ),
        0,
    ));
    assert_drained(&idle, "idle_timeout", 2, 40000);
    assert_eq!(
        idle["notes"],
        serde_json::json!([
            "the hold ended on --idle-timeout, before what it waited for (2 of 2 runs finished, \
             40000 events acknowledged): the drain may have raced a producer"
        ])
    );
}

/// README's Workloads examples, as written: bash runs the section's first `sh` block with
/// `kafka-test-app` a function that keeps each command line it is given (loops, `&` and quotes
/// expanded as a user's shell would), and every one of them must parse and plan, as the binary
/// would before connecting.
#[test]
fn the_readme_workload_examples_parse_and_plan() {
    use clap::Parser;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("### Workloads").expect("a Workloads section")..];
    let start = section.find("```sh\n").expect("an sh block") + "```sh\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "kafka-test-app() {{ printf '%s\\0' \"$@\" > \"$(mktemp -p '{}')\"; }}\n{block}",
        dir.path().display()
    );
    let status = Command::new("bash")
        .args(["-euc", &script])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the block does not run as written:\n{block}"
    );
    let mut commands: Vec<Vec<String>> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|file| {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            let mut argv = vec!["kafka-test-app".to_owned()];
            argv.extend(
                bytes
                    .split(|&b| b == 0)
                    .filter(|arg| !arg.is_empty())
                    .map(|arg| String::from_utf8(arg.to_vec()).unwrap()),
            );
            argv
        })
        .collect();
    commands.sort();
    // Every `kafka-test-app` of the block ran once, the backlog's loop of three producers twice
    // more.
    let written = block.matches("kafka-test-app ").count();
    assert_eq!(commands.len(), written + 2, "{commands:?}");
    for argv in &commands {
        let plan = kafka_test_app::Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{argv:?} does not parse: {e}"))
            .plan();
        assert!(plan.is_ok(), "{argv:?} does not plan: {:?}", plan.err());
    }
}

/// A consumer stopped (SIGTERM) while it holds its group back says that it was holding and
/// consumed nothing (incomplete, exit code 3), not that a group coordinator kept partitions from
/// it; its drain says the hold was stopped, with no rate.
#[test]
fn a_consumer_stopped_while_holding_says_so() {
    let broker = Broker::start();
    let (consumer, mut stderr) = crate::common::spawn(
        app()
            .args(["consume", "--topic", "wl-held-stopped", "--hold-until-done"])
            .args(["--output", "json"])
            .envs(broker.env()),
    );
    crate::common::wait_for_line(&mut stderr, "holding the group back");
    crate::common::signal(&consumer, libc::SIGTERM);
    let stderr = crate::common::drain(stderr);
    let (code, stdout) = crate::common::finish(consumer);
    let stderr = stderr.join().unwrap();
    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["verdict"], "incomplete", "{report}");
    assert_eq!(
        report["incomplete"],
        serde_json::json!([
            "stopped while holding the group back (--hold-until-done): nothing was consumed"
        ])
    );
    assert_eq!(report["consumed"], 0);
    let drain = &report["drain"];
    assert_eq!(drain["hold_ended"], "stopped", "{drain}");
    assert_eq!(
        (&drain["events"], &drain["events_per_s"], &drain["complete"]),
        (&0.into(), &serde_json::Value::Null, &false.into()),
        "{drain}"
    );
}
