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

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{app, check, finish, json, signal, spawn, wait_for_line, Broker};

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
    // A slow broker a failed case left behind is made fast again.
    broker.kafka(&["slow", "3", "0"]);
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

/// Waits (at most 60 s, checking every 100 ms) until `done` says so; `what` names the condition
/// in the failure.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "not within 60 s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (at most 60 s) until `topic` holds at least `count` records: the fault then strikes
/// while the run is under way.
fn wait_for_records(broker: &Broker, topic: &str, count: i64) {
    wait_until(&format!("{topic} holds {count} records"), || {
        records(broker, topic) >= count
    });
}

/// Partition 0 of `topic` as the cluster's metadata has it: its leader (-1: none) and its
/// in-sync replicas; `None` while no broker answers.
fn partition_zero(broker: &Broker, topic: &str) -> Option<(i32, Vec<i32>)> {
    let consumer: BaseConsumer = broker.client_config().create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let partition = metadata.topics().first()?.partitions().first()?;
    Some((partition.leader(), partition.isr().to_vec()))
}

/// Starts `nodes` at once, each returning once the cluster is ready (`scripts/kafka start`):
/// nodes that need each other (a quorum, a partition's only replicas) come up together.
fn start_together(broker: &Broker, nodes: &[&str]) {
    std::thread::scope(|scope| {
        for &node in nodes {
            scope.spawn(move || broker.kafka(&["start", node]));
        }
    });
}

/// The node that leads partition 0 of `topic`.
fn leader(broker: &Broker, topic: &str) -> String {
    let (leader, _) = partition_zero(broker, topic).expect("the cluster answers metadata");
    leader.to_string()
}

/// A paced producer on `topic` (partitions 3, RF 3), and three consumers in one group.
struct Workload {
    group_prefix: String,
    producer: Child,
    consumers: Vec<Child>,
}

impl Workload {
    fn start(broker: &Broker, topic: &str, rate: u64, count: u64) -> Workload {
        Workload::start_with(broker, topic, rate, count, &[])
    }

    /// As [`Workload::start`], the first member of the group started with `first_member` added
    /// to its command line (a member the case will kill).
    fn start_with(
        broker: &Broker,
        topic: &str,
        rate: u64,
        count: u64,
        first_member: &[&str],
    ) -> Workload {
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
        let mut workload = Workload {
            group_prefix,
            producer,
            consumers: Vec::new(),
        };
        for extra in [first_member, &[], &[]] {
            let member = workload.member(broker, topic, extra);
            workload.consumers.push(member);
        }
        workload
    }

    /// A member of the workload's group, until the producer's runs are consumed.
    fn member(&self, broker: &Broker, topic: &str, extra: &[&str]) -> Child {
        let (child, stderr) = spawn(
            app()
                .args(["consume", "--topic", topic, "--output", "json"])
                .args(["--consumer-group-prefix", &self.group_prefix])
                // Members end once the run is fully consumed; the idle timeout only bounds a
                // failing case, and outlasts the producer's 60 s flush timeout: a fault may hold
                // acks back for most of it (a cut leader: ~57 s on a loaded machine), and the
                // members read the late events only after that.
                .args(["--until-complete", "--idle-timeout", "150s"])
                .args(extra)
                .envs(broker.env()),
        );
        drop(crate::common::drain(stderr));
        child
    }

    /// The group's id (the prefix and the tool's `1`).
    fn group(&self) -> String {
        format!("{}1", self.group_prefix)
    }

    /// Waits for the producer and the consumers; returns the producer's report and the members'.
    fn finish(self) -> (serde_json::Value, Vec<serde_json::Value>) {
        let output = self.producer.wait_with_output().unwrap();
        check(&output, 0);
        let report = json(&output);
        let members = self
            .consumers
            .into_iter()
            .map(|consumer| {
                let output = consumer.wait_with_output().unwrap();
                // A member's own verdict may be incomplete (it held only some partitions); the
                // group's verdict is the whole view.
                assert!(
                    matches!(output.status.code(), Some(0 | 3)),
                    "consumer: {}",
                    String::from_utf8_lossy(&output.stdout)
                );
                json(&output)
            })
            .collect();
        (report, members)
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
    survives_at(topic, 1000, 6000, fault);
}

/// [`survives`] with `count` events at `rate` (0: as fast as the cluster takes them); returns
/// the producer's report.
fn survives_at(
    topic: &str,
    rate: u64,
    count: u64,
    fault: impl FnOnce(&Broker, &str),
) -> serde_json::Value {
    let (broker, _turn) = cluster();
    let mut workload = Workload::start(broker, topic, rate, count);
    wait_for_records(broker, topic, count as i64 / 3);
    // A fault after the last event would test nothing.
    assert!(
        workload.producer.try_wait().unwrap().is_none(),
        "the producer finished before the fault"
    );
    fault(broker, topic);
    let group = workload.group();
    let (report, members) = workload.finish();
    assert_eq!(report["acked"], count, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_exact(broker, topic, &group, count);
    assert_members_in_order(&members);
    // A row of docs/reliability.md's table (shown with `cargo test --test it faults -- --nocapture`).
    println!(
        "| {topic} | {} | {} | 0 | 0 | {} | {} |",
        report["acked"], report["failed"], report["longest_ack_gap_s"], report["time_to_recover_s"]
    );
    report
}

/// No member saw an event out of order or its offsets go back without a rebalance: what a
/// rebalance or a redelivery must never look like.
fn assert_members_in_order(members: &[serde_json::Value]) {
    for member in members {
        assert_eq!(member["out_of_order"], 0, "{member}");
        assert_eq!(member["nonmonotonic_polls"], 0, "{member}");
        assert_eq!(member["duplicates"], 0, "{member}");
    }
}

/// One node cut off from its cluster (iptables) while this lives: every TCP packet to its
/// address on the cluster's ports (clients, controllers, brokers, the slow-broker proxy) and every packet from them is
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
        let ports = format!("{port}:{}", port + 3);
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

/// The leader killed and restarted under an unpaced producer (`--rate 0`): batches in flight
/// on the dead leader are retried on the new one; idempotence keeps them single.
#[test]
fn the_leader_killed_under_an_unpaced_producer_loses_nothing() {
    survives_at("fault-kill-leader-unpaced", 0, 60_000, |broker, topic| {
        let node = leader(broker, topic);
        broker.kafka(&["kill", &node]);
        broker.kafka(&["start", &node]);
    });
}

/// A member of the group of three SIGKILLed once a third is on the topic, and a new one started
/// in its place: the group rebalances (the newcomer joins, the dead member's session expires)
/// and the partitions the dead member held are read again by others. Redelivery is not
/// disorder: no member reports out-of-order or a nonmonotonic poll, the group consumed every
/// record, and the verdict passes exactly.
///
/// The doomed member commits nothing (auto-commit once an hour) and gives up its session after
/// 6 s (the broker's minimum): every record it consumed is consumed again by a member that
/// reports it. (A member killed after a commit newer than its last report leaves records only
/// its dead self consumed: see docs/reliability.md.)
#[test]
fn a_consumer_killed_and_replaced_mid_run_is_judged_exactly() {
    let (broker, _turn) = cluster();
    let topic = "fault-kill-consumer";
    let count = 6000;
    let doomed = [
        "-X",
        "auto.commit.interval.ms=3600000",
        "-X",
        "session.timeout.ms=6000",
    ];
    let mut workload = Workload::start_with(broker, topic, 1000, count, &doomed);
    wait_for_records(broker, topic, 2000);
    let killed = workload.consumers.remove(0);
    signal(&killed, libc::SIGKILL);
    let (code, _) = finish(killed);
    assert_eq!(code, None, "the member was killed by its signal");
    let replacement = workload.member(broker, topic, &[]);
    workload.consumers.push(replacement);
    let group = workload.group();
    let (report, members) = workload.finish();
    assert_eq!(report["acked"], count, "{report}");
    assert_members_in_order(&members);
    let verified = crate::fleet::verify(broker, topic, &["--group", &group], 0);
    assert_eq!(verified["verdict"], "pass", "{verified}");
    assert_eq!(verified["consumed"], count, "{verified}");
    crate::fleet::assert_no_anomaly(&verified);
    let by_group = &verified["group"];
    assert_eq!(by_group["unconsumed"], 0, "{verified}");
    // What the dead member had read was read again, and counted as redelivered.
    assert_eq!(
        by_group["consumed"].as_u64().unwrap(),
        count + by_group["redelivered"].as_u64().unwrap(),
        "{verified}"
    );
}

/// The run reports of `origin` on `topic`'s control topic, read here: ground truth of what the
/// producer had said before it died.
fn run_reports(broker: &Broker, topic: &str, origin: &str) -> Vec<serde_json::Value> {
    crate::common::read_topic(&broker.bootstrap(), &format!("{topic}-kta-control"))
        .iter()
        .flatten()
        .filter_map(|value| serde_json::from_slice::<serde_json::Value>(value).ok())
        .filter(|report| report["kind"] == "producer-run" && report["origin"] == origin)
        .collect()
}

/// How many `n` half-open `[start, end)` pairs cover.
fn covered(pairs: &serde_json::Value) -> u64 {
    pairs
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[1].as_u64().unwrap() - pair[0].as_u64().unwrap())
        .sum()
}

/// A producer SIGKILLed mid-run: its events written after its last report (about once a
/// second) are its unreported tail, counted and not lost; the run did not finish, so the
/// verdict is incomplete and names it. Ground truth: the records on the topic and the run's
/// last report on the control topic, both read here.
#[test]
fn a_producer_killed_mid_run_leaves_a_counted_tail_and_loses_nothing() {
    let (broker, _turn) = cluster();
    let topic = "fault-kill-producer";
    let origin = "killed (10.0.0.44)";
    let (producer, stderr) = spawn(
        app()
            .args(["produce", "--topic", topic, "--output", "json"])
            .args(["--rate", "1000", "--num-messages", "6000"])
            .args(["--partitions", "3", "--replication-factor", "3"])
            .args(["--origin", origin])
            .envs(broker.env()),
    );
    let _stderr = crate::common::drain(stderr);
    wait_for_records(broker, topic, 2000);
    signal(&producer, libc::SIGKILL);
    let (code, _) = finish(producer);
    assert_eq!(code, None, "the producer was killed by its signal");
    let report = crate::fleet::verify(broker, topic, &[], 3);
    let written = records(broker, topic) as u64;
    assert!((2000..6000).contains(&written), "{written} on the topic");
    let reports = run_reports(broker, topic, origin);
    let last = reports
        .iter()
        .max_by(|a, b| {
            a["updated"]
                .as_f64()
                .partial_cmp(&b["updated"].as_f64())
                .unwrap()
        })
        .expect("the run reported before it was killed");
    assert_eq!(last["state"], "running", "{last}");
    let acked = covered(&last["acked"]);
    assert_eq!(covered(&last["failed"]), 0, "{last}");
    assert_eq!(report["verdict"], "incomplete", "{report}");
    assert_eq!(report["consumed"], written, "{report}");
    crate::fleet::assert_no_anomaly(&report);
    assert_eq!(report["unreported_tail"], written - acked, "{report}");
    let run = last["run"].as_str().unwrap();
    let why = report["incomplete"][0].as_str().unwrap();
    assert!(
        why.starts_with(&format!(
            "run {run} of {origin} did not finish: its last report ("
        )),
        "{report}"
    );
}

/// SIGTERM to a producer while every broker of the three is frozen: it cannot deliver anything
/// more, and exits within its `--flush-timeout` (5 s, plus its shutdown) with a report of what
/// was left unacknowledged: those are failed, not lost. The brokers are killed while frozen
/// (what was in their sockets is never read) and started again; then `verify` finds nothing
/// lost and names the run that did not finish.
#[test]
fn a_producer_stopped_while_every_broker_is_frozen_reports_its_unacknowledged() {
    let (broker, _turn) = cluster();
    let topic = "fault-all-frozen";
    let origin = "frozen-fleet (10.0.0.45)";
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
            .args(["--partitions", "3", "--replication-factor", "3"])
            .args(["--report-interval", "1s", "--flush-timeout", "5s"])
            .envs(broker.env()),
    );
    wait_for_line(&mut stderr, "progress");
    wait_for_line(&mut stderr, "progress");
    for node in ["1", "2", "3"] {
        broker.kafka(&["stop", node]);
    }
    let frozen = Instant::now();
    signal(&child, libc::SIGTERM);
    let _stderr = crate::common::drain(stderr);
    let (code, stdout) = finish(child);
    let stopped_within = frozen.elapsed();
    for node in ["1", "2", "3"] {
        broker.kafka(&["kill", node]);
    }
    // No node can come up alone (its quorum is the three): all start together.
    start_together(broker, &["1", "2", "3"]);
    let produced: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(code, Some(1), "{produced}");
    let (acked, failed) = (
        produced["acked"].as_u64().unwrap(),
        produced["failed"].as_u64().unwrap(),
    );
    assert!(failed > 0, "{produced}");
    assert_eq!(
        produced["sent"].as_u64(),
        Some(acked + failed),
        "{produced}"
    );
    assert_eq!(produced["final_run_report"], "not_delivered", "{produced}");
    assert!(
        stopped_within < Duration::from_secs(30),
        "{stopped_within:?}"
    );
    let report = crate::fleet::verify(broker, topic, &[], 3);
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    // Every event on the topic was sent by the run, acknowledged or failed (written anyway).
    let written = records(broker, topic) as u64;
    assert_eq!(report["consumed"], written, "{report}");
    assert!(written <= acked + failed, "{report}");
    let run = produced["run"].as_str().unwrap();
    let why = report["incomplete"][0].as_str().unwrap();
    assert!(
        why.starts_with(&format!(
            "run {run} of {origin} did not finish: its last report ("
        )),
        "{report}"
    );
}

/// Real loss, on purpose: a topic of one partition on nodes 2 (leader) and 3 (follower) that
/// allows unclean leader election. A first run (idempotent, acks=all) is replicated to both.
/// Then node 3 is frozen until the controller takes it out of the in-sync replicas, and a second
/// run with `-X acks=1 -X enable.idempotence=false` is acknowledged by node 2 alone. Node 2 is
/// killed and node 3 thawed: the only live replica, it is elected although it never saw the
/// second run, and node 2, restarted, truncates its log to match. Every acknowledged event of
/// the second run vanished; `verify` fails with lost = exactly what the partition's end moved
/// back by (read here before and after), and flags the partition as truncated below the second
/// run's highest acknowledged offset.
#[test]
fn acks_one_and_an_unclean_election_lose_exactly_the_unreplicated_events() {
    let (broker, _turn) = cluster();
    let topic = "fault-unclean";
    let admin: AdminClient<DefaultClientContext> = broker.client_config().create().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let replicas: &[&[i32]] = &[&[2, 3]];
    let new = NewTopic::new(topic, 1, TopicReplication::Variable(replicas))
        .set("unclean.leader.election.enable", "true")
        .set("min.insync.replicas", "1");
    let created = runtime
        .block_on(admin.create_topics([&new], &AdminOptions::new()))
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    wait_until("node 2 leads with node 3 in sync", || {
        partition_zero(broker, topic) == Some((2, vec![2, 3]))
    });
    let produce = |origin: &str, extra: &[&str]| {
        json(&crate::common::run(
            app()
                .args([
                    "produce", "--topic", topic, "--rate", "0", "--output", "json",
                ])
                .args(["--num-messages", "1000", "--origin", origin])
                // The topic exists, so this is the control topic's replication: the run reports
                // must outlive the nodes this case stops (with one replica on node 3 the second
                // run's reports could not be written, and a run with neither reports nor events
                // left is invisible).
                .args(["--replication-factor", "3"])
                .args(extra)
                .envs(broker.env()),
            0,
        ))
    };
    let replicated = produce("replicated (10.0.0.46)", &[]);
    assert_eq!(replicated["acked"], 1000, "{replicated}");
    let end = || {
        let consumer: BaseConsumer = broker.client_config().create().unwrap();
        consumer
            .fetch_watermarks(topic, 0, Duration::from_secs(10))
            .unwrap()
            .1
    };
    assert_eq!(end(), 1000);

    broker.kafka(&["stop", "3"]);
    wait_until("node 3 out of the in-sync replicas", || {
        partition_zero(broker, topic) == Some((2, vec![2]))
    });
    // The run reports go to the control topic with acks=all: its partition must be led by a
    // running node and have left node 3 behind too (node 3 may still lead it, frozen, until the
    // controller fences it), or the second run's reports wait out its flush timeout.
    let control = format!("{topic}-kta-control");
    wait_until("the control topic led without node 3", || {
        partition_zero(broker, &control)
            .is_some_and(|(leader, isr)| leader != 3 && !isr.contains(&3))
    });
    let unreplicated = produce(
        "unreplicated (10.0.0.47)",
        &["-X", "acks=1", "-X", "enable.idempotence=false"],
    );
    assert_eq!(unreplicated["acked"], 1000, "{unreplicated}");
    assert_eq!(unreplicated["guarantee"]["acks"], "1", "{unreplicated}");
    let before = end();
    assert_eq!(before, 2000);

    broker.kafka(&["kill", "2"]);
    broker.kafka(&["cont", "3"]);
    wait_until("node 3 elected (unclean)", || {
        partition_zero(broker, topic).is_some_and(|(leader, _)| leader == 3)
    });
    let after = end();
    broker.kafka(&["start", "2"]);
    // Ground truth: the events at offsets from the new end to the old one are gone; they were
    // every acknowledged event of the second run.
    let vanished = before - after;
    assert_eq!(vanished, 1000);

    let report = crate::fleet::verify(broker, topic, &[], 1);
    assert_eq!(report["verdict"], "fail", "{report}");
    assert_eq!(report["lost"], vanished, "{report}");
    assert_eq!(report["truncated"], 1, "{report}");
    assert_eq!(report["consumed"], after, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    let reasons = report["reasons"].as_array().unwrap();
    for reason in [
        format!("unreplicated (10.0.0.47): {vanished} lost (acknowledged, never seen)"),
        "unreplicated (10.0.0.47): 1 partitions truncated below an acknowledged offset".into(),
    ] {
        assert!(reasons.contains(&reason.into()), "{report}");
    }
    assert_eq!(
        report["origins"]["replicated (10.0.0.46)"]["lost"], 0,
        "{report}"
    );
    assert_eq!(
        report["origins"]["replicated (10.0.0.46)"]["truncated"], 0,
        "{report}"
    );
    // Its replicas are on nodes 2 and 3 only: gone, it cannot keep a later case's restarts
    // waiting for its leader.
    let deleted = runtime
        .block_on(admin.delete_topics(&[topic], &AdminOptions::new()))
        .unwrap();
    assert!(deleted[0].is_ok(), "{deleted:?}");
}

/// A slow broker: what clients send node 3 waits 200 ms in its proxy (`scripts/kafka slow`), so
/// every request to it (produce, fetch, metadata) is answered that much later, for the rest of
/// the run. Its partitions are acknowledged late, never lost or doubled: the verdict is exact,
/// and the acknowledgement latency shows the delay (its events are a third of those sent after
/// it began, so the 99th percentile is at least the delay).
#[test]
fn a_slow_broker_delays_acknowledgements_and_loses_nothing() {
    let mut led = Vec::new();
    let report = survives_at("fault-slow-broker", 1000, 6000, |broker, topic| {
        let consumer: BaseConsumer = broker.client_config().create().unwrap();
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        led = (metadata.topics()[0].partitions().iter())
            .filter(|p| p.leader() == 3)
            .map(|p| p.id())
            .collect();
        broker.kafka(&["slow", "3", "200"]);
    });
    Broker::three().kafka(&["slow", "3", "0"]);
    assert!(!led.is_empty(), "node 3 led no partition: {report}");
    let p99 = report["ack_latency_ms"]["p99"].as_f64().unwrap();
    assert!(p99 >= 200.0, "p99 {p99} ms: {report}");
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
    // Together: a partition whose replicas are on nodes 2 and 3 only (another case's) has no
    // leader until both are back.
    start_together(broker, &["2", "3"]);
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
