//! Pacing: when each event is due.
//!
//! Event `i` of a run is due at `start + i / rate`. The producer sends every event whose time has
//! come and then waits for the next one, so the achieved rate is exact over any window (no drift:
//! a late wake-up is made up by the next sends) and events are spread evenly through each second
//! rather than released a second's worth at a time. Because every event has a *scheduled* time,
//! latency can be measured from it, so a stalled broker shows up in the percentiles instead of
//! quietly lowering the rate (no coordinated omission).
//!
//! This is why pacing is not a token bucket such as `governor`: a GCRA limiter answers "may I send
//! now?", but not "when was this event due?", and with a burst of one it loses every late wake-up
//! (at 100 000/s a 60 µs timer slack alone would cost more than the 1 % error budget).

use std::time::{Duration, Instant};

/// One phase of a paced run: a rate that holds, or changes linearly, for a while.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Events per second when the phase begins.
    pub from: f64,
    /// Events per second when it ends (`from` for a steady phase).
    pub to: f64,
    /// How long it lasts; `None` (the last phase only): until the run is stopped.
    pub duration: Option<Duration>,
}

impl Phase {
    /// A steady `rate` for `duration`.
    pub fn steady(rate: f64, duration: Option<Duration>) -> Self {
        Phase {
            from: rate,
            to: rate,
            duration,
        }
    }
}

/// A phase as the schedule computes with it.
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// When it begins, nanoseconds after the start.
    start_ns: f64,
    /// How long it lasts, nanoseconds (infinite for an open last phase).
    length_ns: f64,
    /// Events due before it begins: the integral of the rate so far (not a whole number).
    before: f64,
    /// Rate at its beginning, events per nanosecond.
    from: f64,
    /// Change of the rate, events per nanosecond per nanosecond.
    slope: f64,
}

impl Piece {
    /// Events due in this piece by `x` nanoseconds into it (the integral of its rate).
    fn count_at(&self, x: f64) -> f64 {
        self.from * x + self.slope * x * x / 2.0
    }

    /// Nanoseconds into this piece at which the `k`-th event since its beginning (`k` not a whole
    /// number in general) is due: the solution of `count_at(x) = k`.
    fn time_of(&self, k: f64) -> f64 {
        if k <= 0.0 {
            return 0.0;
        }
        if self.slope == 0.0 {
            return k / self.from;
        }
        // The root of slope/2 x² + from x - k = 0, in the form that loses no precision when
        // the slope is small.
        let root = (self.from * self.from + 2.0 * self.slope * k)
            .max(0.0)
            .sqrt();
        2.0 * k / (self.from + root)
    }
}

/// The schedule of a run: phases one after another, each event due at the exact time the
/// integral of the rate reaches its index. For one steady rate, event `i` is due `i / rate`
/// seconds after `start`.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    /// The phases, in order; empty for "as fast as possible".
    pieces: Vec<Piece>,
}

impl Schedule {
    /// A schedule of `rate` events per second from `start`; a rate of 0 means unpaced.
    ///
    /// # Panics
    /// If `rate` is negative or not finite (the CLI rejects those).
    pub fn new(start: Instant, rate: f64) -> Self {
        assert!(
            rate.is_finite() && rate >= 0.0,
            "rate must be finite and >= 0"
        );
        if rate == 0.0 {
            return Schedule {
                start,
                pieces: Vec::new(),
            };
        }
        Schedule::phased(start, &[Phase::steady(rate, None)])
    }

    /// A schedule of `phases` one after another from `start`.
    ///
    /// # Panics
    /// If there are no phases, a rate is negative or not finite, a phase other than the last is
    /// open-ended, or a phase has a rate of 0 throughout (the CLI rejects those).
    pub fn phased(start: Instant, phases: &[Phase]) -> Self {
        assert!(!phases.is_empty(), "a phased schedule has phases");
        let mut pieces = Vec::with_capacity(phases.len());
        let (mut start_ns, mut before) = (0.0, 0.0);
        for (i, phase) in phases.iter().enumerate() {
            assert!(
                [phase.from, phase.to]
                    .iter()
                    .all(|r| r.is_finite() && *r >= 0.0)
                    && phase.from.max(phase.to) > 0.0,
                "rates must be finite, >= 0 and not both 0"
            );
            assert!(
                phase.duration.is_some() || i + 1 == phases.len(),
                "only the last phase is open-ended"
            );
            let length_ns = phase
                .duration
                .map_or(f64::INFINITY, |d| d.as_nanos() as f64);
            let piece = Piece {
                start_ns,
                length_ns,
                before,
                from: phase.from / 1e9,
                slope: if length_ns.is_finite() {
                    (phase.to - phase.from) / 1e9 / length_ns
                } else {
                    0.0
                },
            };
            pieces.push(piece);
            start_ns += length_ns;
            before += piece.count_at(length_ns);
        }
        Schedule { start, pieces }
    }

    /// Whether events are paced (not "as fast as possible").
    pub fn is_paced(&self) -> bool {
        !self.pieces.is_empty()
    }

    /// The index of the phase event `i` is due in (0 when unpaced).
    pub fn phase_of(&self, i: u64) -> usize {
        // The last piece that begins at or before event i: pieces that hold no event begin at
        // the same count as the next one and are skipped over.
        self.pieces
            .partition_point(|p| p.before <= i as f64)
            .saturating_sub(1)
    }

    /// Offset from the start at which event `i` is due (zero when unpaced).
    pub fn offset(&self, i: u64) -> Duration {
        let Some(piece) = self.pieces.get(self.phase_of(i)) else {
            return Duration::ZERO;
        };
        let x = piece.time_of(i as f64 - piece.before);
        Duration::from_nanos((piece.start_ns + x).round() as u64)
    }

    /// The instant event `i` is due.
    pub fn due(&self, i: u64) -> Instant {
        self.start + self.offset(i)
    }

    /// How many events are due at `now` (events `0..n`), or `None` when unpaced.
    pub fn due_count(&self, now: Instant) -> Option<u64> {
        if self.pieces.is_empty() {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.start).as_nanos() as f64;
        let index = self
            .pieces
            .partition_point(|p| p.start_ns <= elapsed)
            .saturating_sub(1);
        let piece = &self.pieces[index];
        let into = (elapsed - piece.start_ns).min(piece.length_ns);
        let estimate = piece.before + piece.count_at(into);
        let mut n = estimate.floor().min(u64::MAX as f64 / 2.0) as u64 + 1;
        // Correct floating-point rounding at the boundary so that due_count agrees with due().
        while n > 0 && self.due(n - 1) > now {
            n -= 1;
        }
        while self.due(n) <= now {
            n += 1;
        }
        Some(n)
    }

    /// Number of events a run of `duration` holds: those due strictly before its end.
    pub fn events_within(&self, duration: Duration) -> Option<u64> {
        let end = self.start + duration;
        self.due_count(end).map(|n| {
            // due_count counts events due at or before `end`; the run ends just before it.
            if n > 0 && self.due(n - 1) == end {
                n - 1
            } else {
                n
            }
        })
    }

    /// How long all the phases last (`None`: open-ended, or unpaced).
    pub fn length(&self) -> Option<Duration> {
        let last = self.pieces.last()?;
        let end = last.start_ns + last.length_ns;
        end.is_finite()
            .then(|| Duration::from_nanos(end.round() as u64))
    }

    /// Number of events the whole schedule holds (`None`: open-ended, or unpaced).
    pub fn events(&self) -> Option<u64> {
        self.events_within(self.length()?)
    }

    /// When phase `index` begins, after the start.
    pub fn phase_start(&self, index: usize) -> Duration {
        self.pieces.get(index).map_or(Duration::ZERO, |p| {
            Duration::from_nanos(p.start_ns.round() as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn events_are_evenly_spaced() {
        let start = Instant::now();
        let schedule = Schedule::new(start, 1000.0);
        assert_eq!(schedule.offset(0), Duration::ZERO);
        assert_eq!(schedule.offset(1), Duration::from_millis(1));
        assert_eq!(schedule.offset(10_000), Duration::from_secs(10));
        let two_per_second = Schedule::new(start, 2.0);
        assert_eq!(two_per_second.offset(3), Duration::from_millis(1500));
    }

    #[test]
    fn a_duration_holds_rate_times_seconds_events() {
        let start = Instant::now();
        let at = |rate: f64, secs: u64| {
            Schedule::new(start, rate)
                .events_within(Duration::from_secs(secs))
                .unwrap()
        };
        assert_eq!(at(1000.0, 10), 10_000);
        assert_eq!(at(2.0, 10), 20);
        assert_eq!(at(100_000.0, 20), 2_000_000);
        assert_eq!(at(3.0, 1), 3);
        assert_eq!(at(0.5, 10), 5);
    }

    #[test]
    fn unpaced_schedule_is_always_due() {
        let start = Instant::now();
        let schedule = Schedule::new(start, 0.0);
        assert_eq!(schedule.due_count(start), None);
        assert_eq!(schedule.due(1_000_000), start);
    }

    #[test]
    fn no_window_of_one_second_holds_more_than_rate_events() {
        // "Without bursts": whatever second you look at, at most ceil(rate) events are due in it.
        let start = Instant::now();
        for rate in [1.0, 7.0, 1000.0, 33_333.0, 100_000.0] {
            let schedule = Schedule::new(start, rate);
            for k in [0u64, 1, 17, 123] {
                let from = start + Duration::from_millis(k * 37);
                let before = schedule.due_count(from - Duration::from_nanos(1)).unwrap();
                let after = schedule
                    .due_count(from + Duration::from_secs(1) - Duration::from_nanos(1))
                    .unwrap();
                assert!(
                    after - before <= rate.ceil() as u64,
                    "rate {rate}: {} in one second",
                    after - before
                );
            }
        }
    }

    #[test]
    fn steps_hold_rate_times_duration_events_each() {
        let start = Instant::now();
        let schedule = Schedule::phased(
            start,
            &[
                Phase::steady(200.0, Some(Duration::from_secs(2))),
                Phase::steady(500.0, Some(Duration::from_secs(1))),
                Phase::steady(3.0, Some(Duration::from_millis(1500))),
            ],
        );
        assert_eq!(schedule.events(), Some(400 + 500 + 5));
        assert_eq!(schedule.length(), Some(Duration::from_millis(4500)));
        // Exact due times: the first step's interval, then the second's from its start.
        assert_eq!(schedule.offset(1), Duration::from_millis(5));
        assert_eq!(schedule.offset(399), Duration::from_millis(1995));
        assert_eq!(schedule.offset(400), Duration::from_secs(2));
        assert_eq!(schedule.offset(401), Duration::from_millis(2002));
        assert_eq!(schedule.offset(900), Duration::from_secs(3));
        assert_eq!(schedule.offset(904), Duration::from_nanos(4_333_333_333));
        let phases: Vec<usize> = [0, 399, 400, 899, 900, 904]
            .iter()
            .map(|&i| schedule.phase_of(i))
            .collect();
        assert_eq!(phases, [0, 0, 1, 1, 2, 2]);
        assert_eq!(schedule.phase_start(2), Duration::from_secs(3));
    }

    #[test]
    fn a_ramp_is_due_where_the_integral_of_its_rate_reaches_each_event() {
        let start = Instant::now();
        // 0 to 1000/s over 10 s: the rate is 100 t, so n(t) = 50 t², and event i is due at
        // sqrt(i / 50) seconds.
        let ramp = Schedule::phased(
            start,
            &[Phase {
                from: 0.0,
                to: 1000.0,
                duration: Some(Duration::from_secs(10)),
            }],
        );
        assert_eq!(ramp.events(), Some(5000));
        assert_eq!(ramp.offset(0), Duration::ZERO);
        assert_eq!(ramp.offset(50), Duration::from_secs(1));
        assert_eq!(ramp.offset(200), Duration::from_secs(2));
        assert_eq!(ramp.offset(4050), Duration::from_secs(9));
        // Down: 300/s to 100/s over 2 s holds 400 events; the first second 250.
        let down = Schedule::phased(
            start,
            &[Phase {
                from: 300.0,
                to: 100.0,
                duration: Some(Duration::from_secs(2)),
            }],
        );
        assert_eq!(down.events(), Some(400));
        assert_eq!(down.offset(250), Duration::from_secs(1));
        assert_eq!(down.events_within(Duration::from_secs(1)), Some(250));
    }

    #[test]
    fn one_steady_phase_is_the_plain_rate() {
        let start = Instant::now();
        let plain = Schedule::new(start, 333.0);
        let phased = Schedule::phased(start, &[Phase::steady(333.0, None)]);
        for i in [0, 1, 332, 333, 100_000] {
            assert_eq!(plain.offset(i), phased.offset(i));
        }
        assert_eq!(plain.events(), None);
        assert!(!Schedule::new(start, 0.0).is_paced());
    }

    fn phase() -> impl Strategy<Value = Phase> {
        (0.0f64..5000.0, 0.0f64..5000.0, 1u64..5_000_000_000).prop_filter_map(
            "not 0 throughout",
            |(from, to, nanos)| {
                (from.max(to) > 0.5).then_some(Phase {
                    from,
                    to,
                    duration: Some(Duration::from_nanos(nanos)),
                })
            },
        )
    }

    proptest! {
        #[test]
        fn phased_due_times_rise_and_agree_with_due_count(
            phases in proptest::collection::vec(phase(), 1..5),
            nanos in 0u64..20_000_000_000,
        ) {
            let start = Instant::now();
            let schedule = Schedule::phased(start, &phases);
            let now = start + Duration::from_nanos(nanos);
            let n = schedule.due_count(now).unwrap();
            prop_assert!(n == 0 || schedule.due(n - 1) <= now);
            prop_assert!(schedule.due(n) > now);
            let total = schedule.events().unwrap();
            for i in 1..total.min(2000) {
                prop_assert!(schedule.offset(i) >= schedule.offset(i - 1));
                prop_assert!(schedule.phase_of(i) >= schedule.phase_of(i - 1));
            }
            // Every event of the schedule is due within it, and each phase's events within it.
            if total > 0 {
                prop_assert!(schedule.offset(total - 1) < schedule.length().unwrap());
                let i = total - 1;
                prop_assert!(schedule.offset(i) >= schedule.phase_start(schedule.phase_of(i)));
            }
        }

        #[test]
        fn due_count_agrees_with_due(rate in 0.1f64..200_000.0, nanos in 0u64..50_000_000_000) {
            let start = Instant::now();
            let schedule = Schedule::new(start, rate);
            let now = start + Duration::from_nanos(nanos);
            let n = schedule.due_count(now).unwrap();
            prop_assert!(n >= 1);
            prop_assert!(schedule.due(n - 1) <= now);
            prop_assert!(schedule.due(n) > now);
        }
    }
}
