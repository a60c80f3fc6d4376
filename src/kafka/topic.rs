//! Making sure the topic exists: created by producers, awaited by consumers.

use std::pin::pin;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::Client;
use rdkafka::types::RDKafkaErrorCode;

use crate::error::{Error, Result};
use crate::kafka::events::ClientContext;
use crate::kafka::session::Session;

/// How often start-up loops look at connection events and cancellation.
const STEP: Duration = Duration::from_millis(100);

/// The topic to create when it is missing.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partitions of a newly created topic.
    pub partitions: i32,
    /// Replication factor of a newly created topic.
    pub replication_factor: i32,
}

/// Creates the topic unless `client` (connected with the session's settings) sees it already.
/// `poll_events` must serve that client's error events (the admin client's own are not served),
/// so that wrong credentials end start-up at once. Returns `false` when shut down first.
pub fn ensure_topic<C: rdkafka::ClientContext>(
    session: &Session,
    client: &Client<C>,
    spec: &TopicSpec,
    poll_events: impl Fn(),
) -> Result<bool> {
    // Users without the right to create topics can still produce to an existing one, and
    // librdkafka's mock cluster has no CreateTopics: look first.
    let timeout = session.connect_timeout();
    let found = topic_exists(client, &spec.name, timeout.min(STEP * 20));
    poll_events();
    session.check()?;
    if found == Some(true) {
        tracing::info!(topic = %spec.name, "topic exists");
        return Ok(true);
    }
    let admin: AdminClient<ClientContext> = session.client("admin client", &[])?;
    let new_topic = NewTopic::new(
        &spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication_factor),
    );
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let mut request = pin!(admin.create_topics([&new_topic], &options));
    let deadline = Instant::now() + timeout;
    let result = loop {
        poll_events();
        session.check()?;
        if session.is_cancelled() {
            return Ok(false);
        }
        if let Ok(result) = session
            .handle()
            .block_on(async { tokio::time::timeout(STEP, request.as_mut()).await })
        {
            break result;
        }
        if Instant::now() >= deadline {
            return Err(session.unreachable());
        }
    };
    let outcome = match result {
        Ok(mut results) => results.pop().map(|r| r.map_err(|(_, code)| code)),
        Err(e) => {
            poll_events();
            session.check()?;
            tracing::debug!("create topics: {e}");
            return Err(session.unreachable());
        }
    };
    match outcome {
        Some(Ok(_)) => {
            tracing::info!(
                topic = %spec.name,
                partitions = spec.partitions,
                replication_factor = spec.replication_factor,
                "created topic"
            );
            wait_until_served(session, client, spec, &poll_events);
            Ok(true)
        }
        Some(Err(RDKafkaErrorCode::TopicAlreadyExists)) => {
            tracing::info!(topic = %spec.name, "topic exists");
            Ok(true)
        }
        Some(Err(code)) => Err(Error::TopicCreation {
            topic: spec.name.clone(),
            reason: code.to_string(),
            denied: is_denied(code),
        }),
        None => Err(Error::TopicCreation {
            topic: spec.name.clone(),
            reason: "the broker returned no result".to_owned(),
            denied: false,
        }),
    }
}

/// Waits (within the connection timeout) until every partition of a topic just created answers
/// a ListOffsets request, i.e. its leader has made the partition's log, not only learnt of it.
///
/// Kafka's brokers publish a new topic in their metadata before they create its logs (under
/// load, half a second before). A produce request in that window fails and is retried, and
/// librdkafka's idempotent producer may then take the broker's DUPLICATE_SEQUENCE_NUMBER answer
/// to an earlier batch's retry as its delivery (librdkafka#4438): that batch is reported
/// delivered, without an offset, and is not on the topic. A run's first events would be lost so.
fn wait_until_served<C: rdkafka::ClientContext>(
    session: &Session,
    client: &Client<C>,
    spec: &TopicSpec,
    poll_events: &impl Fn(),
) {
    let deadline = Instant::now() + session.connect_timeout();
    for partition in 0..spec.partitions {
        loop {
            match client.fetch_watermarks(&spec.name, partition, STEP * 20) {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline || session.is_cancelled() => {
                    tracing::warn!(
                        topic = %spec.name,
                        partition,
                        "the new topic's partition is not served yet ({e}); producing anyway"
                    );
                    return;
                }
                Err(e) => {
                    tracing::debug!(topic = %spec.name, partition, "not served yet: {e}");
                    poll_events();
                    std::thread::sleep(STEP);
                }
            }
        }
    }
}

/// Kafka's rule for topic names: 1 to 249 ASCII letters, digits, `.`, `_` and `-`, and not `.`
/// or `..`. The error says what is wrong, for a usage error.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    const MAX: usize = 249;
    let rule = "a Kafka topic name is 1 to 249 ASCII letters, digits, '.', '_' and '-'";
    if name.is_empty() {
        return Err(format!("the topic name is empty; {rule}"));
    }
    if name == "." || name == ".." {
        return Err(format!(
            "'{name}' cannot be a topic name; {rule}, and not '.' or '..'"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("'{name}' holds {bad:?}; {rule}"));
    }
    if name.len() > MAX {
        return Err(format!(
            "the topic name is {} characters long; {rule}",
            name.len()
        ));
    }
    Ok(())
}

/// Whether a broker's error code is an authorization failure (an ACL), not a cluster problem.
pub fn is_denied(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
    )
}

/// Whether `topic` exists with at least one partition, or `None` if the cluster did not answer.
pub fn topic_exists<C: rdkafka::ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Option<bool> {
    partition_count(client, topic, timeout).map(|n| n > 0)
}

/// The number of partitions of `topic` (0 if it does not exist), or `None` if the cluster did not
/// answer.
pub fn partition_count<C: rdkafka::ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Option<usize> {
    let metadata = client.fetch_metadata(Some(topic), timeout).ok()?;
    Some(
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len()),
    )
}
