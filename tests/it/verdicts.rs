//! The eleven wrong verdicts a probe found, each reproduced on Apache Kafka as an operator would
//! meet it, with the answer and the wording the tool now gives.

use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::common::{app, finish, json, read_topic, run, signal, spawn, wait_for_line, Broker};
use crate::fleet::{produce, raw_producer, verify};
use kafka_test_app::event::EventEncoder;
use kafka_test_app::RUN_HEADER;

/// Writes `value` to `topic`, with `run` in the run header if given.
fn publish(producer: &BaseProducer, topic: &str, value: &[u8], run: Option<&str>) {
    let mut record = BaseRecord::<(), _>::to(topic).payload(value);
    if let Some(run) = run {
        record = record.headers(OwnedHeaders::new().insert(Header {
            key: RUN_HEADER,
            value: Some(run),
        }));
    }
    producer.send(record).unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// The value of event `n` of `origin` as it is on `topic`.
fn value_of(broker: &Broker, topic: &str, n: u64) -> Vec<u8> {
    let content = format!("\"content\": \"Message #{n}\"}}");
    read_topic(&broker.bootstrap(), topic)
        .into_iter()
        .flatten()
        .find(|v| v.ends_with(content.as_bytes()))
        .unwrap_or_else(|| panic!("event {n} is not on {topic}"))
}

/// Probe 1: a byte copy of an event republished without headers (a mirror, the original client,
/// a re-publishing job) is a duplicate of that event: never "missing", never a silent pass.
#[test]
fn a_copy_without_headers_is_one_duplicate() {
    let broker = Broker::start();
    for (topic, copied) in [("copy-100", 100), ("copy-0", 0)] {
        produce(broker, topic, "copier (10.0.0.21)", 500);
        publish(
            &raw_producer(broker),
            topic,
            &value_of(broker, topic, copied),
            None,
        );
        let report = verify(broker, topic, &[], 1);
        let o = &report["origins"]["copier (10.0.0.21)"];
        assert_eq!(
            (o["count"].as_u64(), o["expected"].as_u64()),
            (Some(501), Some(500))
        );
        assert_eq!(
            (o["lost"].as_u64(), o["duplicates"].as_u64()),
            (Some(0), Some(1))
        );
        assert_eq!(
            report["reasons"],
            serde_json::json!(["copier (10.0.0.21): 1 duplicate"])
        );
    }
}

/// Probe 2: events of an origin that never reported (the original Python client's) are
/// foreign: counted and shown, never "acknowledged, never seen".
#[test]
fn the_original_clients_events_are_foreign_not_lost() {
    let broker = Broker::start();
    let topic = "foreign";
    produce(broker, topic, "ours (10.0.0.22)", 100);
    let producer = raw_producer(broker);
    let mut original = EventEncoder::new("python-client (10.1.1.1)");
    for n in [0, 7] {
        publish(
            &producer,
            topic,
            original.encode(1_707_128_717.5, uuid::Uuid::new_v4(), n),
            None,
        );
    }
    let report = verify(broker, topic, &[], 0);
    let p = &report["origins"]["python-client (10.1.1.1)"];
    assert_eq!(
        (
            p["count"].as_u64(),
            p["expected"].as_u64(),
            p["lost"].as_u64()
        ),
        (Some(2), Some(0), Some(0))
    );
    assert_eq!(p["foreign"], 2);
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(
        report["notes"],
        serde_json::json!([
            "python-client (10.1.1.1): 2 foreign (not from a run of this tool)",
            "python-client (10.1.1.1): 6 gaps in foreign events"
        ])
    );
    assert_eq!(report["accounting"]["foreign"], 2);
    assert_eq!(report["accounting"]["delivered"], 100);
}

/// Probe 3: an event of a finished run beyond what it said it sent (n = 500 of a run that sent
/// 500) can only be a forgery or a bug: it fails, it is not "unreported".
#[test]
fn an_event_beyond_what_a_finished_run_sent_fails() {
    let broker = Broker::start();
    let topic = "beyond";
    let produced = produce(broker, topic, "finisher (10.0.0.23)", 500);
    let run_id = produced["run"].as_str().unwrap();
    let mut encoder = EventEncoder::new("finisher (10.0.0.23)");
    let key = kafka_test_app::event::run_key(run_id);
    publish(
        &raw_producer(broker),
        topic,
        encoder.encode_now(key, 500),
        Some(run_id),
    );
    let report = verify(broker, topic, &[], 1);
    assert_eq!(report["origins"]["finisher (10.0.0.23)"]["beyond_sent"], 1);
    assert_eq!(
        report["reasons"],
        serde_json::json!(["finisher (10.0.0.23): 1 more than the run sent"])
    );
}

/// Probe 4: a consumer stopped cleanly and restarted in its group resumes from the committed
/// offsets; what it did not see again is not lost, and `verify --group` has the whole view.
#[test]
fn a_consumer_restarted_in_its_group_resumes_without_a_false_loss() {
    let broker = Broker::start();
    let topic = "resume";
    produce(broker, topic, "steady (10.0.0.24)", 2000);
    let consume = |extra: &[&str]| {
        json(&run(
            app()
                .args(["consume", "--topic", topic, "--output", "json"])
                // The second run ends on its idle timeout; on a loaded machine the first group
                // join of a fresh broker (which makes __consumer_offsets) can take over 5 s.
                .args([
                    "--consumer-group-prefix",
                    "resume-",
                    "--idle-timeout",
                    "15s",
                ])
                .args(extra)
                .envs(broker.env()),
            0,
        ))
    };
    let first = consume(&["--expect", "1000"]);
    assert_eq!(first["consumed"], 1000);
    assert_eq!(first["verdict"], "pass", "{first}");
    let second = consume(&[]);
    assert_eq!(second["consumed"], 1000, "{second}");
    assert_eq!(second["verdict"], "pass", "{second}");
    assert_eq!(second["lost"], 0);
    assert_eq!(second["loss_judged"], false);
    let notes = second["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with("resumed from committed offsets on partitions ")),
        "{second}"
    );
    let fleet = verify(broker, topic, &["--group", "resume-1"], 0);
    assert_eq!(
        (
            fleet["group"]["members"].as_u64(),
            fleet["group"]["unconsumed"].as_u64()
        ),
        (Some(2), Some(0)),
        "{fleet}"
    );
}

/// Probe 5: a consumer that stops on its idle timeout while the cluster does not answer (here a
/// frozen broker) says it could not judge loss; it never reports the unread events as missing.
#[test]
fn stopping_idle_against_a_frozen_broker_is_incomplete_not_loss() {
    let broker = Broker::own("idle", &[]);
    let topic = "idle";
    produce(&broker, topic, "slow (10.0.0.25)", 5000);
    let (child, mut stderr) = spawn(
        app()
            .args(["consume", "--topic", topic, "--output", "json"])
            .args(["--idle-timeout", "10s"])
            .envs(broker.env()),
    );
    wait_for_line(&mut stderr, "first record received");
    broker.kafka(&["stop", "1"]);
    let _stderr = crate::common::drain(stderr);
    let (code, stdout) = finish(child);
    broker.kafka(&["cont", "1"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(code, Some(3), "{report}");
    assert_eq!(report["verdict"], "incomplete");
    assert_eq!(report["lost"], 0);
    // However much it had read when the broker froze, the consumer cannot know where the
    // partitions end, so nothing counts as lost.
    assert_eq!(
        report["incomplete"],
        serde_json::json!([
            "the cluster did not say where its partitions end, so loss was not judged"
        ])
    );
}

/// Probe 5, after a consumer SIGKILL: the restarted member waits for the coordinator to give up
/// on the dead one (its session, 45 s); stopping before that says so, not "no events".
#[test]
fn a_member_never_assigned_partitions_says_so() {
    let broker = Broker::start();
    let topic = "orphan";
    produce(broker, topic, "steady (10.0.0.26)", 100);
    let group = ["--consumer-group-prefix", "orphan-"];
    let (killed, mut stderr) = spawn(
        app()
            .args(["consume", "--topic", topic])
            .args(group)
            .envs(broker.env()),
    );
    wait_for_line(&mut stderr, "caught up");
    signal(&killed, libc::SIGKILL);
    let _ = finish(killed);
    let report = json(&run(
        app()
            .args(["consume", "--topic", topic, "--output", "json"])
            .args(group)
            .args(["--idle-timeout", "5s"])
            .envs(broker.env()),
        3,
    ));
    assert_eq!(report["verdict"], "incomplete");
    assert_eq!(
        report["incomplete"],
        serde_json::json!(["no partitions were assigned to this consumer by group orphan-1 (the \
                            group coordinator may still be waiting out a previous member's session)"])
    );
}

/// Probe 6: a producer SIGTERMed while the broker is frozen cannot deliver its final report;
/// once the broker is back, `verify` names the run as not finished instead of passing on its
/// stale report.
#[test]
fn a_producer_stopped_during_a_freeze_is_named_by_verify() {
    let broker = Broker::own("freeze", &[]);
    let topic = "freeze";
    let origin = "frozen (10.0.0.27)";
    let (child, mut stderr) = spawn(
        app()
            .args(["produce", "--topic", topic, "--rate", "500"])
            .args([
                "--num-messages",
                "0",
                "--origin",
                origin,
                "--output",
                "json",
            ])
            .args(["--report-interval", "1s", "--flush-timeout", "5s"])
            .envs(broker.env()),
    );
    wait_for_line(&mut stderr, "progress");
    wait_for_line(&mut stderr, "progress");
    broker.kafka(&["stop", "1"]);
    let frozen = Instant::now();
    signal(&child, libc::SIGTERM);
    let _stderr = crate::common::drain(stderr);
    let (code, stdout) = finish(child);
    let stopped_within = frozen.elapsed();
    // What the producer wrote into the frozen broker's socket would be taken in on SIGCONT; a
    // broker killed while frozen never reads it, so the final report is surely undelivered.
    broker.kafka(&["kill", "1"]);
    broker.kafka(&["start", "1"]);
    let produced: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(code, Some(1), "{produced}");
    assert!(produced["failed"].as_u64().unwrap() > 0, "{produced}");
    assert_eq!(produced["final_run_report"], "not_delivered", "{produced}");
    assert_eq!(
        produced["sent"].as_u64(),
        Some(produced["acked"].as_u64().unwrap() + produced["failed"].as_u64().unwrap())
    );
    assert!(
        stopped_within < Duration::from_secs(30),
        "{stopped_within:?}"
    );
    let report = verify(&broker, topic, &[], 3);
    assert_eq!(report["verdict"], "incomplete", "{report}");
    let run_id = produced["run"].as_str().unwrap();
    let why = report["incomplete"][0].as_str().unwrap();
    assert!(
        why.starts_with(&format!(
            "run {run_id} of {origin} did not finish: its last report ("
        )),
        "{report}"
    );
    assert_eq!(report["lost"], 0, "{report}");
}
