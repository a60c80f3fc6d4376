//! Making sure the topic exists: created by producers, awaited by consumers.

use std::pin::pin;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::Client;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::kafka::config::ConnectionSettings;
use crate::kafka::events::{ClientContext, ClientEvents};

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

/// What creating a topic needs of the run's connection.
#[derive(Clone, Copy)]
pub struct Connection<'a> {
    /// The runtime the admin client's futures run on.
    pub handle: &'a Handle,
    /// The client configuration the run's clients were made from (for the admin client).
    pub config: &'a ClientConfig,
    /// The run's connection events, which end start-up on a fatal error.
    pub events: &'a std::sync::Arc<ClientEvents>,
    /// The settings, for timeouts and error messages.
    pub settings: &'a ConnectionSettings,
}

/// Creates the topic unless `client` (connected with the same settings) sees it already.
/// `poll_events` must serve that client's error events (the admin client's own are not served),
/// so that wrong credentials end start-up at once. Returns `false` when shut down first.
pub fn ensure_topic<C: rdkafka::ClientContext>(
    connection: Connection<'_>,
    client: &Client<C>,
    spec: &TopicSpec,
    poll_events: impl Fn(),
    shutdown: &CancellationToken,
) -> Result<bool> {
    let Connection {
        handle,
        config,
        events,
        settings,
    } = connection;
    // Users without the right to create topics can still produce to an existing one, and
    // librdkafka's mock cluster has no CreateTopics: look first.
    let found = topic_exists(client, &spec.name, settings.connect_timeout.min(STEP * 20));
    poll_events();
    events.check(settings)?;
    if found == Some(true) {
        tracing::info!(topic = %spec.name, "topic exists");
        return Ok(true);
    }
    let admin: AdminClient<ClientContext> = config
        .create_with_context(ClientContext::new(events.clone()))
        .map_err(|e| Error::kafka("cannot create the admin client", e))?;
    let new_topic = NewTopic::new(
        &spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication_factor),
    );
    let options = AdminOptions::new()
        .request_timeout(Some(settings.connect_timeout))
        .operation_timeout(Some(settings.connect_timeout));
    let mut request = pin!(admin.create_topics([&new_topic], &options));
    let deadline = Instant::now() + settings.connect_timeout;
    let result = loop {
        poll_events();
        events.check(settings)?;
        if shutdown.is_cancelled() {
            return Ok(false);
        }
        if let Ok(result) =
            handle.block_on(async { tokio::time::timeout(STEP, request.as_mut()).await })
        {
            break result;
        }
        if Instant::now() >= deadline {
            return Err(events.unreachable(settings));
        }
    };
    let outcome = match result {
        Ok(mut results) => results.pop().map(|r| r.map_err(|(_, code)| code)),
        Err(e) => {
            poll_events();
            events.check(settings)?;
            tracing::debug!("create topics: {e}");
            return Err(events.unreachable(settings));
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
