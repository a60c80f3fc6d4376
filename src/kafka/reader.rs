//! Reading a whole topic, from the start of each partition to its end, without a consumer group.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{Error, Result};
use crate::kafka::config::Isolation;
use crate::kafka::events::ClientContext;
use crate::kafka::session::Session;

/// Where a partition's reading is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Below the high watermark listed when reading began.
    Reading,
    /// A record at or past that watermark was read; the end-of-partition event finishes it.
    PastListedEnd,
}

/// The end (high watermark) of each partition of a topic, as listed when reading began.
pub type LogEnds = std::collections::BTreeMap<i32, i64>;

/// Calls `each` for every record of `topic`, from the start of each partition to its end as it
/// was when reading began. Returns `false` if the topic does not exist. Nothing is committed.
pub fn read_to_end(
    session: &Session,
    topic: &str,
    each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<bool> {
    Ok(read_all(session, topic, each)?.is_some())
}

/// [`read_to_end`], returning where each partition ended (`None`: no such topic).
///
/// A partition is finished by librdkafka's end-of-partition event once the listed high watermark
/// has been reached, not by either alone: Tansu lists the base offset of a partition's last batch
/// plus one as its high watermark (so the rest of that batch follows the record at the
/// watermark), and the end-of-partition event can come early when a fetch response's watermark
/// lags the log, ahead of records of the same fetch; so reading ends only once the queue has also
/// stayed quiet for a moment.
pub fn read_all(
    session: &Session,
    topic: &str,
    each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<Option<LogEnds>> {
    read_all_isolated(session, topic, Isolation::default(), each)
}

/// [`read_all`] with the given isolation: read-uncommitted readers also get the records of
/// aborted transactions.
pub fn read_all_isolated(
    session: &Session,
    topic: &str,
    isolation: Isolation,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<Option<LogEnds>> {
    let consumer: BaseConsumer<ClientContext> = session.client(
        "reader",
        &[
            ("isolation.level", isolation.as_str()),
            ("group.id", "kafka-test-app-reader"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
            // Bounds what librdkafka prefetches (64 MiB by default), so verifying a large topic
            // stays within a small, fixed memory budget.
            ("queued.max.messages.kbytes", "16384"),
        ],
    )?;

    let deadline = Instant::now() + session.connect_timeout();
    let metadata = loop {
        let _ = consumer.poll(Duration::from_millis(100));
        session.check()?;
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(1)) {
            Ok(metadata) => break metadata,
            Err(_) if Instant::now() < deadline => {}
            Err(_) => return Err(session.unreachable()),
        }
    };
    let Some(partitions) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
    else {
        return Ok(None);
    };

    let mut ends = LogEnds::new();
    let mut remaining: HashMap<i32, (i64, Progress)> = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        // Retried within --connect-timeout: a partition just after a broker restart may have
        // no leader for a few seconds.
        let deadline = Instant::now() + session.connect_timeout();
        let (low, high) = loop {
            match consumer.fetch_watermarks(topic, partition, Duration::from_secs(2)) {
                Ok(marks) => break marks,
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::kafka(
                        format!("cannot read the offsets of {topic} partition {partition}"),
                        e,
                    ))
                }
                Err(e) => {
                    tracing::debug!("offsets of {topic} partition {partition}: {e}; retrying");
                    session.check()?;
                    let _ = consumer.poll(Duration::from_millis(200));
                }
            }
        };
        ends.insert(partition, high);
        if high > low {
            remaining.insert(partition, (high, Progress::Reading));
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(|e| Error::kafka("cannot assign", e))?;
        }
    }
    consumer
        .assign(&assignment)
        .map_err(|e| Error::kafka("cannot assign", e))?;

    while !remaining.is_empty() {
        if session.is_cancelled() {
            return Err(Error::Usage(format!("interrupted before {topic} was read")));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                if let Some((high, progress)) = remaining.get_mut(&message.partition()) {
                    if message.offset() + 1 >= *high {
                        *progress = Progress::PastListedEnd;
                    }
                }
                each(&message);
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                let position = consumer.position().ok().and_then(|list| {
                    list.find_partition(topic, partition)
                        .and_then(|p| p.offset().to_raw())
                });
                if let Some(&(high, progress)) = remaining.get(&partition) {
                    // Past the listed end, or at it with no record there (e.g. a transaction
                    // marker closes the partition).
                    if progress == Progress::PastListedEnd || position.is_some_and(|p| p >= high) {
                        remaining.remove(&partition);
                    }
                }
            }
            Some(Err(_)) => session.check()?,
            None => {}
        }
    }
    // Records already fetched may still be queued behind an early end-of-partition event (Tansu
    // again): take whatever arrives until the queue stays quiet, for at most a few seconds.
    let drain_until = Instant::now() + DRAIN_MAX;
    while Instant::now() < drain_until {
        match consumer.poll(QUIET) {
            Some(Ok(message)) => each(&message),
            Some(Err(_)) => {}
            None => break,
        }
    }
    Ok(Some(ends))
}

/// How long the queue must stay empty for reading to be over.
const QUIET: Duration = Duration::from_millis(300);
/// The longest the final drain may take.
const DRAIN_MAX: Duration = Duration::from_secs(10);
