//! What a running process shows while it runs: the shared status, the HTTP endpoint
//! (`/healthz`, `/readyz`, `/metrics`, `/report`) and the progress line on a terminal.

pub mod http;
pub mod progress;
pub mod status;
