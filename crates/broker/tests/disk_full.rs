//! A full disk is survived (issue 18): a broker whose data directory fills up refuses appends
//! with KAFKA_STORAGE_ERROR while it keeps serving reads, its metadata Raft node stalls
//! instead of stopping, `/ready` says 503 and why, and when space is freed produce,
//! CreateTopics and InitProducerId work again without a restart — with nothing that was
//! acknowledged lost, and the condition logged once per episode.
//!
//! Method: the broker (`common::TestBroker`, in this process) keeps its data on a small tmpfs
//! mounted for the test (we run as root in CI; without permission to mount the test prints one
//! line and passes). A ballast file fills the tmpfs but for a few MiB; 64 KiB batches are
//! produced until one is refused; the ballast is topped up so that the metadata log's next
//! page cannot be allocated either; then the ballast is deleted. Log lines are captured by a
//! tracing subscriber installed for this test binary.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::process::http_get;
use common::wire::{batch_of, create_topic, init_producer_id, produce, read_all};
use common::TestBroker;
use sluice_broker::{kafka_code, NodeConfig};

/// Size of the tmpfs: room for the broker's files, the ballast and the produced data.
const TMPFS_BYTES: u64 = 32 * 1024 * 1024;
/// Space the ballast leaves free at first, filled by produced batches.
const FREE_AFTER_BALLAST_BYTES: u64 = 3 * 1024 * 1024;
/// Value size of each produced batch (one record).
const VALUE_BYTES: usize = 64 * 1024;
/// How long the broker may take to notice that space is back (maintenance runs every second,
/// the Raft log writer retries at most every 2 s).
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, bytes: u64) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(Tmpfs { path: path.to_path_buf() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Appends zeros to `path` until the file system says it is full; returns the file's length.
fn fill_until_full(path: &Path) -> u64 {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if sluice_log::is_out_of_space(&error) => break,
            Err(error) => panic!("filling {}: {error}", path.display()),
        }
    }
    // Smaller writes take the last partial page.
    loop {
        match file.write(&[0u8; 512]) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    file.metadata().unwrap().len()
}

/// Log output captured for the whole test binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install() -> Captured {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).init();
        captured
    }

    fn lines_containing(&self, text: &str) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes).lines().filter(|line| line.contains(text)).map(str::to_string).collect()
    }
}

/// Polls `/ready` until `check` accepts (status, body); panics after `timeout`.
async fn wait_ready_state(admin: std::net::SocketAddr, timeout: Duration, check: impl Fn(u16, &str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((status, body)) = http_get(admin, "/ready").await {
            if check(status, &body) {
                return body;
            }
            assert!(Instant::now() < deadline, "/ready stayed {status}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// Goal and method: see the file's documentation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_appends_and_everything_resumes_when_space_returns() {
    let temp = tempfile::tempdir().unwrap();
    let tmpfs = match Tmpfs::mount(&temp.path().join("disk"), TMPFS_BYTES) {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            eprintln!("skipped: cannot mount a tmpfs here ({reason})");
            return;
        }
    };
    let logs = Captured::install();
    let started = Instant::now();
    let broker = TestBroker::start_config(NodeConfig::ephemeral(1, tmpfs.path.join("data"))).await;
    let mut stream = broker.connect().await;
    assert_eq!(create_topic(&mut stream, "full", 1).await, 0);

    // Fill the disk: a ballast leaves a few MiB, produced batches take them.
    let ballast = tmpfs.path.join("ballast");
    let ballast_len = fill_until_full(&ballast);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ballast)
        .unwrap()
        .set_len(ballast_len - FREE_AFTER_BALLAST_BYTES)
        .unwrap();
    let mut acknowledged: Vec<(i64, Bytes)> = Vec::new();
    let refused = loop {
        let value = vec![acknowledged.len() as u8; VALUE_BYTES];
        let (error, offset) = produce(&mut stream, "full", 0, batch_of(std::slice::from_ref(&value))).await;
        if error != 0 {
            break error;
        }
        acknowledged.push((offset, Bytes::from(value)));
        assert!(acknowledged.len() < 1_000, "the disk never filled");
    };
    assert_eq!(refused, kafka_code::KAFKA_STORAGE_ERROR);
    assert!(!acknowledged.is_empty());
    fill_until_full(&ballast);

    // Full: appends refused, reads served, metadata writes stall, /ready says why.
    let (error, _) = produce(&mut stream, "full", 0, batch_of(&[vec![1u8; VALUE_BYTES]])).await;
    assert_eq!(error, kafka_code::KAFKA_STORAGE_ERROR);
    assert_eq!(read_all(&mut stream, "full", 0).await, Ok(acknowledged.clone()));
    let mut created_while_full = 0;
    let refused = loop {
        let code = create_topic(&mut stream, &format!("while-full-{created_while_full}"), 1).await;
        if code != 0 {
            break code;
        }
        created_while_full += 1;
        assert!(created_while_full < 100, "metadata writes never found the disk full");
    };
    assert_ne!(refused, 0);
    let body = wait_ready_state(broker.admin, Duration::from_secs(10), |status, body| {
        status == 503
            && body.contains("partition full-0: cannot write")
            && body.contains("Raft log waits for disk space")
    })
    .await;
    assert!(body.contains("no space"), "{body}");
    let (init_error, _) = init_producer_id(&mut stream).await;
    assert_eq!(init_error, kafka_code::REQUEST_TIMED_OUT, "InitProducerId needs a metadata write, which waits");

    // Space returns: everything resumes without a restart.
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    let resumed_at = loop {
        let value = Bytes::from(vec![0xEE; VALUE_BYTES]);
        let (error, offset) = produce(&mut stream, "full", 0, batch_of(&[value.to_vec()])).await;
        if error == 0 {
            acknowledged.push((offset, value));
            break offset;
        }
        assert_eq!(error, kafka_code::KAFKA_STORAGE_ERROR);
        assert!(Instant::now() < deadline, "produce did not resume");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(resumed_at, acknowledged[acknowledged.len() - 2].0 + 1, "the refused batches took no offsets");
    // A proposal that timed out while the disk was full may still be applied now, so each
    // attempt creates a topic of its own name.
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    let mut attempt = 0;
    let created = loop {
        let name = format!("after-space-returned-{attempt}");
        let code = create_topic(&mut stream, &name, 1).await;
        if code == 0 {
            break name;
        }
        assert!(Instant::now() < deadline, "CreateTopics did not resume: {code}");
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (init_error, producer_id) = init_producer_id(&mut stream).await;
    assert_eq!((init_error, producer_id >= 0), (0, true), "InitProducerId after space returned");
    assert_eq!(produce(&mut stream, &created, 0, batch_of(&[b"new".to_vec()])).await.0, 0);
    wait_ready_state(broker.admin, RECOVERY_TIMEOUT, |status, _| status == 200).await;
    assert_eq!(read_all(&mut stream, "full", 0).await, Ok(acknowledged), "an acknowledged record was lost");

    // Once per episode: the partition's log and the Raft log each said it once.
    let partition_lines = logs.lines_containing("segment write found no space left");
    assert_eq!(partition_lines.len(), 1, "{partition_lines:#?}");
    let raft_lines = logs.lines_containing("Raft log write found no space left");
    assert_eq!(raft_lines.len(), 1, "{raft_lines:#?}");
    assert_eq!(logs.lines_containing("Raft log writes succeed again").len(), 1);
    // Each refused produce is a server-side error: logged with its API and peer, once per
    // SERVER_ERROR_LOG_INTERVAL_MS, not once per request.
    let refused_lines = logs.lines_containing("request failed on the server side");
    assert!(!refused_lines.is_empty(), "the refused produces were not logged");
    assert!(refused_lines.iter().all(|l| l.contains("api=Produce") && l.contains("code=56") && l.contains("peer=")));
    let budget = 1 + (started.elapsed().as_millis() as u64) / sluice_broker::dispatch::SERVER_ERROR_LOG_INTERVAL_MS;
    assert!(refused_lines.len() as u64 <= budget, "{} lines in {:?}", refused_lines.len(), started.elapsed());
    drop(stream);
    broker.stop().await;
}
