//! A consumer's link to the control topic: it writes the member's reports (offsets consumed,
//! counts by origin) for `verify --group`, and reads the producers' run reports, which the
//! consumer's verdict is judged against (and `--until-complete` waits on).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::Result;
use crate::kafka::events::ClientContext;
use crate::kafka::session::Session;
use crate::kafka::topic::partition_count;
use crate::tally::ranges::RangeSet;
use crate::tally::{keep_latest, Reports, Tally};
use crate::wire::control::{
    from_pairs, to_pairs, ControlRecord, MemberReport, PartitionOffsets, RunState,
};
use crate::wire::event::python_timestamp;
use crate::wire::event::run_key;
use crate::wire::series::{encode_histogram, Series};

/// Offsets consumed, per partition.
pub type Offsets = BTreeMap<i32, RangeSet>;

/// A consumer group member's connection to the control topic.
pub struct ControlLink {
    topic: String,
    data_topic: String,
    group: String,
    member: String,
    writer: BaseProducer<ClientContext>,
    /// Reads producer run reports.
    reader: BaseConsumer<ClientContext>,
    reader_assigned: bool,
    /// The latest report of every run of the data topic read so far.
    runs: Reports,
    /// Where the control topic's partitions ended when this consumer began to hold back
    /// (`--hold-until-done`): a run with a report at or past them reported since then (`None`:
    /// not holding; a partition missing from the map ended at 0).
    hold_marks: Option<BTreeMap<i32, i64>>,
    /// Runs (ids) with a report at or past [`ControlLink::hold_marks`].
    reported_since_hold: BTreeSet<String>,
    /// The offset after the last record read, per partition of the control topic: whether
    /// the history up to the hold marks has been read.
    read_to: BTreeMap<i32, i64>,
}

/// What the run reports read so far say about the backlog a held-back consumer waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Runs of the data topic announced.
    pub runs: u64,
    /// Of those, finished.
    pub finished: u64,
    /// Events they acknowledged.
    pub acked: u64,
    /// Runs that reported since the hold began.
    pub reported_since_hold: u64,
}

impl ControlLink {
    /// Connects with the consumer's session (no group settings of the consumer's own).
    pub fn new(session: &Session, topic: &str, data_topic: &str, group: &str) -> Result<Self> {
        // A control topic nobody created yet must not hold reports back for minutes.
        let writer = session.client("control topic writer", &[("message.timeout.ms", "30000")])?;
        // librdkafka needs a group id even to read assigned partitions, and looks its
        // coordinator up: one under the consumer's own group name needs no other rights (Charmed
        // Kafka grants a consumer its group prefix only). It commits nothing.
        let reader = session.client(
            "control topic reader",
            &[
                ("group.id", &format!("{group}-control-reader")),
                ("enable.auto.commit", "false"),
            ],
        )?;
        Ok(ControlLink {
            topic: topic.to_owned(),
            data_topic: data_topic.to_owned(),
            group: group.to_owned(),
            member: uuid::Uuid::new_v4().simple().to_string(),
            writer,
            reader,
            reader_assigned: false,
            runs: Reports::default(),
            hold_marks: None,
            reported_since_hold: BTreeSet::new(),
            read_to: BTreeMap::new(),
        })
    }

    /// Writes this member's report with its events consumed over time (delivered in the
    /// background).
    pub fn write(&mut self, state: RunState, tally: &Tally, offsets: &Offsets, consumed: &Series) {
        let now = python_timestamp(SystemTime::now());
        let report = ControlRecord::ConsumerMember(MemberReport {
            member: self.member.clone(),
            group: self.group.clone(),
            topic: self.data_topic.clone(),
            state,
            consumed: tally.consumed(),
            malformed: tally.malformed(),
            offsets: offsets
                .iter()
                .map(|(&partition, set)| PartitionOffsets {
                    partition,
                    ranges: to_pairs(set),
                })
                .collect(),
            counts: tally
                .counts()
                .into_iter()
                .map(|(origin, count)| (origin.to_owned(), count))
                .collect(),
            consumed_per_s: consumed.clone(),
            latency_us: encode_histogram(&tally.latency_histogram()),
            updated: now,
        });
        let value = report.to_json();
        let record = BaseRecord::to(&self.topic)
            .key(&self.member)
            .payload(&value);
        if let Err((error, _)) = self.writer.send(record) {
            tracing::debug!("cannot queue a member report: {error}");
        }
        self.writer.poll(Duration::ZERO);
    }

    /// Writes the final report and waits at most `timeout` for it to be delivered.
    pub fn finish(
        &mut self,
        tally: &Tally,
        offsets: &Offsets,
        consumed: &Series,
        timeout: Duration,
    ) {
        self.write(RunState::Finished, tally, offsets, consumed);
        if self.writer.flush(timeout).is_err() {
            tracing::warn!(control_topic = %self.topic, "the final member report was not delivered");
        }
    }

    /// Reads the run reports written since the last call.
    pub fn refresh_runs(&mut self) {
        let reader = &self.reader;
        if !self.reader_assigned {
            match partition_count(reader.client(), &self.topic, Duration::from_millis(200)) {
                Some(partitions) if partitions > 0 => {
                    let mut assignment = TopicPartitionList::new();
                    for partition in 0..partitions as i32 {
                        let _ = assignment.add_partition_offset(
                            &self.topic,
                            partition,
                            Offset::Beginning,
                        );
                    }
                    self.reader_assigned = reader.assign(&assignment).is_ok();
                }
                _ => return,
            }
        }
        while let Some(Ok(message)) = reader.poll(Duration::from_millis(10)) {
            self.read_to
                .insert(message.partition(), message.offset() + 1);
            if let Some(ControlRecord::ProducerRun(run)) =
                message.payload().and_then(ControlRecord::parse)
            {
                if run.topic == self.data_topic {
                    if let Some(marks) = &self.hold_marks {
                        let mark = marks.get(&message.partition()).copied().unwrap_or(0);
                        if message.offset() >= mark {
                            self.reported_since_hold.insert(run.run.clone());
                        }
                    }
                    keep_latest(&mut self.runs, run);
                }
            }
        }
    }

    /// Notes where the control topic ends now, so that [`Backlog::reported_since_hold`] counts
    /// the runs reporting from here on; waits at most `timeout` for each answer (a control
    /// topic that does not exist yet ends at 0). Returns whether the cluster answered.
    pub fn mark_hold(&mut self, timeout: Duration) -> bool {
        let reader = &self.reader;
        let mut marks = BTreeMap::new();
        let Some(partitions) = partition_count(reader.client(), &self.topic, timeout) else {
            return false;
        };
        for partition in 0..partitions as i32 {
            match reader.fetch_watermarks(&self.topic, partition, timeout) {
                // An empty partition (or one whose records were all deleted) has nothing to
                // read up to.
                Ok((low, high)) if high > low => {
                    marks.insert(partition, high);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(
                    control_topic = %self.topic,
                    partition,
                    "cannot list where the control topic ends ({error}): its earlier runs may \
                     count towards --hold-runs"
                ),
            }
        }
        self.hold_marks = Some(marks);
        true
    }

    /// Whether every report written before [`ControlLink::mark_hold`] has been read (true when
    /// not holding).
    pub fn read_to_hold_marks(&self) -> bool {
        self.hold_marks.as_ref().is_none_or(|marks| {
            marks
                .iter()
                .all(|(p, &mark)| self.read_to.get(p).copied().unwrap_or(0) >= mark)
        })
    }

    /// The backlog as the run reports read so far tell it.
    pub fn backlog(&self) -> Backlog {
        let mut backlog = Backlog {
            reported_since_hold: self.reported_since_hold.len() as u64,
            ..Backlog::default()
        };
        for run in self.runs.values() {
            backlog.runs += 1;
            backlog.finished += u64::from(run.state == RunState::Finished);
            backlog.acked += from_pairs(&run.acked).len();
        }
        backlog
    }

    /// The latest report of every run read so far.
    pub fn runs(&self) -> &Reports {
        &self.runs
    }

    /// Whether every announced run has finished and all it acknowledged has been consumed.
    pub fn complete(&self, tally: &Tally) -> bool {
        !self.runs.is_empty()
            && self.runs.values().all(|run| {
                let acked = from_pairs(&run.acked);
                let seen = tally
                    .origins()
                    .get(&run.origin)
                    .and_then(|o| o.run(run_key(&run.run)))
                    .map_or(0, |r| r.seen().overlap(&acked));
                run.state == RunState::Finished && seen == acked.len()
            })
    }
}
