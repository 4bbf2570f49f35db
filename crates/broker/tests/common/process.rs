//! `sluice-broker` as a real process: the built binary on free ports of 127.0.0.1, its stderr
//! captured in a file, killed when dropped (or stopped with SIGTERM).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Time a broker process may take to start, answer `/ready`, or stop.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

/// A free port on 127.0.0.1 (bound, read, released: another process could take it before the
/// broker binds it, which a test would see as a bind failure, not as a wrong result).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The three listeners of one broker.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Kafka.
    pub kafka: u16,
    /// Raft.
    pub raft: u16,
    /// Admin HTTP.
    pub admin: u16,
}

impl Ports {
    /// Three free ports.
    pub fn free() -> Ports {
        Ports { kafka: free_port(), raft: free_port(), admin: free_port() }
    }

    /// The Kafka address.
    pub fn kafka_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.kafka))
    }

    /// The admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.admin))
    }
}

/// A running `sluice-broker` process.
pub struct BrokerProcess {
    /// The child.
    pub child: Child,
    /// Its listeners.
    pub ports: Ports,
    /// The file its stderr (its log) goes to.
    pub log: PathBuf,
}

impl BrokerProcess {
    /// Starts `sluice-broker --node-id <node_id> --data-dir <data_dir>` on `ports` with
    /// `extra` flags; its stderr goes to `log`.
    pub fn spawn(node_id: i32, data_dir: &Path, ports: Ports, log: &Path, extra: &[&str]) -> BrokerProcess {
        BrokerProcess::spawn_with_log_filter(node_id, data_dir, ports, log, extra, Some("info"))
    }

    /// [`BrokerProcess::spawn`] with `RUST_LOG` set to `filter`, or unset (the broker's own
    /// default levels) for `None`.
    pub fn spawn_with_log_filter(
        node_id: i32,
        data_dir: &Path,
        ports: Ports,
        log: &Path,
        extra: &[&str],
        filter: Option<&str>,
    ) -> BrokerProcess {
        let stderr = std::fs::File::create(log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice-broker"));
        match filter {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        let child = command
            .args(["--node-id", &node_id.to_string(), "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{}", ports.kafka)])
            .args(["--raft-listen", &format!("127.0.0.1:{}", ports.raft)])
            .args(["--admin-listen", &format!("127.0.0.1:{}", ports.admin)])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        BrokerProcess { child, ports, log: log.to_path_buf() }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `/ready` answers 200; panics with the log after [`PROCESS_TIMEOUT`].
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("broker exited with {status} before it was ready:\n{}", self.log_text());
            }
            if http_get(self.ports.admin_addr(), "/ready").await.is_some_and(|(status, _)| status == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "broker not ready in time:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit by itself.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "broker did not exit in time:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the broker with SIGTERM, as a supervisor does, and waits for it to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM failed");
        self.wait_exit().await
    }

    /// What the broker has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on an admin listener: (status code, body), or `None` if nothing answered.
pub async fn http_get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.ok()?;
        let status = answer.split_whitespace().nth(1)?.parse().ok()?;
        let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange).await.ok().flatten()
}
