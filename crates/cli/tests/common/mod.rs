//! Helpers of the CLI tests: a broker in this process on ephemeral ports, and the compiled
//! `sluice` binary run as a child process (blocking, on a separate thread from the broker's
//! runtime).

#![allow(dead_code)] // each test file uses its own subset

use std::io::Write;
use std::process::{Command, Output, Stdio};

use sluice_broker::{Node, NodeConfig};

/// Runs `sluice --bootstrap <bootstrap> <args>` with `stdin` (closed when `None`).
pub fn sluice(bootstrap: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--bootstrap")
        .arg(bootstrap)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        // A command may stop reading early (a bad line ends `produce`): its exit status and
        // output say what happened, a closed pipe here is not the test's failure.
        match input.write_all(bytes) {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        }
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// [`sluice`] on a blocking thread.
pub async fn run(bootstrap: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let (bootstrap, args, stdin) =
        (bootstrap.to_string(), args.iter().map(|a| a.to_string()).collect::<Vec<_>>(), stdin.map(<[u8]>::to_vec));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sluice(&bootstrap, &args, stdin.as_deref())
    })
    .await
    .unwrap()
}

/// The stdout of a run that must have succeeded.
pub fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A run that failed with `code` and one line on stderr mentioning `contains`.
pub fn one_error_line(output: &Output, code: i32, contains: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.contains(contains), "{stderr:?} should mention {contains:?}");
    assert!(!stderr.contains("backtrace") && !stderr.contains("panicked"), "{stderr}");
}

/// A broker in this process on ephemeral ports with a temporary data directory.
pub struct InProcessBroker {
    pub bootstrap: String,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
    pub data: tempfile::TempDir,
}

impl InProcessBroker {
    pub async fn start() -> InProcessBroker {
        InProcessBroker::start_with(|_| {}).await
    }

    /// A broker whose [`NodeConfig::ephemeral`] configuration `configure` changed first.
    pub async fn start_with(configure: impl FnOnce(&mut NodeConfig)) -> InProcessBroker {
        let data = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::ephemeral(1, data.path());
        configure(&mut config);
        let node = Node::start(config).await.unwrap();
        let bootstrap = node.addresses().kafka.to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            node.serve(async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
        });
        InProcessBroker { bootstrap, stop, served, data }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.served.await.unwrap();
    }
}

/// The stderr of a run, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Sorted lines of a successful run's stdout.
pub fn sorted_lines(output: &Output) -> Vec<String> {
    let mut lines: Vec<String> = stdout(output).lines().map(String::from).collect();
    lines.sort();
    lines
}
