//! The fleet verdict end to end: producers and consumers as separate processes against real
//! Apache Kafka, `verify` over the data and control topics, and injected faults.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::{app, json, run, spawn, wait_for_line, Broker};
use kafka_test_app::control::{default_control_topic, ControlRecord, RunReport, RunState};
use kafka_test_app::event::EventEncoder;
use kafka_test_app::RUN_HEADER;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

pub(crate) fn produce(broker: &Broker, topic: &str, origin: &str, count: u64) -> serde_json::Value {
    json(&run(
        app()
            .args([
                "produce", "--topic", topic, "--rate", "0", "--output", "json",
            ])
            .args(["--num-messages", &count.to_string(), "--origin", origin])
            .envs(broker.env()),
        0,
    ))
}

pub(crate) fn verify(broker: &Broker, topic: &str, extra: &[&str], code: i32) -> serde_json::Value {
    json(&run(
        app()
            .args(["verify", "--topic", topic, "--output", "json"])
            .args(extra)
            .envs(broker.env()),
        code,
    ))
}

/// Every anomaly class a clean run must not show is 0 in a verify report.
pub(crate) fn assert_no_anomaly(report: &serde_json::Value) {
    for class in [
        "lost",
        "duplicates",
        "out_of_order",
        "unacked_seen",
        "truncated",
    ] {
        assert_eq!(report[class], 0, "{class}: {report}");
    }
}

pub(crate) fn raw_producer(broker: &Broker) -> BaseProducer {
    broker.client_config().create().unwrap()
}

/// Writes events as a producer run would, with the run header, for the `n` given.
pub(crate) fn write_events(
    producer: &BaseProducer,
    topic: &str,
    origin: &str,
    run: &str,
    ns: &[u64],
) {
    let mut encoder = EventEncoder::new(origin);
    for &n in ns {
        let headers = OwnedHeaders::new().insert(Header {
            key: RUN_HEADER,
            value: Some(run),
        });
        let value = encoder
            .encode_now(kafka_test_app::event::run_key(run), n)
            .to_vec();
        producer
            .send(
                BaseRecord::<(), _>::to(topic)
                    .payload(&value)
                    .headers(headers),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// Writes a run report claiming `acked`.
pub(crate) fn write_report(
    producer: &BaseProducer,
    topic: &str,
    origin: &str,
    run: &str,
    acked: [u64; 2],
) {
    let report = ControlRecord::ProducerRun(RunReport {
        run: run.to_owned(),
        origin: origin.to_owned(),
        topic: topic.to_owned(),
        state: RunState::Finished,
        sent: acked[1],
        acked: vec![acked],
        failed: vec![],
        aborted: vec![],
        acked_high: vec![],
        target_rate: 0.0,
        series: Default::default(),
        ack_latency_us: String::new(),
        started: 1.0,
        // Later than any report the real producer wrote.
        updated: 9_999_999_999.0,
    });
    let value = report.to_json();
    producer
        .send(
            BaseRecord::to(&default_control_topic(topic))
                .key(run)
                .payload(&value),
        )
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
}

pub(crate) fn counts(report: &serde_json::Value) -> BTreeMap<String, u64> {
    report["origins"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(origin, o)| (origin.clone(), o["count"].as_u64().unwrap()))
        .collect()
}

#[test]
fn three_producers_and_two_consumers_in_a_group_give_one_passing_verdict() {
    let broker = Broker::start();
    let origins = [
        ("kafka-test-app-0 (10.1.29.185)", 1000u64),
        ("kafka-test-app-1 (10.1.29.186)", 1500),
        ("kafka-test-app-2 (10.1.29.187)", 2000),
    ];
    // The topic exists before the consumers start, so both join the group at once.
    produce(broker, "fleet", origins[0].0, origins[0].1);
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            spawn(
                app()
                    .args(["consume", "--topic", "fleet", "--output", "json"])
                    .args(["--consumer-group-prefix", "fleet-", "--idle-timeout", "8s"])
                    .envs(broker.env()),
            )
        })
        .collect();
    let producers: Vec<_> = origins[1..]
        .iter()
        .map(|(origin, count)| {
            app()
                .args([
                    "produce", "--topic", "fleet", "--rate", "2000", "--output", "json",
                ])
                .args(["--num-messages", &count.to_string(), "--origin", origin])
                .envs(broker.env())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut producer in producers {
        assert!(producer.wait().unwrap().success());
    }
    let mut consumed = 0;
    for (child, stderr) in consumers {
        let _stderr = crate::common::drain(stderr);
        let (code, stdout) = crate::common::finish(child);
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(code, Some(0), "{report}");
        assert_eq!(
            report["origins"]
                .as_object()
                .unwrap()
                .values()
                .map(|o| o["duplicates"].as_u64().unwrap())
                .sum::<u64>(),
            0
        );
        consumed += report["consumed"].as_u64().unwrap();
    }
    assert!(consumed >= 4500, "the group consumed {consumed} of 4500");

    let report = verify(broker, "fleet", &["--group", "fleet-1"], 0);
    assert_eq!(report["verdict"], "pass", "{report}");
    let group = &report["group"];
    assert_eq!(
        (group["members"].as_u64(), group["unconsumed"].as_u64()),
        (Some(2), Some(0)),
        "{group}"
    );
    assert_eq!(group["consumed"].as_u64().unwrap(), consumed);
    assert_eq!(
        counts(&report),
        origins.iter().map(|(o, c)| (o.to_string(), *c)).collect()
    );
    for (origin, count) in origins {
        let o = &report["origins"][origin];
        assert_eq!(
            (
                o["expected"].as_u64(),
                o["lost"].as_u64(),
                o["duplicates"].as_u64()
            ),
            (Some(count), Some(0), Some(0))
        );
    }
}

#[test]
fn a_group_that_missed_records_fails_verify_group() {
    let broker = Broker::start();
    produce(broker, "half", "p (10.0.0.8)", 400);
    // One consumer stops after 100 events: the group consumed only part of the topic.
    run(
        app()
            .args([
                "consume", "--topic", "half", "--expect", "100", "--output", "json",
            ])
            .args(["--consumer-group-prefix", "half-", "--idle-timeout", "30s"])
            .envs(broker.env()),
        0,
    );
    let report = verify(broker, "half", &["--group", "half-1"], 1);
    let unconsumed = report["group"]["unconsumed"].as_u64().unwrap();
    assert!(unconsumed >= 300 - 100, "{report}");
    assert_eq!(
        report["reasons"],
        serde_json::json!([format!(
            "consumer group half-1 did not consume {unconsumed} records of half"
        )])
    );
    // The data itself is intact.
    assert_eq!(report["origins"]["p (10.0.0.8)"]["lost"], 0);
}

#[test]
fn until_complete_stops_when_every_announced_run_is_consumed() {
    let broker = Broker::start();
    produce(broker, "complete", "a (10.0.0.1)", 700);
    produce(broker, "complete", "b (10.0.0.2)", 300);
    let (consumer, stderr) = spawn(
        app()
            .args([
                "consume",
                "--topic",
                "complete",
                "--until-complete",
                "--output",
                "json",
            ])
            .args(["--idle-timeout", "120s"])
            .envs(broker.env()),
    );
    let stderr = crate::common::drain(stderr);
    let (code, stdout) = crate::common::finish(consumer);
    let stderr = stderr.join().unwrap();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("every announced producer run is fully consumed"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["consumed"], 1000);
}

#[test]
fn events_lost_in_the_middle_of_a_run_are_lost() {
    let broker = Broker::start();
    produce(broker, "lossy", "healthy (10.0.0.1)", 100);
    let producer = raw_producer(broker);
    let ns: Vec<u64> = (0..100).filter(|n| !(40..45).contains(n)).collect();
    write_events(
        &producer,
        "lossy",
        "dropper (10.0.0.2)",
        "run-with-a-hole",
        &ns,
    );
    write_report(
        &producer,
        "lossy",
        "dropper (10.0.0.2)",
        "run-with-a-hole",
        [0, 100],
    );

    let report = verify(broker, "lossy", &[], 1);
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["origins"]["dropper (10.0.0.2)"]["lost"], 5);
    assert_eq!(report["origins"]["healthy (10.0.0.1)"]["lost"], 0);
    assert_eq!(
        report["reasons"],
        serde_json::json!(["dropper (10.0.0.2): 5 lost (acknowledged, never seen)"])
    );
}

#[test]
fn events_lost_at_the_tail_of_a_run_are_lost() {
    let broker = Broker::start();
    let produced = produce(broker, "tail", "tail-loser (10.0.0.3)", 1000);
    let run_id = produced["run"].as_str().unwrap();
    // A report claiming 10 more acknowledged events than the topic holds: as if the broker lost
    // the last 10 after acknowledging them.
    write_report(
        &raw_producer(broker),
        "tail",
        "tail-loser (10.0.0.3)",
        run_id,
        [0, 1010],
    );

    let report = verify(broker, "tail", &[], 1);
    let origin = &report["origins"]["tail-loser (10.0.0.3)"];
    assert_eq!(
        (
            origin["expected"].as_u64(),
            origin["count"].as_u64(),
            origin["lost"].as_u64()
        ),
        (Some(1010), Some(1000), Some(10))
    );
    assert_eq!(
        report["reasons"],
        serde_json::json!(["tail-loser (10.0.0.3): 10 lost (acknowledged, never seen)"])
    );
}

#[test]
fn the_same_event_written_twice_is_one_duplicate() {
    let broker = Broker::start();
    let produced = produce(broker, "twice", "doubler (10.0.0.4)", 200);
    let run_id = produced["run"].as_str().unwrap();
    write_events(
        &raw_producer(broker),
        "twice",
        "doubler (10.0.0.4)",
        run_id,
        &[57],
    );

    let report = verify(broker, "twice", &[], 1);
    let origin = &report["origins"]["doubler (10.0.0.4)"];
    assert_eq!(
        (
            origin["count"].as_u64(),
            origin["duplicates"].as_u64(),
            origin["lost"].as_u64()
        ),
        (Some(201), Some(1), Some(0))
    );
    assert_eq!(
        report["reasons"],
        serde_json::json!(["doubler (10.0.0.4): 1 duplicate"])
    );
}

#[test]
fn a_producer_killed_and_restarted_under_the_same_origin_is_no_loss_and_no_duplicates() {
    let broker = Broker::start();
    let origin = "kafka-test-app-0 (10.1.29.185)";
    let (mut killed, mut stderr) = spawn(
        app()
            .args([
                "produce",
                "--topic",
                "restart",
                "--rate",
                "500",
                "--num-messages",
                "0",
            ])
            .args(["--origin", origin, "--report-interval", "1s"])
            .envs(broker.env()),
    );
    // Two progress lines: at least one periodic run report has been written.
    wait_for_line(&mut stderr, "progress");
    wait_for_line(&mut stderr, "progress");
    crate::common::signal(&killed, libc::SIGKILL);
    killed.wait().unwrap();
    let restarted = produce(broker, "restart", origin, 300);
    assert_eq!(restarted["acked"], 300);

    // The killed run's last report says running: named, and the verdict is incomplete (exit 3),
    // not a pass and not a loss.
    let report = verify(broker, "restart", &[], 3);
    let o = &report["origins"][origin];
    assert_eq!(
        (o["lost"].as_u64(), o["duplicates"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
    let runs = o["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 2);
    let states: Vec<&str> = runs
        .values()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"running") && states.contains(&"finished"),
        "{states:?}"
    );
    assert_eq!(report["verdict"], "incomplete");
    let why = report["incomplete"].as_array().unwrap();
    assert_eq!(why.len(), 1, "{report}");
    let killed_run = runs
        .iter()
        .find(|(_, r)| r["state"] == "running")
        .map(|(id, _)| id.clone())
        .unwrap();
    assert!(
        why[0].as_str().unwrap().starts_with(&format!(
            "run {killed_run} of {origin} did not finish: its last report ("
        )),
        "{report}"
    );
}

/// The tutorial's Spark console batch, as a driver pod logs it.
const SPARK_BATCH: &str = include_str!("../data/spark-batch-13.txt");

#[test]
fn verify_against_a_spark_console_batch() {
    let broker = Broker::start();
    for (origin, count) in [
        ("kafka-test-app-0 (10.1.29.185)", 38),
        ("kafka-test-app-1 (10.1.29.186)", 38),
        ("kafka-test-app-2 (10.1.29.187)", 39),
    ] {
        produce(broker, "spark-streaming-store", origin, count);
    }
    let dir = tempfile::tempdir().unwrap();
    let same = dir.path().join("batch.txt");
    std::fs::write(&same, SPARK_BATCH).unwrap();
    let report = verify(
        broker,
        "spark-streaming-store",
        &["--against", same.to_str().unwrap()],
        0,
    );
    assert_eq!(report["verdict"], "pass", "{report}");
    assert!(report["against"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["result"] == "equal"));

    let changed = dir.path().join("changed.txt");
    std::fs::write(
        &changed,
        SPARK_BATCH.replace(
            "|kafka-test-app-2 ...|   39|",
            "|kafka-test-app-2 ...|   41|",
        ),
    )
    .unwrap();
    let report = verify(
        broker,
        "spark-streaming-store",
        &["--against", changed.to_str().unwrap()],
        1,
    );
    assert_eq!(
        report["reasons"],
        serde_json::json!([
            "aggregation job counts 41 for kafka-test-app-2 (10.1.29.187), the topic has 39 (+2)"
        ])
    );
}
