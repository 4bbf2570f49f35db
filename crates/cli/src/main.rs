//! `sluice`: the operator and user command line, over `sluice-client`.
//!
//! `main` stays thin: parse arguments (clap), set up logging, run one command, and turn any
//! error into one line on stderr and a non-zero exit code — no backtrace, no usage dump for a
//! failure that is not about usage. Each command lives in its own module: [`topic`],
//! [`produce`], [`consume`], [`group`], [`cluster`], [`bench`]; [`output`] formats records
//! and tables.
//!
//! Exit codes: 0 success, 1 a failed operation (unreachable broker, unknown topic, a refused
//! request, a group with active members), 2 bad arguments (clap's, and [`UsageError`] for
//! combinations clap cannot check).

mod args;
mod bench;
mod cluster;
mod consume;
mod group;
mod output;
mod produce;
mod topic;

use std::process::ExitCode;

use clap::Parser;
use sluice_client::{ClientConfig, Cluster};

use args::{Cli, Command};

/// Exit code for a failed operation.
const EXIT_FAILURE: u8 = 1;
/// Exit code for bad arguments (clap's convention).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => error.exit(), // --help, --version
        Err(error) => {
            // clap's first paragraph (a message, and for missing arguments their list on the
            // next lines) joined into one line; the usage that follows is left to --help.
            let rendered = error.render().to_string();
            let paragraph: Vec<&str> = rendered
                .lines()
                .skip_while(|line| line.trim().is_empty())
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            let line = if paragraph.is_empty() { "invalid arguments".to_string() } else { paragraph.join(" ") };
            eprintln!("{line} (see --help)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<UsageError>() => {
            eprintln!("error: {error:#} (see --help)");
            ExitCode::from(EXIT_USAGE)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Arguments that parse but do not fit together: exit code 2, like clap's own errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = client_config(&cli);
    match cli.command {
        Command::Topic(command) => topic::run(connect(config).await?, command).await,
        Command::Produce(command) => produce::run(connect(config).await?, command).await,
        Command::Consume(command) => consume::run(connect(config).await?, command).await,
        Command::Group(command) => group::run(connect(config).await?, command).await,
        Command::Cluster(command) => cluster::run(connect(config).await?, command).await,
        Command::Bench(command) => bench::run(config, command).await,
    }
}

fn client_config(cli: &Cli) -> ClientConfig {
    let mut config = ClientConfig::new(&cli.bootstrap);
    config.request_timeout = std::time::Duration::from_millis(cli.request_timeout_ms);
    config.connect_timeout = std::time::Duration::from_millis(cli.connect_timeout_ms);
    config.client_id = "sluice-cli".to_string();
    config
}

/// Connects to the cluster (one attempt per bootstrap server: a CLI should say at once that
/// nothing answers rather than retry for minutes).
pub async fn connect(config: ClientConfig) -> anyhow::Result<Cluster> {
    Ok(Cluster::connect(config).await?)
}
