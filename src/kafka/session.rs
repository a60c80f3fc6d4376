//! One run's connection to the cluster: every client of a run is made here, and every connection
//! error of a run is worded here.
//!
//! A [`Session`] holds what the clients of one run (a producer, a consumer, `verify`) share: the
//! settings, the librdkafka configuration checked once from them, the [`ClientEvents`] every client
//! feeds, the runtime that admin-client futures run on, and the shutdown signal. The settings
//! travel with the events, so an error ("authentication failed for user 'alice' …", "cannot reach
//! the Kafka cluster at …") is worded from one place and callers only ask [`Session::check`] or
//! [`Session::unreachable`].

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext as RdClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::ClientConfig;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::kafka::config::{client_config, ConnectionSettings};
use crate::kafka::events::{ClientContext, ClientEvents};

/// One run's connection: settings, checked configuration, connection events, runtime, shutdown.
#[derive(Debug, Clone)]
pub struct Session {
    /// The settings, for timeouts and for wording errors (user, protocol, servers).
    settings: ConnectionSettings,
    /// The configuration every client starts from, checked once (coherent settings, files exist).
    config: ClientConfig,
    /// What librdkafka said about the connection, fed by every client of this session.
    events: Arc<ClientEvents>,
    /// The runtime the admin client's futures and the shutdown-aware waits run on.
    handle: Handle,
    /// Cancelled when the run must stop (a signal, or the demo ending).
    shutdown: CancellationToken,
}

impl Session {
    /// A session for `settings`: fails at once (exit code 2) on settings that cannot work, before
    /// any connection attempt.
    pub fn new(
        settings: &ConnectionSettings,
        handle: Handle,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        Ok(Session {
            config: client_config(settings)?,
            settings: settings.clone(),
            events: ClientEvents::new(),
            handle,
            shutdown,
        })
    }

    /// The connection settings.
    pub fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    /// The connection events of this session's clients.
    pub fn events(&self) -> &Arc<ClientEvents> {
        &self.events
    }

    /// The runtime of this run.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Whether the run was told to stop.
    pub fn is_cancelled(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Waits `pause`, or less if the run is told to stop first.
    pub fn pause(&self, pause: Duration) {
        let shutdown = &self.shutdown;
        let _ = self
            .handle
            .block_on(async { tokio::time::timeout(pause, shutdown.cancelled()).await });
    }

    /// How long start-up may take to reach the cluster.
    pub fn connect_timeout(&self) -> Duration {
        self.settings.connect_timeout
    }

    /// The configuration a client starts from, to add its own properties to.
    pub fn config(&self) -> ClientConfig {
        self.config.clone()
    }

    /// The fatal connection error seen so far (wrong credentials, a TLS failure), as the error to
    /// end the run with.
    pub fn check(&self) -> Result<()> {
        self.events.check(&self.settings)
    }

    /// The error to end the run with when the cluster could not be reached in time.
    pub fn unreachable(&self) -> Error {
        self.events.unreachable(&self.settings)
    }

    /// A client feeding this session's events: the base configuration with `properties` added.
    /// `what` names it in the error if librdkafka refuses the configuration.
    pub fn client<T>(&self, what: &str, properties: &[(&str, &str)]) -> Result<T>
    where
        T: FromClientConfigAndContext<ClientContext>,
    {
        let mut config = self.config();
        for (key, value) in properties {
            config.set(*key, *value);
        }
        self.client_with(what, &config, ClientContext::new(self.events.clone()))
    }

    /// A client made from `config` with a context of its own (which must feed
    /// [`Session::events`], as the producer's delivery context does).
    pub fn client_with<T, C>(&self, what: &str, config: &ClientConfig, context: C) -> Result<T>
    where
        C: RdClientContext,
        T: FromClientConfigAndContext<C>,
    {
        config
            .create_with_context(context)
            .map_err(|e| Error::kafka(format!("cannot create the {what}"), e))
    }
}
