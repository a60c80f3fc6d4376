//! What librdkafka tells us about the connection, outside any particular request.
//!
//! librdkafka reports authentication and TLS failures, and brokers going down, through its error
//! callback and then keeps retrying for ever. [`ClientEvents`] remembers them so that start-up can
//! stop with one clear error (exit code 2) instead of hanging, and [`ClientContext`] is the
//! context every client of a run shares to feed it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rdkafka::client::ClientContext as RdClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;

use crate::error::Error;
use crate::kafka::config::ConnectionSettings;

/// A failure that no retry can fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fatal {
    /// SASL authentication was refused.
    Authentication(String),
    /// The TLS handshake failed.
    Tls(String),
}

/// A transport error librdkafka reported.
#[derive(Debug, Clone)]
struct TransportError {
    /// librdkafka's wording.
    reason: String,
    /// Whether it is the all-brokers-down summary, which names no cause.
    summary: bool,
}

/// Connection-level events reported by librdkafka, shared by the clients of one run.
#[derive(Debug, Default)]
pub struct ClientEvents {
    fatal: Mutex<Option<Fatal>>,
    /// The latest transport error, the reason the one error line gives if nothing better is known.
    last_transport_error: Mutex<Option<TransportError>>,
    cluster_up: AtomicBool,
    /// Whether a broker connection was ever up (until then, transport errors warn once).
    ever_up: AtomicBool,
    /// The latest connection failure librdkafka only logged (no error event).
    last_failure_log: Mutex<Option<String>>,
    /// Rebalances a consumer went through (assignments given or taken).
    rebalances: AtomicU64,
    /// When a consumer was first given partitions: where a backlog's drain starts.
    first_assigned: OnceLock<Instant>,
}

impl ClientEvents {
    /// A fresh, shareable record.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// How many rebalances a consumer with this record went through so far.
    pub fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::Relaxed)
    }

    /// When a consumer with this record was first given partitions, if it was.
    pub fn first_assigned(&self) -> Option<Instant> {
        self.first_assigned.get().copied()
    }

    /// Records an error reported by librdkafka's error callback.
    pub fn on_error(&self, error: &KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication) => {
                self.fatal
                    .lock()
                    .expect("lock")
                    .get_or_insert(Fatal::Authentication(reason.to_owned()));
            }
            Some(RDKafkaErrorCode::SSL) => {
                self.fatal
                    .lock()
                    .expect("lock")
                    .get_or_insert(Fatal::Tls(reason.to_owned()));
            }
            // Reaching the end of a partition is news, not an error; the consumer handles it.
            Some(RDKafkaErrorCode::PartitionEOF) => {}
            // A summary ("1/1 brokers are down") that would hide its cause (connection
            // refused, a name that does not resolve): kept only if nothing better was said.
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                tracing::debug!(target: "kafka", "{reason}");
                self.last_transport_error
                    .lock()
                    .expect("lock")
                    .get_or_insert_with(|| TransportError {
                        reason: reason.to_owned(),
                        summary: true,
                    });
            }
            _ => {
                // Before any broker answered, the final error line says it all: warn once.
                let mut last = self.last_transport_error.lock().expect("lock");
                if self.ever_up.load(Ordering::Relaxed) || last.is_none() {
                    tracing::warn!(target: "kafka", "{reason}");
                } else {
                    tracing::debug!(target: "kafka", "{reason}");
                }
                *last = Some(TransportError {
                    reason: reason.to_owned(),
                    summary: false,
                });
            }
        }
    }

    /// Forwards one of librdkafka's log lines to the log (target `librdkafka`, off unless
    /// `KTA_LOG` names it) and keeps a connection failure (facility `FAIL`: "connection closed by
    /// peer", which librdkafka reports through no error event) as a cause for the one error line.
    pub fn on_log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{facility} {message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "{facility} {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{facility} {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{facility} {message}"),
        }
        if facility == "FAIL" {
            *self.last_failure_log.lock().expect("lock") = Some(message.to_owned());
        }
    }

    /// Records librdkafka's periodic statistics: is any broker connection up?
    pub fn on_stats(&self, statistics: &Statistics) {
        let up = statistics
            .brokers
            .values()
            .any(|broker| broker.nodeid >= 0 && broker.state == "UP");
        self.cluster_up.store(up, Ordering::Relaxed);
        if up {
            self.ever_up.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a broker connection was up at the last statistics report.
    pub fn cluster_up(&self) -> bool {
        self.cluster_up.load(Ordering::Relaxed)
    }

    /// The fatal error seen so far, if any, as the error to end the run with.
    pub(super) fn check(&self, settings: &ConnectionSettings) -> Result<(), Error> {
        let fatal = self.fatal.lock().expect("lock").clone();
        match fatal {
            None => Ok(()),
            Some(Fatal::Authentication(reason)) => Err(Error::Authentication {
                username: settings.username.clone().unwrap_or_default(),
                mechanism: settings.sasl_mechanism.to_string(),
                protocol: settings.effective_protocol().to_string(),
                reason,
            }),
            Some(Fatal::Tls(reason)) => Err(Error::Tls {
                servers: settings.bootstrap_servers.clone(),
                reason,
            }),
        }
    }

    /// The error to report when the cluster could not be reached in time: the latest transport
    /// error, or the failure librdkafka only logged.
    pub(super) fn unreachable(&self, settings: &ConnectionSettings) -> Error {
        let last = self.last_transport_error.lock().expect("lock").clone();
        // A summary ("1/1 brokers are down") gives way to a failure librdkafka only logged.
        let reason = match last {
            Some(error) if !error.summary => Some(error.reason),
            last => (self.last_failure_log.lock().expect("lock").clone())
                .or(last.map(|error| error.reason)),
        };
        Error::Unreachable {
            servers: settings.bootstrap_servers.clone(),
            timeout: settings.connect_timeout,
            reason: reason.map_or_else(
                || "no broker answered".to_owned(),
                |r| format!("{}{}", without_timing(&r), closed_hint(&r, settings)),
            ),
        }
    }
}

/// A librdkafka error line without its leading "[thrd:…]: " and trailing "(after 0ms in state
/// CONNECT, …)": one error line says what failed, not where in librdkafka or when.
fn without_timing(reason: &str) -> String {
    let reason = match reason
        .strip_prefix("[thrd:")
        .and_then(|r| r.split_once("]: "))
    {
        Some((_, rest)) => rest,
        None => reason,
    };
    match reason.rfind(" (after ") {
        Some(at) if reason.ends_with(')') => reason[..at].to_owned(),
        _ => reason.to_owned(),
    }
}

/// Why a listener may close a connection at once: it wants another protocol.
fn closed_hint(reason: &str, settings: &ConnectionSettings) -> &'static str {
    let protocol = settings.effective_protocol();
    let closed = ["closed by peer", "Broken pipe", "Connection reset"]
        .iter()
        .any(|c| reason.contains(c));
    match (closed, protocol.uses_sasl(), protocol.uses_tls()) {
        (true, false, false) => " (the broker closed the connection at once, as a listener that wants SASL or TLS does)",
        (true, true, false) => " (the broker closed the connection at once, as a listener that wants TLS, or no SASL, does)",
        _ => "",
    }
}

/// The librdkafka context of admin clients and consumers: forwards errors to [`ClientEvents`].
#[derive(Debug, Clone)]
pub struct ClientContext {
    events: Arc<ClientEvents>,
}

impl ClientContext {
    /// A context feeding `events`.
    pub fn new(events: Arc<ClientEvents>) -> Self {
        ClientContext { events }
    }
}

impl RdClientContext for ClientContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.events.on_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.events.on_error(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        self.events.on_stats(&statistics);
    }
}

impl ConsumerContext for ClientContext {
    fn post_rebalance(
        &self,
        _: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        self.events.rebalances.fetch_add(1, Ordering::Relaxed);
        if let rdkafka::consumer::Rebalance::Assign(partitions) = rebalance {
            if partitions.count() > 0 {
                let _ = self.events.first_assigned.set(Instant::now());
            }
        }
    }
}

/// Producers with this context (control records) ignore delivery reports.
impl ProducerContext for ClientContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::config::Secret;

    fn settings() -> ConnectionSettings {
        ConnectionSettings {
            bootstrap_servers: "127.0.0.1:9092".into(),
            username: Some("alice".into()),
            password: Some(Secret::new("hunter2-secret")),
            ..Default::default()
        }
    }

    #[test]
    fn authentication_failure_becomes_a_one_line_error_without_the_password() {
        let events = ClientEvents::new();
        assert!(events.check(&settings()).is_ok());
        events.on_error(
            &KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: SASL SCRAM authentication failed: broker responded with invalid-proof",
        );
        let message = events.check(&settings()).unwrap_err().to_string();
        assert_eq!(
            message,
            "authentication failed for user 'alice' (SCRAM-SHA-512 over SASL_PLAINTEXT): SASL \
             authentication error: SASL SCRAM authentication failed: broker responded with \
             invalid-proof; check the username and password (--username/--password, \
             KTA_USERNAME/KTA_PASSWORD)"
        );
        assert!(!message.contains("hunter2"));
    }

    #[test]
    fn transport_errors_explain_unreachable() {
        let events = ClientEvents::new();
        events.on_error(
            &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert!(events.check(&settings()).is_ok());
        assert_eq!(
            events.unreachable(&settings()).to_string(),
            "cannot reach the Kafka cluster at 127.0.0.1:9092 within 10s: 1/1 brokers are down; \
             check --bootstrap-servers and --security-protocol"
        );
        // The cause, once known, is not hidden by the summary that follows it.
        let refused = "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: \
                       Connection refused";
        events.on_error(
            &KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            &format!("{refused} (after 0ms in state CONNECT, 1 identical error(s) suppressed)"),
        );
        events.on_error(
            &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert_eq!(
            events.unreachable(&settings()).to_string(),
            format!(
                "cannot reach the Kafka cluster at 127.0.0.1:9092 within 10s: {refused}; check \
                 --bootstrap-servers and --security-protocol"
            )
        );
    }
}
