//! Progress for a person at a terminal: one line, rewritten in place, when stdout is a TTY.
//! Otherwise (logs, pipes, containers) progress goes to the log as plain lines instead.

use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Where progress goes.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    tty: bool,
}

impl Progress {
    /// A terminal line when stdout is a terminal, log lines otherwise.
    pub fn detect() -> Self {
        Progress {
            tty: std::io::stdout().is_terminal(),
        }
    }

    /// Whether progress is shown on a terminal line (rather than logged).
    pub fn on_terminal(&self) -> bool {
        self.tty
    }

    /// Rewrites the progress line.
    pub fn show(&self, line: &str) {
        if self.tty {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K{line}");
            let _ = out.flush();
        }
    }

    /// Clears the progress line, before other output.
    pub fn clear(&self) {
        if self.tty {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
    }
}

/// `"  ETA 3m 10s"` for `left` more events at `rate` per second (nothing when the rate is 0 or
/// nothing is left): the tail of a progress line.
pub fn eta(left: u64, rate: f64) -> String {
    if left == 0 || rate <= 0.0 || !rate.is_finite() {
        return String::new();
    }
    eta_in(Duration::from_secs_f64((left as f64 / rate).min(1e9)))
}

/// `"  ETA 3m 10s"` for a time left, to the second.
pub fn eta_in(left: Duration) -> String {
    format!(
        "  ETA {}",
        humantime::format_duration(Duration::from_secs(left.as_secs()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_what_is_left_at_the_rate_to_the_second() {
        assert_eq!(eta(3800, 20.0), "  ETA 3m 10s");
        assert_eq!(eta(1, 1000.0), "  ETA 0s");
        assert_eq!(eta(0, 20.0), "");
        assert_eq!(eta(100, 0.0), "");
        assert_eq!(eta_in(Duration::from_millis(61_900)), "  ETA 1m 1s");
    }
}
