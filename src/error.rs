//! Errors of the library and the process exit codes they map to.
//!
//! Every error a user can cause (bad option, unreachable broker, wrong credentials) is one
//! [`Error`] whose `Display` is a single line saying what is wrong and what to check. Secrets never
//! appear in these messages: they are built from settings that hold the password only inside
//! [`crate::kafka::config::Secret`], which has no way to print itself.

use std::time::Duration;

/// Documented exit codes of the `kafka-test-app` binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Everything produced was acknowledged; everything consumed verified.
    Pass = 0,
    /// Verification failed (loss, duplicates, reordering, too few events) or deliveries failed.
    Fail = 1,
    /// Usage, connection or authentication error: nothing was tested.
    Usage = 2,
    /// Nothing was found wrong, but not everything could be judged: a producer run did not
    /// finish, a consumer stopped before the end of its partitions or was never assigned any.
    Incomplete = 3,
    /// `verify --against`: the aggregation job's batch was taken before the job had read the
    /// whole topic, and none of its counts is above the topic's (take a later batch).
    Behind = 4,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

/// Everything that can stop a run before it produces a verdict.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option has a value that cannot work.
    #[error("{0}")]
    Usage(String),
    /// The broker rejected our credentials.
    #[error("authentication failed for user '{username}' ({mechanism} over {protocol}): {reason}; check the username and password (--username/--password, KTA_USERNAME/KTA_PASSWORD)")]
    Authentication {
        /// The user name that was refused (never the password).
        username: String,
        /// The SASL mechanism in use.
        mechanism: String,
        /// The security protocol in use.
        protocol: String,
        /// librdkafka's explanation.
        reason: String,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {servers} failed: {reason}; check --ca-file and that the broker serves TLS on that port")]
    Tls {
        /// The bootstrap servers.
        servers: String,
        /// librdkafka's explanation.
        reason: String,
    },
    /// No broker answered in time.
    #[error("cannot reach the Kafka cluster at {servers} within {}: {reason}; check --bootstrap-servers and --security-protocol", humantime::format_duration(*.timeout))]
    Unreachable {
        /// The bootstrap servers.
        servers: String,
        /// How long we waited.
        timeout: Duration,
        /// The last transport error, if librdkafka reported one.
        reason: String,
    },
    /// The topic never appeared.
    #[error("topic '{topic}' does not exist and was not created within {}; start a producer (it creates the topic) or raise --idle-timeout", humantime::format_duration(*.waited))]
    TopicMissing {
        /// The topic we waited for.
        topic: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The broker refused to create the topic.
    #[error("cannot create topic '{topic}': {reason}")]
    TopicCreation {
        /// The topic.
        topic: String,
        /// The broker's answer.
        reason: String,
        /// Whether the answer was an authorization failure (an ACL), not a cluster problem.
        denied: bool,
    },
    /// Any other Kafka client error (creating a client with an invalid -X setting, for instance).
    #[error("{context}: {source}")]
    Kafka {
        /// What we were doing.
        context: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }

    /// Wraps a Kafka client error with what we were doing.
    pub fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        Error::Kafka {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
