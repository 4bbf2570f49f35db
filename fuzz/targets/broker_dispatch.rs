//! Fuzz target `broker_dispatch` (end to end): the bytes of `request_frames` written to a
//! connection of a real broker running in this process, then the write side closed; the
//! broker answers or closes, never panics (a panic hook counts panics on every thread). Memory
//! of this path is bounded by the connection budgets tested in `request_memory.rs`, not here:
//! the work happens on the broker's threads, where the harness cannot count it.
//!
//! Seeds: `fuzz/corpus/request_frames/` (captured request frames) and
//! `fuzz/corpus/broker_dispatch/` when present.
//!
//! Shared by the cargo test (`crates/broker/tests/fuzz_requests.rs`, which starts the broker
//! with `common::TestBroker` and checks every 200 inputs that it still answers ApiVersions)
//! and the AFL++ driver (`fuzz/afl/src/bin/broker_dispatch.rs`, which starts a `Node`
//! itself); both include `fuzz/harness.rs` as `harness` and `request_frames.rs` beside it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness;

pub const TARGET: harness::Target =
    harness::Target { name: "broker_dispatch", ci_iterations: 20_000, heap_bytes_max: None };

/// How long an exchange waits for the broker to close the connection after the input: a long
/// poll (Fetch's max wait, a JoinGroup) may hold its answer; such an input ends "held open".
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Seeds besides `fuzz/corpus/broker_dispatch/`: the captured request frames.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    harness::corpus("request_frames")
}

/// Installs a panic hook that counts panics anywhere in the process (the broker's tasks run on
/// the runtime's threads) before calling the previous hook; returns the count.
pub fn count_panics() -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    count
}

/// Writes `input` on a fresh connection to `address`, closes the write side and reads until
/// the broker closes (or [`READ_TIMEOUT`]). Returns the bytes answered and whether it closed.
async fn exchange(address: SocketAddr, input: &[u8]) -> (usize, bool) {
    let mut stream = TcpStream::connect(address).await.expect("the broker accepts a connection");
    let _ = stream.write_all(input).await;
    let _ = stream.shutdown().await;
    let mut answered = 0usize;
    let mut buffer = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(READ_TIMEOUT, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answered += n,
            }
        }
    })
    .await
    .is_ok();
    (answered, closed)
}

/// Sends `input` to the broker at `address` (served by `runtime`) and asserts that nothing
/// panicked since `panics` started counting; returns the outcome name.
pub fn execute(runtime: &tokio::runtime::Runtime, address: SocketAddr, panics: &AtomicUsize, input: &[u8]) -> String {
    let (answered, closed) = runtime.block_on(exchange(address, input));
    let seen = panics.load(Ordering::SeqCst);
    assert_eq!(seen, 0, "the broker panicked ({seen} panics) on this input");
    let frames = crate::request_frames::execute(input);
    let answer = match (answered, closed) {
        (0, true) => "closed",
        (_, true) => "answered, closed",
        (_, false) => "held open",
    };
    format!("{answer} after {frames}")
}
