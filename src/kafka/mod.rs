//! librdkafka plumbing: connection settings into a client configuration, one run's connection
//! session (which makes every client), the client's error events, topics, and reading a whole
//! topic. Knows nothing of events or verdicts.

pub mod config;
pub mod events;
pub mod reader;
pub mod session;
pub mod topic;
