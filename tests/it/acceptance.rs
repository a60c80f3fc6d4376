//! The Apache Kafka issue's acceptance runs: the tutorial's fleet (three producers, unpaced, of
//! 2 000, 4 000 and 6 000 events) on a topic of 6 partitions, then `verify` exact, on three
//! replicated SCRAM brokers and on one broker with mutual TLS.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::common::{app, json, run, Broker};
use crate::fleet::counts;

const FLEET: [(&str, u64); 3] = [
    ("kafka-test-app-0 (10.1.29.185)", 2000),
    ("kafka-test-app-1 (10.1.29.186)", 4000),
    ("kafka-test-app-2 (10.1.29.187)", 6000),
];

/// Runs the three producers at once and `verify`; returns verify's report.
fn fleet_then_verify(broker: &Broker, topic: &str, replication: u32) -> serde_json::Value {
    let producers: Vec<_> = FLEET
        .iter()
        .map(|(origin, count)| {
            app()
                .args([
                    "produce", "--topic", topic, "--rate", "0", "--output", "json",
                ])
                .args(["--num-messages", &count.to_string(), "--origin", origin])
                .args(["--partitions", "6"])
                .args(["--replication-factor", &replication.to_string()])
                .envs(broker.env())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for ((origin, count), producer) in FLEET.iter().zip(producers) {
        let output = producer.wait_with_output().unwrap();
        crate::common::check(&output, 0);
        let report = json(&output);
        assert_eq!(report["origin"], *origin);
        assert_eq!(report["acked"], *count, "{report}");
        assert_eq!(report["failed"], 0, "{report}");
        assert_eq!(report["final_run_report"], "delivered", "{report}");
    }
    // The topic as the cluster describes it.
    let consumer: BaseConsumer = broker.client_config().create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions = metadata.topics()[0].partitions();
    assert_eq!(partitions.len(), 6);
    assert!(partitions
        .iter()
        .all(|p| p.replicas().len() == replication as usize));

    json(&run(
        app()
            .args(["verify", "--topic", topic, "--output", "json"])
            .envs(broker.env()),
        0,
    ))
}

fn assert_exact(report: &serde_json::Value) {
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(report["consumed"], 12_000, "{report}");
    let expected: BTreeMap<String, u64> = FLEET
        .iter()
        .map(|(origin, count)| (origin.to_string(), *count))
        .collect();
    assert_eq!(counts(report), expected);
    crate::fleet::assert_no_anomaly(report);
}

#[test]
fn the_fleet_on_three_replicated_scram_brokers_is_exact() {
    let broker = Broker::own("acceptance-scram", &["--nodes", "3", "--auth", "scram"]);
    assert_eq!(broker.var("KTA_SECURITY_PROTOCOL"), Some("SASL_PLAINTEXT"));
    assert_eq!(broker.bootstrap().split(',').count(), 3);
    assert_exact(&fleet_then_verify(&broker, "acceptance-three", 3));
}

#[test]
fn the_fleet_on_one_broker_with_mutual_tls_is_exact() {
    let broker = Broker::mtls();
    assert_eq!(broker.var("KTA_SECURITY_PROTOCOL"), Some("SSL"));
    assert_exact(&fleet_then_verify(broker, "acceptance-mtls", 1));
}
