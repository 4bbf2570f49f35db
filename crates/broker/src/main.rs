//! `sluice-broker`: reads the `--config` file (see `config_file`), parses the flags (see
//! `cli`), starts the broker and stops it cleanly on SIGINT or SIGTERM. Logs go to stderr as
//! text (colours only on a terminal, and not with `NO_COLOR`) or JSON lines (`--log-format json`); the level comes from
//! `RUST_LOG` (default `info`, with openraft's internals at `warn`). Once it owns its data
//! directory, the broker logs a banner with its version, node id, listeners and data directory
//! (`node`). A broker that cannot start or fails exits 1 after one line on stderr,
//! `sluice-broker: <reason>` (for example "data directory ./data is locked by process 1234
//! (node 1)", or a config file key that is no setting).
//!
//! `sluice-broker probe ready|health` runs no broker: it asks one's admin listener and exits 0
//! on `200`, else 1 after one line `sluice-broker probe: <reason>` on stderr (see `probe`).

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use sluice_broker::cli::{Args, LogFormat, Subcommand};
use sluice_broker::probe::{self, ProbeArgs};
use sluice_broker::{config_file, run};
use tracing_subscriber::EnvFilter;

/// Log levels when `RUST_LOG` is not set: openraft logs every election and replication step at
/// info, which drowns the broker's own lines.
const LOG_FILTER_DEFAULT: &str = "info,openraft=warn";

fn main() -> ExitCode {
    // Before any thread exists: the file's values become environment variables (see
    // `config_file`), which clap then reads as it reads any `SLUICE_*` variable.
    let from_file = match apply_config_file() {
        Ok(from_file) => from_file,
        Err(reason) => {
            eprintln!("sluice-broker: {reason}");
            return ExitCode::FAILURE;
        }
    };
    let command = Args::command();
    let matches = command.clone().get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    if let Some(Subcommand::Probe(probe_args)) = &args.command {
        return run_probe(probe_args, args.admin_listen);
    }
    if args.print_config {
        let text = config_file::effective(&command, &matches, &from_file);
        return match std::io::stdout().write_all(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("sluice-broker: cannot write the configuration: {error}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(args.log_format);
    let config = args.into_config();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sluice-broker: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One plain line, not a log record: it is what an operator or a supervisor reads.
            eprintln!("sluice-broker: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `sluice-broker probe`: one line on stdout when the broker answers 200, one on stderr when not.
fn run_probe(probe_args: &ProbeArgs, admin_listen: std::net::SocketAddr) -> ExitCode {
    let address = match &probe_args.addr {
        Some(address) => address.clone(),
        None => probe::default_address(admin_listen).to_string(),
    };
    let timeout = std::time::Duration::from_millis(probe_args.timeout_ms);
    match probe::probe(&address, probe_args.check, timeout) {
        Ok((answered_by, status)) => {
            let line = format!("{answered_by}{}: {status}\n", probe_args.check.path());
            // A closed stdout does not make a passing probe fail: the exit status is the answer.
            let _ = std::io::stdout().write_all(line.as_bytes());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("sluice-broker probe: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Sets the environment variables the `--config` file gives (where the environment does not
/// already set them); returns their names, for `--print-config`'s sources.
fn apply_config_file() -> Result<BTreeSet<String>, String> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let Some(path) = config_file::config_path(&args, std::env::var_os("SLUICE_CONFIG")) else {
        return Ok(BTreeSet::new());
    };
    let entries = config_file::read(&path).map_err(|error| error.to_string())?;
    let assignments =
        config_file::environment_from_file(&entries, &Args::command(), |variable| std::env::var_os(variable).is_some())
            .map_err(|reason| format!("config file {}: {reason}", path.display()))?;
    let mut from_file = BTreeSet::new();
    for (variable, value) in assignments {
        // Single-threaded here: no other thread reads the environment yet.
        std::env::set_var(&variable, value);
        from_file.insert(variable);
    }
    Ok(from_file)
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(LOG_FILTER_DEFAULT));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let colours = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colours).init()
        }
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {},
                    _ = terminate.recv() => {},
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the broker");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown requested");
}
