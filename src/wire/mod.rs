//! The wire contract: the event (its bytes, its identity), the run header, and the control
//! topic's records. Everything a producer writes and a reader reads is defined here.

pub mod control;
pub mod event;
pub mod series;

use rdkafka::message::{BorrowedMessage, Headers, Message};

/// The record header carrying a producer's run id (the fast path to an event's run; the run is
/// also in the event's `_id`, see [`event::run_of`]).
pub const RUN_HEADER: &str = "kta-run";

/// The run id a record carries in its [`RUN_HEADER`] header, if any.
pub fn run_header<'a>(message: &'a BorrowedMessage<'_>) -> Option<&'a [u8]> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|header| header.key == RUN_HEADER)
        .and_then(|header| header.value)
}
