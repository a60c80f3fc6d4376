//! Backlog mode (`consume --hold-until-done`): the consumer holds its group back — it does not
//! join it, so nothing of the topic is consumed — while the producers build a backlog, then
//! joins and drains it, and its report says how fast ([`Drain`]). It ends as `--until-complete`
//! does: every run announced has finished and every event it acknowledged was seen (a set of
//! `n`, never a count), or `--idle-timeout` passed first.

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::verdict::judge::{Drain, HoldEnd};

use super::member::Backlog;
use super::{Reading, POLL};

/// How often a holding consumer reads the control topic.
const HOLD_POLL: Duration = Duration::from_millis(200);

/// What holds the group back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hold {
    /// Also wait until this many runs have reported since the consumer started (`--hold-runs`:
    /// a fleet whose producers start at different moments, or a topic with earlier runs).
    pub runs: Option<u64>,
}

impl Hold {
    /// Whether the backlog is built: at least one run announced (and `runs` reporting since the
    /// hold began), every one finished, the control topic read up to where it ended when the
    /// hold began (so no earlier run is still unread).
    fn released(&self, backlog: &Backlog, read_to_marks: bool) -> bool {
        read_to_marks
            && backlog.runs > 0
            && backlog.finished == backlog.runs
            && backlog.reported_since_hold >= self.runs.unwrap_or(0)
    }
}

/// The hold as it stands or ended: what the drain is measured from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Held {
    /// When the hold ended (the consumer subscribed then); while holding, the latest look.
    pub ended: Instant,
    /// Why it ended, or [`HoldEnd::Holding`].
    pub how: HoldEnd,
    /// The backlog the run reports showed then.
    pub backlog: Backlog,
}

impl Reading<'_> {
    /// Holds the group back until the backlog is built ([`Hold::released`]), nothing new came
    /// on the control topic for `--idle-timeout`, or a signal; returns how it ended. Publishes
    /// the status (the backlog so far) about once a second.
    pub(super) fn hold(&mut self, hold: &Hold) -> Result<HoldEnd> {
        let start = Instant::now();
        let Some(link) = &mut self.link else {
            // No control topic, no run reports to wait for (the CLI refuses this).
            self.held = Some(Held {
                ended: start,
                how: HoldEnd::RunsFinished,
                backlog: Backlog::default(),
            });
            return Ok(HoldEnd::RunsFinished);
        };
        if !link.mark_hold(self.session.connect_timeout()) {
            // Serves the error events that say why (wrong credentials, TLS).
            let _ = self.consumer.poll(POLL);
            self.session.check()?;
            return Err(self.session.unreachable());
        }
        tracing::info!(
            group = %self.options.group_id,
            "holding the group back until every producer run announced on the control topic has \
             finished{}",
            hold.runs
                .map_or(String::new(), |n| format!(" and {n} have reported since now"))
        );
        let mut last = None;
        let mut changed = Instant::now();
        let mut next_publish = Instant::now();
        let how = loop {
            self.session.check()?;
            if self.session.is_cancelled() {
                tracing::info!("stopping: signal received while holding the group back");
                self.view.stopped_holding = true;
                break HoldEnd::Stopped;
            }
            let (backlog, read_to_marks) = match self.link.as_mut() {
                Some(link) => {
                    link.refresh_runs();
                    (link.backlog(), link.read_to_hold_marks())
                }
                None => (Backlog::default(), true),
            };
            if last != Some(backlog) {
                if last.is_none_or(|l: Backlog| {
                    (l.runs, l.finished) != (backlog.runs, backlog.finished)
                }) {
                    tracing::info!(
                        runs = backlog.runs,
                        finished = backlog.finished,
                        reported_since_hold = backlog.reported_since_hold,
                        acked = backlog.acked,
                        "holding: {} of {} runs finished, {} events acknowledged",
                        backlog.finished,
                        backlog.runs,
                        backlog.acked
                    );
                }
                last = Some(backlog);
                changed = Instant::now();
            }
            self.held = Some(Held {
                ended: Instant::now(),
                how: HoldEnd::Holding,
                backlog,
            });
            if hold.released(&backlog, read_to_marks) {
                break HoldEnd::RunsFinished;
            }
            if let Some(idle) = self.options.idle_timeout {
                if changed.elapsed() >= idle {
                    tracing::info!(
                        "ending the hold: nothing new on the control topic for {}",
                        humantime::format_duration(idle)
                    );
                    break HoldEnd::IdleTimeout;
                }
            }
            if Instant::now() >= next_publish {
                next_publish = Instant::now() + crate::live::status::PUBLISH_EVERY;
                self.status
                    .set_cluster_up(self.session.events().cluster_up());
                self.progress.show(&format!(
                    "holding the group back: {} of {} runs finished, backlog {} events",
                    backlog.finished, backlog.runs, backlog.acked
                ));
                self.status.publish_consume(
                    self.report(&self.view),
                    self.tally.latency_buckets().clone(),
                    &self.options.topic,
                );
            }
            self.session.pause(HOLD_POLL);
        };
        if let Some(held) = &mut self.held {
            held.ended = Instant::now();
            held.how = how;
            let b = held.backlog;
            tracing::info!(
                runs = b.runs,
                finished = b.finished,
                backlog = b.acked,
                held_s = held.ended.duration_since(self.start).as_secs_f64(),
                "the hold ended: draining a backlog of {} events",
                b.acked
            );
        }
        Ok(how)
    }

    /// The hold and the drain so far (`None` without `--hold-until-done`): the drain runs from
    /// the first assignment to the last record read (while reading: to now).
    pub(super) fn drain(&self) -> Option<Drain> {
        let held = self.held?;
        let assigned = self
            .session
            .events()
            .first_assigned()
            .filter(|_| held.how != HoldEnd::Holding);
        let until = self.last_record.unwrap_or_else(Instant::now);
        let seconds = assigned.map(|at| until.saturating_duration_since(at).as_secs_f64());
        let events = self.tally.consumed();
        Some(Drain {
            held_s: held
                .ended
                .saturating_duration_since(self.start)
                .as_secs_f64(),
            hold_ended: held.how,
            runs: held.backlog.runs,
            runs_finished: held.backlog.finished,
            backlog: held.backlog.acked,
            join_s: assigned.map(|at| at.saturating_duration_since(held.ended).as_secs_f64()),
            events,
            seconds,
            events_per_s: Drain::rate(events, seconds),
            complete: self.drained,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(runs: u64, finished: u64, reported_since_hold: u64) -> Backlog {
        Backlog {
            runs,
            finished,
            acked: 100 * finished,
            reported_since_hold,
        }
    }

    #[test]
    fn the_hold_ends_once_every_announced_run_finished_and_the_history_is_read() {
        let any = Hold::default();
        assert!(any.released(&backlog(2, 2, 0), true));
        // Nothing announced yet is no backlog; a run still going holds.
        assert!(!any.released(&backlog(0, 0, 0), true));
        assert!(!any.released(&backlog(2, 1, 1), true));
        // Earlier reports not read yet may hold a run still going.
        assert!(!any.released(&backlog(2, 2, 0), false));
    }

    #[test]
    fn hold_runs_counts_only_runs_reporting_since_the_hold_began() {
        let two = Hold { runs: Some(2) };
        // Three earlier runs, all finished, and one new: the second new run is still to come.
        assert!(!two.released(&backlog(4, 4, 1), true));
        assert!(two.released(&backlog(5, 5, 2), true));
        assert!(!two.released(&backlog(5, 4, 2), true));
    }
}
