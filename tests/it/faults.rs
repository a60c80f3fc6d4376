//! Broker failures on a real three-node cluster (topic RF 3, `min.insync.replicas=2`) under a
//! paced producer and a consumer group of three, and real loss induced on purpose. Each case
//! checks the verdict and exact counts against ground truth the test keeps itself: what the
//! topic holds, read by a client of the test's own, and what it deleted.
//!
//! The cases take turns on one cluster (a fault on a shared cluster would disturb a neighbour);
//! each begins by bringing every node back.

use std::collections::BTreeMap;
use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{app, check, json, spawn, Broker};

/// One fault case at a time.
static TURN: Mutex<()> = Mutex::new(());

/// The cluster with every node running and answering; the guard keeps other cases off it.
fn cluster() -> (&'static Broker, MutexGuard<'static, ()>) {
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let broker = Broker::three();
    for node in ["1", "2", "3"] {
        // A node a failed case left frozen is thawed; one it left dead is started.
        let _ = std::process::Command::new(crate::common::kafka_script())
            .args(["cont", node, "--dir"])
            .arg(broker.dir())
            .output();
        broker.kafka(&["start", node]);
    }
    (broker, turn)
}

/// Records on `topic` now, summed over its partitions (the topic's own count, not the tool's).
fn records(broker: &Broker, topic: &str) -> i64 {
    let consumer: BaseConsumer = broker.client_config().create().unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return 0;
    };
    let Some(described) = metadata.topics().first() else {
        return 0;
    };
    described
        .partitions()
        .iter()
        .filter_map(|p| {
            consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(5))
                .ok()
        })
        .map(|(low, high)| high - low)
        .sum()
}

/// Waits (at most 60 s) until `topic` holds at least `count` records: the fault then strikes
/// while the run is under way.
fn wait_for_records(broker: &Broker, topic: &str, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while records(broker, topic) < count {
        assert!(
            Instant::now() < deadline,
            "{topic} did not reach {count} records within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The node that leads partition 0 of `topic`.
fn leader(broker: &Broker, topic: &str) -> String {
    let consumer: BaseConsumer = broker.client_config().create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    metadata.topics()[0].partitions()[0].leader().to_string()
}

/// A paced producer on `topic` (partitions 3, RF 3), and three consumers in one group.
struct Workload {
    group_prefix: String,
    producer: Child,
    consumers: Vec<Child>,
}

impl Workload {
    fn start(broker: &Broker, topic: &str, rate: u64, count: u64) -> Workload {
        let group_prefix = format!("{topic}-");
        // The producer creates the topic; the consumers join once it exists.
        let (producer, stderr) = spawn(
            app()
                .args(["produce", "--topic", topic, "--output", "json"])
                .args([
                    "--rate",
                    &rate.to_string(),
                    "--num-messages",
                    &count.to_string(),
                ])
                .args(["--partitions", "3", "--replication-factor", "3"])
                .args(["--origin", "faults (10.0.0.40)", "--flush-timeout", "60s"])
                .envs(broker.env()),
        );
        drop(crate::common::drain(stderr));
        wait_for_records(broker, topic, 1);
        let consumers = (0..3)
            .map(|_| {
                let (child, stderr) = spawn(
                    app()
                        .args(["consume", "--topic", topic, "--output", "json"])
                        .args(["--consumer-group-prefix", &group_prefix])
                        .args(["--until-complete", "--idle-timeout", "60s"])
                        .envs(broker.env()),
                );
                drop(crate::common::drain(stderr));
                child
            })
            .collect();
        Workload {
            group_prefix,
            producer,
            consumers,
        }
    }

    /// Waits for the producer and the consumers; returns the producer's report.
    fn finish(self) -> serde_json::Value {
        let output = self.producer.wait_with_output().unwrap();
        check(&output, 0);
        let report = json(&output);
        for consumer in self.consumers {
            let output = consumer.wait_with_output().unwrap();
            // A member's own verdict may be incomplete (it held only some partitions); the
            // group's verdict below is the whole view.
            assert!(
                matches!(output.status.code(), Some(0 | 3)),
                "consumer: {}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        report
    }
}

/// `verify` of the topic and of the group, both expected to pass with `count` exact.
fn assert_exact(broker: &Broker, workload_topic: &str, group: &str, count: u64) {
    let report = crate::fleet::verify(broker, workload_topic, &["--group", group], 0);
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(report["consumed"], count, "{report}");
    crate::fleet::assert_no_anomaly(&report);
}

/// Runs the paced workload, strikes with `fault` once a third of it is on the topic, and checks
/// that nothing acknowledged was lost or doubled and that every event was acknowledged.
fn survives(topic: &str, fault: impl FnOnce(&Broker, &str)) {
    let (broker, _turn) = cluster();
    let count = 6000;
    let workload = Workload::start(broker, topic, 1000, count);
    wait_for_records(broker, topic, 2000);
    fault(broker, topic);
    let group = format!("{}1", workload.group_prefix);
    let report = workload.finish();
    assert_eq!(report["acked"], count, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_exact(broker, topic, &group, count);
    // A row of docs/reliability.md's table (shown with `cargo test --test it faults -- --nocapture`).
    println!(
        "| {topic} | {} | {} | 0 | 0 | {} |",
        report["acked"], report["failed"], report["longest_ack_gap_s"]
    );
}

/// One node cut off from its cluster (iptables) while this lives: every TCP packet to its
/// address on the cluster's ports (clients, controllers, brokers) and every packet from them is
/// dropped, so neither its clients nor its peers reach it and its answers go nowhere. Other
/// clusters on this machine (other ports) are untouched. The rules go when this does, also when
/// the test fails.
struct Cut {
    /// The rules in force, each as the match after `iptables -I INPUT` (so `-D` removes it).
    rules: Vec<Vec<String>>,
}

impl Cut {
    fn off(broker: &Broker, node: &str) -> Cut {
        let address = format!("127.0.0.{node}");
        let port = broker.port();
        let ports = format!("{port}:{}", port + 2);
        let mut cut = Cut { rules: Vec::new() };
        for (way, port_way) in [("-d", "--dport"), ("-s", "--sport")] {
            let rule: Vec<String> = ["-p", "tcp", way, &address, port_way, &ports, "-j", "DROP"]
                .map(str::to_owned)
                .into();
            assert!(
                iptables("-I", &rule),
                "iptables -I INPUT {}",
                rule.join(" ")
            );
            // Kept only once it is in: a failed second rule unwinds through the first's removal.
            cut.rules.push(rule);
        }
        cut
    }
}

/// Inserts (`-I`) or deletes (`-D`) one rule of the INPUT chain; whether it worked.
fn iptables(action: &str, rule: &[String]) -> bool {
    std::process::Command::new("iptables")
        .args(["-w", action, "INPUT"])
        .args(rule)
        .status()
        .expect("iptables (scripts/install-test-deps installs it)")
        .success()
}

impl Drop for Cut {
    fn drop(&mut self) {
        for rule in &self.rules {
            let removed = iptables("-D", rule);
            // No second panic while a failed test unwinds.
            assert!(
                removed || std::thread::panicking(),
                "iptables -D INPUT {}",
                rule.join(" ")
            );
        }
    }
}

#[test]
fn the_leader_killed_and_restarted_loses_nothing() {
    survives("fault-kill-leader", |broker, topic| {
        let node = leader(broker, topic);
        broker.kafka(&["kill", &node]);
        broker.kafka(&["start", &node]);
    });
}

/// The active controller (the KRaft quorum's leader) killed and restarted: a new one is elected
/// among the other two; leadership changes go on.
#[test]
fn the_active_controller_killed_and_restarted_loses_nothing() {
    survives("fault-kill-controller", |broker, _| {
        let output = broker.kafka(&["controller"]);
        let node = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        assert!(
            matches!(node.as_str(), "1" | "2" | "3"),
            "controller: {node:?}"
        );
        broker.kafka(&["kill", &node]);
        broker.kafka(&["start", &node]);
    });
}

#[test]
fn a_rolling_restart_loses_nothing() {
    survives("fault-rolling", |broker, _| {
        for node in ["1", "2", "3"] {
            broker.kafka(&["restart", node]);
        }
    });
}

/// The partition leader frozen (SIGSTOP) for 30 s, a zombie leader: its session with the
/// controller expires, leadership moves, and on SIGCONT it finds itself fenced.
#[test]
fn a_leader_frozen_for_thirty_seconds_loses_nothing() {
    survives("fault-zombie", |broker, topic| {
        let node = leader(broker, topic);
        broker.kafka(&["stop", &node]);
        // The freeze is the fault itself: its length is what the case is about.
        std::thread::sleep(Duration::from_secs(30));
        broker.kafka(&["cont", &node]);
    });
}

/// The partition leader cut off for 30 s: every packet to and from its ports on its address
/// dropped (clients, followers, controllers), then healed. Its partitions take no writes meanwhile; the producer's
/// retries carry them over the gap; nothing is lost, doubled or failed.
#[test]
fn the_leader_cut_off_for_thirty_seconds_loses_nothing() {
    survives("fault-cut-leader", |broker, topic| {
        let cut = Cut::off(broker, &leader(broker, topic));
        // The fault is 30 s of partition, not a wait for anything.
        std::thread::sleep(Duration::from_secs(30));
        drop(cut);
    });
}

/// With two of three brokers down nothing can be acknowledged (acks=all, min.insync 2): every
/// event is *failed*, none lost, and the producer says why.
#[test]
fn two_brokers_down_fail_every_event_and_lose_none() {
    let (broker, _turn) = cluster();
    let topic = "fault-two-down";
    // The topic (and its control topic) replicated on all three, so two down is below
    // min.insync.replicas 2 for every partition.
    crate::common::run(
        app()
            .args([
                "produce", "--topic", topic, "--rate", "0", "--output", "json",
            ])
            .args(["--num-messages", "10", "--origin", "warm-up (10.0.0.41)"])
            .args(["--partitions", "3", "--replication-factor", "3"])
            .envs(broker.env()),
        0,
    );
    broker.kafka(&["kill", "2"]);
    broker.kafka(&["kill", "3"]);
    let output = app()
        .args([
            "produce", "--topic", topic, "--output", "json", "--rate", "0",
        ])
        .args(["--num-messages", "200", "--origin", "no-quorum (10.0.0.42)"])
        .args(["--flush-timeout", "8s"])
        .envs(broker.env())
        .output()
        .unwrap();
    check(&output, 1);
    let report = json(&output);
    assert_eq!(report["acked"], 0, "{report}");
    assert_eq!(report["failed"], 200, "{report}");
    assert_eq!(report["verdict"], "fail");
    // Its run reports could not be written either; that is an outage, not a missing grant.
    assert_eq!(report["final_run_report"], "not_delivered", "{report}");
    assert_eq!(
        report["run_reports_off"],
        serde_json::Value::Null,
        "{report}"
    );
    broker.kafka(&["start", "2"]);
    broker.kafka(&["start", "3"]);
    // Failed is not "not written": the lone leader may have appended events, and run reports,
    // before failing them; they become visible once the ISR is back. Ground truth for the
    // reports: the control topic, read here.
    let run = report["run"].as_str().unwrap().to_owned();
    let reported = crate::common::read_topic(&broker.bootstrap(), &format!("{topic}-kta-control"))
        .iter()
        .flatten()
        .any(|value| String::from_utf8_lossy(value).contains(&run));
    // No acknowledged event is missing: pass, or incomplete when a report of the failed run
    // (state running: its final report never arrived) is on the control topic.
    let report = crate::fleet::verify(broker, topic, &[], if reported { 3 } else { 0 });
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["origins"]["warm-up (10.0.0.41)"]["count"], 10);
    let written = report["origins"]["no-quorum (10.0.0.42)"]["count"]
        .as_u64()
        .unwrap_or(0);
    assert!(written <= 200, "{report}");
    if reported {
        let incomplete = report["incomplete"].as_array().unwrap();
        assert_eq!(incomplete.len(), 1, "{report}");
        let line = incomplete[0].as_str().unwrap();
        assert!(
            line.starts_with(&format!(
                "run {run} of no-quorum (10.0.0.42) did not finish: its last report ("
            )),
            "{report}"
        );
    } else {
        assert_eq!(report["verdict"], "pass", "{report}");
        assert_eq!(report["accounting"]["unreported_run"], written, "{report}");
        if written > 0 {
            assert_eq!(
                report["notes"],
                serde_json::json!([format!(
                    "run {run} of no-quorum (10.0.0.42): {written} events seen, but none of its \
                     run reports arrived (its producer could not write the control topic, or ran \
                     with --no-run-reports), so its loss is not judged"
                )]),
                "{report}"
            );
        }
    }
}

/// Real loss: the first records of one partition deleted after a run (`DeleteRecords`).
/// `verify` reports exactly the deleted acknowledged events as lost.
#[test]
fn records_deleted_from_a_partition_are_exactly_the_lost() {
    let (broker, _turn) = cluster();
    let topic = "fault-delete-records";
    let report = json(&crate::common::run(
        app()
            .args([
                "produce", "--topic", topic, "--output", "json", "--rate", "0",
            ])
            .args(["--num-messages", "3000", "--origin", "deleted (10.0.0.43)"])
            .args(["--partitions", "3", "--replication-factor", "3"])
            .envs(broker.env()),
        0,
    ));
    assert_eq!(report["acked"], 3000);
    // Ground truth: the fullest partition (unkeyed events stick to a partition per batch, so
    // one may hold none) holds `high` records from offset 0; the first half go.
    let consumer: BaseConsumer = broker.client_config().create().unwrap();
    let (partition, high) = (0..3)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            assert_eq!(low, 0);
            (p, high)
        })
        .max_by_key(|&(_, high)| high)
        .unwrap();
    assert!(high > 10, "partition {partition} holds {high} records");
    let deleted = high / 2;
    let admin: AdminClient<DefaultClientContext> = broker.client_config().create().unwrap();
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(topic, partition, Offset::Offset(deleted))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime
        .block_on(admin.delete_records(&before, &AdminOptions::new()))
        .unwrap();
    assert!(result.elements()[0].error().is_ok(), "{result:?}");

    let report = crate::fleet::verify(broker, topic, &[], 1);
    assert_eq!(report["verdict"], "fail", "{report}");
    assert_eq!(report["lost"], deleted, "{report}");
    assert_eq!(report["consumed"], 3000 - deleted, "{report}");
    assert_eq!(report["duplicates"], 0);
    let reasons: BTreeMap<usize, String> = report["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .enumerate()
        .collect();
    assert!(
        reasons.values().any(
            |r| r == &format!("deleted (10.0.0.43): {deleted} lost (acknowledged, never seen)")
        ),
        "{reasons:?}"
    );
}
