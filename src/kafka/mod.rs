//! librdkafka plumbing: connection settings into a client configuration, the client's error
//! events, topics, and reading a whole topic. Knows nothing of events or verdicts.

pub mod config;
pub mod events;
pub mod reader;
pub mod topic;
