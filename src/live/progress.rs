//! Progress for a person at a terminal: one line, rewritten in place, when stdout is a TTY.
//! Otherwise (logs, pipes, containers) progress goes to the log as plain lines instead.

use std::io::{IsTerminal, Write};

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
