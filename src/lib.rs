//! kafka-test-app: put real, checkable traffic through a Kafka cluster.
//!
//! The data path reads straight through: [`cli`] resolves the command line into a
//! [`cli::Plan`] (connection settings from [`kafka_config`] plus a mode), [`producer`] sends
//! [`event`]s paced by [`rate`], [`consumer`] feeds what it reads into a [`tally`], and [`report`]
//! prints the verdict. [`run`] ties them together for `main`.

pub mod against;
pub mod cli;
pub mod client_events;
pub mod consumer;
pub mod control;
pub mod demo;
pub mod error;
pub mod event;
pub mod http;
pub mod judge;
pub mod kafka_config;
pub mod member;
pub mod origin;
pub mod producer;
pub mod progress;
pub mod ranges;
pub mod rate;
pub mod reader;
pub mod report;
pub mod status;
pub mod tally;
pub mod topic;
pub mod verdict;
pub mod verify;

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

pub use error::{Error, ExitCode, Result};

use cli::{Mode, Plan};
use report::OutputFormat;
use status::Status;

/// Runs a plan to completion (or until `shutdown`), prints its final report on stdout, and
/// returns the exit code its verdict calls for.
pub async fn run(plan: Plan, shutdown: CancellationToken) -> Result<ExitCode> {
    let handle = Handle::current();
    let status = Arc::new(Status::default());
    if let Some(addr) = plan.http_addr {
        http::serve(addr, status.clone(), shutdown.clone()).await?;
    }
    let blocking = move || -> Result<ExitCode> {
        match plan.mode {
            Mode::Produce(options, output) => {
                let report =
                    producer::produce(&handle, &plan.settings, &options, &status, &shutdown)?;
                print_report(output, &report, report::produce_text);
                Ok(report.verdict.exit_code())
            }
            Mode::Consume(options) => {
                let report =
                    consumer::consume(&handle, &plan.settings, &options, &status, &shutdown)?;
                print_report(options.output, &report, report::consume_text);
                Ok(report.verdict.exit_code())
            }
            Mode::Verify(options) => {
                let report = verify::verify(&plan.settings, &options, &shutdown)?;
                print_report(options.output, &report, verify::text);
                Ok(report.verdict.exit_code())
            }
            Mode::Demo(output) => demo::run(&handle, output, &status, &shutdown),
        }
    };
    tokio::task::spawn_blocking(blocking)
        .await
        .expect("the worker thread does not panic")
}

/// Prints a final report on stdout in the chosen format.
pub fn print_report<T: serde::Serialize>(output: OutputFormat, report: &T, text: fn(&T) -> String) {
    match output {
        OutputFormat::Text => print!("{}", text(report)),
        OutputFormat::Json => println!("{}", report::to_json(report)),
    }
}
