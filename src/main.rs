//! The `kafka-test-app` binary: parse the command line, install signal handling and logging, run,
//! and turn the outcome into a documented exit code (0 pass, 1 fail, 2 usage/connection/auth,
//! 3 incomplete, 4 behind).

use std::process::ExitCode as ProcessExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use kafka_test_app::{Cli, Error, ExitCode, LogFormat};
use tokio_util::sync::CancellationToken;

fn main() -> ProcessExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    if let Some(error) = kafka_test_app::legacy_flag_beside_subcommand(&matches) {
        eprintln!("kafka-test-app: error: {error}");
        return error.exit_code().into();
    }
    init_logging(cli.log_format);
    if matches.value_source("password") == Some(ValueSource::CommandLine) {
        tracing::warn!(
            "the password was given on the command line, where other users of this machine can \
             read it; prefer the KTA_PASSWORD environment variable"
        );
    }
    if matches.value_source("overrides") == Some(ValueSource::CommandLine) {
        let secrets = (cli.connection.overrides.iter())
            .filter_map(|arg| kafka_test_app::parse_override(arg).ok())
            .filter(kafka_test_app::Override::is_secret);
        for secret in secrets {
            tracing::warn!(
                "-X {} was given on the command line, where other users of this machine can \
                 read it; prefer the KTA_X environment variable",
                secret.key
            );
        }
    }
    match try_main(cli) {
        Ok(code) => code.into(),
        Err(error) => {
            eprintln!("kafka-test-app: error: {error}");
            error.exit_code().into()
        }
    }
}

fn try_main(cli: Cli) -> Result<ExitCode, Error> {
    let plan = cli.plan()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        kafka_test_app::run(plan, shutdown).await
    })
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    tracing::info!("{name} received: stopping and reporting");
    shutdown.cancel();
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // librdkafka's own log lines repeat what its error events already tell us (and what we turn
    // into one error line), so they stay off unless KTA_LOG names them, e.g. `librdkafka=debug`.
    let mut directives = std::env::var("KTA_LOG").unwrap_or_else(|_| "info".to_owned());
    if !directives.contains("librdkafka") {
        directives.push_str(",librdkafka=off");
    }
    // The rdkafka crate's consumer destructor closes the consumer queue again after the consumer
    // module has closed it within its deadline (consumer::close), and logs the second close's
    // "Broker handle destroyed" as an error: noise after a clean shutdown, kept off unless KTA_LOG
    // names the module.
    if !directives.contains("rdkafka::") {
        directives.push_str(",rdkafka::consumer::base_consumer=off");
    }
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal only; pipes, files and log collectors get plain text.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
