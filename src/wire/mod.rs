//! The wire contract: the event (its bytes, its identity), the run header, and the control
//! topic's records. Everything a producer writes and a reader reads is defined here.

pub mod control;
pub mod event;
pub mod series;

use rdkafka::message::{BorrowedMessage, Headers, Message};

/// The record header carrying a producer's run id (the fast path to an event's run; the run is
/// also in the event's `_id`, see [`event::run_of`]).
pub const RUN_HEADER: &str = "kta-run";

/// The record header that marks a warm-up event (`produce --warmup`): sent and verified like any
/// other, but left out of latency statistics. A header, so the value stays the original's bytes.
pub const WARMUP_HEADER: &str = "kta-warmup";

/// What a record says about its event beside the value: whether it is warm-up, and when the
/// broker appended it (a topic with `message.timestamp.type=LogAppendTime`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Marks {
    /// It carries the [`WARMUP_HEADER`].
    pub warmup: bool,
    /// The broker's append time, seconds since the epoch (broker's clock).
    pub append_s: Option<f64>,
}

/// The run id a record carries in its [`RUN_HEADER`] header (if any) and its [`Marks`], in one
/// walk over its headers: what a reader takes from every record (each walk costs calls into
/// librdkafka and a UTF-8 check per header).
pub fn run_header_and_marks<'a>(message: &'a BorrowedMessage<'_>) -> (Option<&'a [u8]>, Marks) {
    // The first run header names the run (even when it has no value), as a `find` would.
    let (mut run, mut run_found, mut warmup) = (None, false, false);
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            match header.key {
                RUN_HEADER if !run_found => (run, run_found) = (header.value, true),
                WARMUP_HEADER => warmup = true,
                _ => {}
            }
        }
    }
    let append_s = match message.timestamp() {
        rdkafka::Timestamp::LogAppendTime(ms) => Some(ms as f64 / 1000.0),
        _ => None,
    };
    (run, Marks { warmup, append_s })
}
