//! kafka-test-app: put real, checkable traffic through a Kafka cluster.
//!
//! The data path reads straight through, one folder a step:
//!
//! ```text
//! cli ──► Plan ──► produce ──► (Kafka) ──► consume / verify ──► tally ──► verdict ──► report
//!                    │                          ▲
//!                    └──── wire (event, run header, control records) ────┘
//! kafka: librdkafka plumbing under all of them; live: status, HTTP, progress while running.
//! ```
//!
//! `cli` resolves the command line into a [`Plan`] (connection settings plus a mode);
//! `produce` sends [`event`]s paced by its schedule; `consume` and `verify` feed what they read
//! into a [`Tally`]; `verdict` judges it ([`Anomalies`], [`Verdict`]); `report` prints it.
//! [`run`] ties them together for `main`, with one connection session per command
//! (`kafka::session`: every client of the run is made there and every connection error worded
//! there).

mod cli;
mod consume;
mod demo;
mod error;
mod kafka;
mod live;
mod produce;
mod report;
mod tally;
mod verdict;
mod verify;
mod wire;

pub use cli::{legacy_flag_beside_subcommand, Cli, LogFormat, Plan};
pub use error::{Error, ExitCode, Result};
pub use kafka::config::{parse_override, Override};
pub use tally::Tally;
pub use verdict::{Anomalies, Verdict};
/// The wire contract, for other clients and tests: the event's bytes and identity, the run
/// header, the control topic's records.
pub use wire::{control, event, RUN_HEADER};

/// What the integration tests need of the internals, and nothing else: a connection, a
/// whole-topic reader, the origin this host stamps.
pub mod testing {
    pub use crate::kafka::config::ConnectionSettings;
    pub use crate::produce::origin::detect as detect_origin;

    /// Calls `each` for every record of `topic` (the library's own whole-topic reader, as
    /// `verify` reads), from the start of each partition to its end; `false` if there is no such
    /// topic, an error once `shutdown` is cancelled. Runs on a runtime of its own.
    pub fn read_to_end(
        settings: &ConnectionSettings,
        topic: &str,
        shutdown: &tokio_util::sync::CancellationToken,
        each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
    ) -> crate::Result<bool> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the reader");
        let session = crate::kafka::session::Session::new(
            settings,
            runtime.handle().clone(),
            shutdown.clone(),
        )?;
        crate::kafka::reader::read_to_end(&session, topic, each)
    }
}

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use cli::Mode;
use kafka::session::Session;
use live::status::Status;
use report::OutputFormat;

/// Runs a plan to completion (or until `shutdown`), prints its final report on stdout, and
/// returns the exit code its verdict calls for.
pub async fn run(plan: Plan, shutdown: CancellationToken) -> Result<ExitCode> {
    let handle = Handle::current();
    let status = Arc::new(Status::default());
    // Opened before the run, so a path that cannot be written fails start-up, not the end.
    let html = plan.html.as_deref().map(HtmlFile::create).transpose()?;
    if let Some(addr) = plan.http_addr {
        live::http::serve(addr, status.clone(), shutdown.clone()).await?;
    }
    let blocking = move || -> Result<ExitCode> {
        let session = || Session::new(&plan.settings, handle.clone(), shutdown.clone());
        match plan.mode {
            Mode::Produce(options, output) => {
                let report = produce::produce(&session()?, &options, &status)?;
                print_report(output, &report, report::produce_text);
                Ok(report.verdict.exit_code())
            }
            Mode::Consume(options) => {
                let report = consume::consume(&session()?, &options, &status)?;
                print_report(options.output, &report, report::consume_text);
                if let Some(file) = html {
                    file.write(&report::consume_page(&report, &options.topic))?;
                }
                Ok(report.verdict.exit_code())
            }
            Mode::Verify(options) => {
                let report = verify::verify(&session()?, &options)?;
                print_report(options.output, &report, verify::text);
                if let Some(file) = html {
                    file.write(&verify::page(&report))?;
                }
                Ok(report.verdict.exit_code())
            }
            Mode::Demo(output) => demo::run(&handle, output, &status, &shutdown),
        }
    };
    tokio::task::spawn_blocking(blocking)
        .await
        .expect("the worker thread does not panic")
}

/// The `--html` file, opened (created or emptied) before the run.
struct HtmlFile {
    path: std::path::PathBuf,
    file: std::fs::File,
}

impl HtmlFile {
    fn create(path: &std::path::Path) -> Result<Self> {
        let file = std::fs::File::create(path).map_err(|e| {
            Error::Usage(format!(
                "cannot write the HTML report to {} (--html): {e}",
                path.display()
            ))
        })?;
        Ok(HtmlFile {
            path: path.to_owned(),
            file,
        })
    }

    /// Writes the page; a failure (a full disk) is an error of its own after the report.
    fn write(mut self, page: &report::html::Page) -> Result<()> {
        use std::io::Write as _;
        self.file
            .write_all(report::html::document(page, false).as_bytes())
            .map_err(|e| {
                Error::Usage(format!(
                    "cannot write the HTML report to {} (--html): {e}",
                    self.path.display()
                ))
            })
    }
}

/// Prints a final report on stdout in the chosen format.
pub fn print_report<T: serde::Serialize>(output: OutputFormat, report: &T, text: fn(&T) -> String) {
    match output {
        OutputFormat::Text => print!("{}", text(report)),
        OutputFormat::Json => println!("{}", report::to_json(report)),
    }
}
