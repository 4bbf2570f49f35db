//! `sluice-broker probe ready|health` against real broker processes: the exit status and the
//! one line it prints, as Docker's healthcheck and an operator see them.
//!
//! Method: each test spawns the built binary as a broker (see `common::process`) on free ports
//! of 127.0.0.1, then runs the same binary as `probe` against its admin listener, and against
//! a port where nothing listens.

mod common;

use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use common::process::{free_port, BrokerProcess, Ports};

/// Runs `sluice-broker probe ARGS` with `env` (every other `SLUICE_*` variable removed): its
/// exit status, stdout and stderr.
fn run_probe(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice-broker"));
    command.arg("probe").args(args);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SLUICE_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status, text(output.stdout), text(output.stderr))
}

/// Asserts that a probe failed with exit status 1 and exactly one stderr line; returns it.
fn one_failure_line(outcome: (ExitStatus, String, String)) -> String {
    let (status, stdout, stderr) = outcome;
    assert_eq!(status.code(), Some(1), "stdout {stdout:?}, stderr {stderr:?}");
    assert_eq!(stdout, "");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got {stderr:?}");
    lines[0].to_string()
}

// Goal: a ready broker passes `probe ready` and `probe health` (at --addr, and at the
// SLUICE_ADMIN_LISTEN of the environment, 0.0.0.0 asked at 127.0.0.1, as in the image); once
// it has stopped, and on a port nothing listens on, the probe exits 1 with one line naming the
// address. Method: a real broker, probed before and after SIGTERM.
#[tokio::test]
async fn a_ready_broker_passes_and_a_stopped_one_fails_with_one_line() {
    let temp = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let mut broker = BrokerProcess::spawn(1, &temp.path().join("data"), ports, &temp.path().join("broker.log"), &[]);
    broker.wait_ready().await;
    let admin = format!("127.0.0.1:{}", ports.admin);

    let (status, stdout, stderr) = run_probe(&["ready", "--addr", &admin], &[]);
    assert!(status.success(), "{stderr}");
    assert_eq!((stdout.as_str(), stderr.as_str()), (format!("{admin}/ready: 200 OK\n").as_str(), ""));

    let everywhere = format!("0.0.0.0:{}", ports.admin);
    let (status, stdout, stderr) = run_probe(&["health"], &[("SLUICE_ADMIN_LISTEN", &everywhere)]);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, format!("{admin}/health: 200 OK\n"));

    assert!(broker.terminate().await.success(), "{}", broker.log_text());
    let line = one_failure_line(run_probe(&["ready", "--addr", &admin], &[]));
    assert!(line.starts_with(&format!("sluice-broker probe: cannot connect to {admin}: ")), "{line}");

    let closed = format!("127.0.0.1:{}", free_port());
    let line = one_failure_line(run_probe(&["health", "--addr", &closed, "--timeout-ms", "500"], &[]));
    assert!(line.starts_with(&format!("sluice-broker probe: cannot connect to {closed}: ")), "{line}");
}

// Goal: a live broker that cannot serve fails `probe ready` with its first reason while
// `probe health` passes — the split a readiness and a liveness probe rely on. Method: a broker
// whose voter list names a second voter that never starts has no metadata quorum, so it stays
// unready; the probes run once its admin listener answers.
#[tokio::test]
async fn a_live_broker_without_quorum_is_healthy_but_not_ready() {
    let temp = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let voters = format!("1@127.0.0.1:{},2@127.0.0.1:{}", ports.raft, free_port());
    let log = temp.path().join("broker.log");
    let mut broker = BrokerProcess::spawn(1, &temp.path().join("data"), ports, &log, &["--voters", &voters]);
    let admin = format!("127.0.0.1:{}", ports.admin);

    let deadline = Instant::now() + common::process::PROCESS_TIMEOUT;
    loop {
        assert!(broker.child.try_wait().unwrap().is_none(), "broker exited:\n{}", broker.log_text());
        let (status, stdout, _) = run_probe(&["health", "--addr", &admin], &[]);
        if status.success() {
            assert_eq!(stdout, format!("{admin}/health: 200 OK\n"));
            break;
        }
        assert!(Instant::now() < deadline, "admin listener never answered:\n{}", broker.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = one_failure_line(run_probe(&["ready", "--addr", &admin], &[]));
    let expected = format!("sluice-broker probe: {admin}/ready: 503 Service Unavailable: ");
    assert!(line.starts_with(&expected) && line.len() > expected.len(), "a reason must follow: {line}");
}
