//! `sluice-broker`: parses the flags (see `cli`), starts the broker and stops it cleanly on
//! SIGINT or SIGTERM. Logs go to stderr (colours only on a terminal), level from `RUST_LOG`
//! (default `info`). A broker that cannot start or fails exits 1 after one line on stderr,
//! `sluice-broker: <reason>` (for example "data directory ./data is locked by process 1234
//! (node 1)").

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use sluice_broker::cli::Args;
use sluice_broker::run;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = Args::parse().into_config();
    match run(config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One plain line, not a log record: it is what an operator or a supervisor reads.
            eprintln!("sluice-broker: {error}");
            ExitCode::FAILURE
        }
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
