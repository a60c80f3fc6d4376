//! Stalls: events pending and no acknowledgement for a while.
//!
//! A cluster that takes no writes (no leader, too few in-sync replicas, a frozen broker) leaves
//! librdkafka retrying quietly until `message.timeout.ms`. [`Stall`] watches the producer's
//! settled count (acknowledged + failed) once a second and says when one begins (so the producer
//! warns and `/readyz` turns 503) and when it ends; it also keeps the longest gap, reported as
//! `longest_ack_gap_s`.
//!
//! That gap ends with the first acknowledgement of *any* partition: while one partition fails
//! over, the others keep acknowledging, so it stays near its one-second floor. [`Recovery`]
//! keeps, per partition, the longest time between two of its acknowledgements: from a fault's
//! start (the partition's last acknowledgement before it) until acknowledgements flow on that
//! partition again. Its largest, `time_to_recover_s`, is how long the slowest partition took to
//! recover; the per-partition values are `recovery_by_partition_s`.

use std::time::{Duration, Instant};

/// How long events may be pending without any being settled before it counts as a stall.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// What an observation changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// Nothing new.
    None,
    /// A stall began: nothing settled for this long while `pending` events wait.
    Began {
        /// Events sent and not yet acknowledged or failed.
        pending: u64,
        /// How long nothing was settled.
        since: Duration,
    },
    /// The stall ended: events were settled again after this long.
    Ended {
        /// How long nothing was settled.
        after: Duration,
    },
}

/// The stall detector of one producer run.
#[derive(Debug, Clone)]
pub struct Stall {
    /// The settled count at the last observation.
    settled: u64,
    /// Since when nothing was settled while events were pending (`None`: nothing pending, or
    /// settling).
    quiet_since: Option<Instant>,
    /// Whether the current quiet spell was reported as a stall.
    stalled: bool,
    /// The longest quiet spell so far.
    longest: Duration,
}

impl Stall {
    /// A detector for a run starting now.
    pub fn new() -> Self {
        Stall {
            settled: 0,
            quiet_since: None,
            stalled: false,
            longest: Duration::ZERO,
        }
    }

    /// Observes the counts at `now`: `sent` events handed over, `settled` acknowledged or failed.
    pub fn observe(&mut self, now: Instant, sent: u64, settled: u64) -> Change {
        let pending = sent.saturating_sub(settled);
        let progressed = settled > self.settled;
        self.settled = settled;
        if let Some(since) = self.quiet_since {
            self.longest = self.longest.max(now.saturating_duration_since(since));
        }
        if progressed || pending == 0 {
            let after = self
                .quiet_since
                .map(|since| now.saturating_duration_since(since));
            let was_stalled = std::mem::replace(&mut self.stalled, false);
            self.quiet_since = (pending > 0).then_some(now);
            return match (was_stalled, after) {
                (true, Some(after)) => Change::Ended { after },
                _ => Change::None,
            };
        }
        let since = *self.quiet_since.get_or_insert(now);
        let quiet = now.saturating_duration_since(since);
        if !self.stalled && quiet >= STALL_AFTER {
            self.stalled = true;
            return Change::Began {
                pending,
                since: quiet,
            };
        }
        Change::None
    }

    /// Whether a stall is going on.
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    /// The longest time events were pending with none settled, in seconds.
    pub fn longest_s(&self) -> f64 {
        self.longest.as_secs_f64()
    }
}

impl Default for Stall {
    fn default() -> Self {
        Self::new()
    }
}

/// Per partition, the longest time between two of its acknowledgements.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Index = partition: its latest acknowledgement and its longest gap so far.
    partitions: Vec<Option<(Instant, Duration)>>,
}

impl Recovery {
    /// An acknowledgement of an event on `partition` at `now`.
    pub fn acked(&mut self, partition: usize, now: Instant) {
        if self.partitions.len() <= partition {
            self.partitions.resize(partition + 1, None);
        }
        let slot = &mut self.partitions[partition];
        let longest = match *slot {
            Some((last, longest)) => longest.max(now.saturating_duration_since(last)),
            None => Duration::ZERO,
        };
        *slot = Some((now, longest));
    }

    /// `[partition, seconds]` for every partition acknowledged: its longest gap between two
    /// acknowledgements (0 with fewer than two).
    pub fn by_partition_s(&self) -> Vec<(u32, f64)> {
        self.partitions
            .iter()
            .enumerate()
            .filter_map(|(p, slot)| Some((p as u32, slot.as_ref()?.1.as_secs_f64())))
            .collect()
    }

    /// The slowest partition's recovery: the longest gap of any partition, in seconds.
    pub fn longest_s(&self) -> f64 {
        self.by_partition_s()
            .into_iter()
            .map(|(_, s)| s)
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_begins_after_five_quiet_seconds_and_ends_with_the_next_ack() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut stall = Stall::new();
        assert_eq!(stall.observe(at(0), 10, 10), Change::None);
        // Acks stop at 10 of 20 sent.
        assert_eq!(stall.observe(at(1), 20, 10), Change::None);
        assert_eq!(stall.observe(at(5), 30, 10), Change::None);
        assert_eq!(
            stall.observe(at(6), 40, 10),
            Change::Began {
                pending: 30,
                since: Duration::from_secs(5)
            }
        );
        assert!(stall.is_stalled());
        assert_eq!(stall.observe(at(7), 40, 10), Change::None);
        assert_eq!(
            stall.observe(at(9), 40, 40),
            Change::Ended {
                after: Duration::from_secs(8)
            }
        );
        assert!(!stall.is_stalled());
        assert_eq!(stall.longest_s(), 8.0);
    }

    #[test]
    fn nothing_pending_is_never_a_stall() {
        let t0 = Instant::now();
        let mut stall = Stall::new();
        for s in 0..20 {
            assert_eq!(
                stall.observe(t0 + Duration::from_secs(s), 5, 5),
                Change::None
            );
        }
        assert_eq!(stall.longest_s(), 0.0);
    }

    #[test]
    fn steady_acks_keep_the_longest_gap_at_the_observation_step() {
        let t0 = Instant::now();
        let mut stall = Stall::new();
        for s in 0..10 {
            stall.observe(t0 + Duration::from_secs(s), (s + 1) * 10, s * 10);
        }
        assert!(!stall.is_stalled());
        assert_eq!(stall.longest_s(), 1.0);
    }

    #[test]
    fn recovery_is_the_longest_gap_of_one_partition_while_others_ack() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut recovery = Recovery::default();
        // Partitions 0 and 2 acknowledge every 10 ms; partition 1 stops at 100 ms (its leader
        // dies) and resumes at 7 100 ms.
        for ms in (0..8000).step_by(10) {
            recovery.acked(0, at(ms));
            recovery.acked(2, at(ms));
            if !(101..7100).contains(&ms) {
                recovery.acked(1, at(ms));
            }
        }
        assert_eq!(
            recovery.by_partition_s(),
            vec![(0, 0.01), (1, 7.0), (2, 0.01)]
        );
        assert_eq!(recovery.longest_s(), 7.0);
    }

    #[test]
    fn one_acknowledgement_is_no_gap_and_no_partition_is_nothing() {
        let mut recovery = Recovery::default();
        assert_eq!(recovery.longest_s(), 0.0);
        recovery.acked(3, Instant::now());
        assert_eq!(recovery.by_partition_s(), vec![(3, 0.0)]);
        assert_eq!(recovery.longest_s(), 0.0);
    }
}
