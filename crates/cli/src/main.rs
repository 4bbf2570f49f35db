//! `sluice`: the operator and user command line, over `sluice-client`.
//!
//! `main` stays thin: parse arguments (clap), set up logging, run one command, and turn any
//! error into one line on stderr and a non-zero exit code — no backtrace, no usage dump for a
//! failure that is not about usage. Each command lives in its own module: [`topic`],
//! [`produce`], [`consume`], [`group`], [`cluster`], [`quota`], [`user`], [`acl`], [`bench`];
//! [`output`] formats records and tables.
//!
//! Exit codes: 0 success, 1 a failed operation (unreachable broker, unknown topic, a refused
//! request, a group with active members, an unhealthy cluster), 2 bad arguments (clap's, and
//! [`UsageError`] for combinations clap cannot check). A closed stdout (`sluice ... | head`)
//! ends the command quietly with 0, as for any Unix filter.

mod acl;
mod args;
mod bench;
mod cluster;
mod consume;
mod group;
mod line_format;
mod output;
mod position;
mod produce;
mod progress;
mod quota;
mod racks;
mod reassign;
mod rebalance;
mod topic;
mod user;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use sluice_client::{ClientConfig, Cluster, SaslCredentials};

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
            eprintln!("{} (see --help)", one_line(&error.render().to_string()));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let default_filter = match cli.verbose {
        0 => "warn",
        1 => "info,sluice=debug,sluice_client=debug",
        _ => "debug,sluice=trace,sluice_client=trace",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
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
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) if error.is::<Unhealthy>() => ExitCode::from(EXIT_FAILURE),
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

/// clap's first paragraph (a message, and for missing arguments their list on the next lines)
/// and its tips ("a similar subcommand exists: 'list'") joined into one line; the usage that
/// follows is left to --help.
fn one_line(rendered: &str) -> String {
    let paragraph = rendered
        .lines()
        .skip_while(|line| line.trim().is_empty())
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim);
    let tips = rendered.lines().map(str::trim).filter(|line| line.starts_with("tip:"));
    let mut parts: Vec<&str> = paragraph.collect();
    parts.extend(tips.filter(|tip| !parts.contains(tip)).collect::<Vec<_>>());
    if parts.is_empty() {
        return "invalid arguments".to_string();
    }
    parts.join(" ")
}

/// Whether `error` is stdout closed by its reader (`| head`): not a failure.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `cluster health` found the cluster unhealthy: exit code 1, the reasons already printed.
#[derive(Debug)]
pub struct Unhealthy;

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("the cluster is unhealthy")
    }
}

impl std::error::Error for Unhealthy {}

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
        Command::Cluster(command) => cluster::run(config, command).await,
        Command::Quota(command) => quota::run(connect(config).await?, command).await,
        Command::Bench(command) => bench::run(config, command).await,
        Command::User(command) => user::run(connect(config).await?, command).await,
        Command::Acl(command) => acl::run(config, command).await,
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics on a failed write (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut script);
            std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
            Ok(())
        }
    }
}

fn client_config(cli: &Cli) -> ClientConfig {
    let mut config = ClientConfig::new(&cli.bootstrap);
    config.request_timeout = std::time::Duration::from_millis(cli.request_timeout_ms);
    config.connect_timeout = std::time::Duration::from_millis(cli.connect_timeout_ms);
    config.client_id = "sluice-cli".to_string();
    if let (Some(mechanism), Some(username)) = (cli.sasl_mechanism, &cli.sasl_username) {
        config.sasl = Some(SaslCredentials {
            mechanism,
            username: username.clone(),
            password: cli.sasl_password.clone().unwrap_or_default(),
        });
    }
    if let Some(ca) = &cli.tls_ca {
        config.tls = Some(sluice_client::TlsSettings {
            ca: ca.clone(),
            certificate: cli.tls_certificate.clone(),
            key: cli.tls_key.clone(),
        });
    }
    config
}

/// Connects to the cluster (one attempt per bootstrap server: a CLI should say at once that
/// nothing answers rather than retry for minutes).
pub async fn connect(config: ClientConfig) -> anyhow::Result<Cluster> {
    Ok(Cluster::connect(config).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_become_one_line_with_their_tips() {
        let error = Cli::try_parse_from(["sluice", "topic", "lst"]).unwrap_err();
        let line = one_line(&error.render().to_string());
        assert!(line.contains("'lst'") && line.contains("tip: a similar subcommand exists: 'list'"), "{line}");
        assert!(!line.contains('\n'));
    }
}
