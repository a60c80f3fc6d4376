//! Access control as Charmed Kafka sets it up: SCRAM users, the StandardAuthorizer, no access
//! without an ACL, and the grants its `kafka_client` relation gives (a producer WRITE, DESCRIBE
//! and CREATE on its topic or prefix; a consumer READ and DESCRIBE on it and READ on its group
//! prefix). Each test uses topics of its own on the shared SCRAM cluster.

use crate::common::{app, json, run, Broker};

/// The tool as one of the cluster's test users instead of the super-user.
fn as_user(broker: &Broker, user: &str) -> std::process::Command {
    let mut command = app();
    command
        .envs(broker.env())
        .env("KTA_USERNAME", user)
        .env("KTA_PASSWORD", broker.password_of(user));
    command
}

fn produce_as(broker: &Broker, user: &str, topic: &str, expected: i32) -> std::process::Output {
    run(
        as_user(broker, user)
            .args([
                "produce", "--topic", topic, "--rate", "0", "--output", "json",
            ])
            .args(["--num-messages", "300", "--origin", "acl (10.0.0.30)"]),
        expected,
    )
}

#[test]
fn grants_on_a_topic_prefix_are_enough_for_the_whole_fleet() {
    let broker = Broker::scram();
    broker.kafka(&["grant", "producer", "producer", "acl-prefix*"]);
    broker.kafka(&[
        "grant",
        "consumer",
        "consumer",
        "acl-prefix*",
        "acl-prefix-",
    ]);
    let report = json(&produce_as(broker, "producer", "acl-prefix", 0));
    assert_eq!(report["acked"], 300);
    assert_eq!(report["final_run_report"], "delivered");
    assert!(report.get("run_reports_off").is_none(), "{report}");

    let output = run(
        as_user(broker, "consumer")
            .args(["consume", "--topic", "acl-prefix", "--output", "json"])
            .args(["--expect", "300", "--consumer-group-prefix", "acl-prefix-"]),
        0,
    );
    let report = json(&output);
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(report["consumed"], 300);
    // The consumer's own readers stay inside the group prefix it was granted.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("authorization failed"),
        "the consumer hit an ACL:\n{stderr}"
    );

    let report = json(&run(
        as_user(broker, "consumer").args(["verify", "--topic", "acl-prefix", "--output", "json"]),
        0,
    ));
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(report["consumed"], 300, "{report}");
}

#[test]
fn a_producer_granted_only_its_topic_delivers_and_says_run_reports_are_off() {
    let broker = Broker::scram();
    broker.kafka(&["grant", "producer", "producer", "acl-topic-only"]);
    let output = produce_as(broker, "producer", "acl-topic-only", 0);
    let report = json(&output);
    let off = "run reports are off: user 'producer' cannot write the control topic \
               'acl-topic-only-kta-control' (cannot create topic 'acl-topic-only-kta-control': \
               TopicAuthorizationFailed (Broker: Topic authorization failed)); `verify` cannot \
               tell what this run had acknowledged. Grant WRITE, DESCRIBE and CREATE on \
               'acl-topic-only-kta-control' (on Charmed Kafka: request a topic prefix that covers \
               it), or pass --no-run-reports";
    assert_eq!(report["acked"], 300);
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["final_run_report"], "off");
    assert_eq!(report["run_reports_off"], off);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches(off).count(),
        1,
        "the warning is said once:\n{stderr}"
    );
}

#[test]
fn a_user_without_grants_gets_one_line_and_exit_2() {
    let broker = Broker::scram();
    let output = produce_as(broker, "nobody", "acl-nobody", 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "kafka-test-app: error: cannot create topic 'acl-nobody': TopicAuthorizationFailed \
         (Broker: Topic authorization failed)",
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}
