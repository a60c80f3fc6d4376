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

/// The schedule of a run: event `i` is due `i / rate` seconds after `start`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    /// Nanoseconds between two events; `None` for "as fast as possible".
    interval_ns: Option<f64>,
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
        Schedule {
            start,
            interval_ns: (rate > 0.0).then(|| 1e9 / rate),
        }
    }

    /// Offset from the start at which event `i` is due (zero when unpaced).
    pub fn offset(&self, i: u64) -> Duration {
        match self.interval_ns {
            Some(interval) => Duration::from_nanos((i as f64 * interval).round() as u64),
            None => Duration::ZERO,
        }
    }

    /// The instant event `i` is due.
    pub fn due(&self, i: u64) -> Instant {
        self.start + self.offset(i)
    }

    /// How many events are due at `now` (events `0..n`), or `None` when unpaced.
    pub fn due_count(&self, now: Instant) -> Option<u64> {
        let interval = self.interval_ns?;
        let elapsed = now.saturating_duration_since(self.start).as_nanos() as f64;
        let mut n = (elapsed / interval).floor() as u64 + 1;
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

    proptest! {
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
