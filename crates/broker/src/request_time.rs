//! Where a request's time goes, split as Kafka's request metrics split it:
//!
//! ```text
//! frame read ──queue──▶ dispatch ──local──┬──remote──┬──local──▶ response ──send──▶ written
//!                                         (waiting for replicas / a long poll)
//! ```
//!
//! - **queue**: from the frame being read off the socket to its handling (the requests ahead
//!   of it on the same connection, Kafka's `RequestQueueTimeMs`);
//! - **remote**: what the handler spent waiting on something other than this broker's work —
//!   a produce with `acks=all` waiting for the followers, a fetch's long poll (Kafka's
//!   `RemoteTimeMs`, its purgatory);
//! - **local**: the rest of the handling (`LocalTimeMs`);
//! - **send**: writing the response to the socket (`ResponseSendTimeMs`).
//!
//! The remote time is gathered without threading a parameter through every handler: the
//! dispatcher runs each request inside [`measure`], and the handlers wrap their waits in
//! [`waiting`]. Both live here, below the handlers and the dispatcher.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

// tokio's clock: the same as std's, but a paused test clock moves it too.
use tokio::time::Instant;

tokio::task_local! {
    static REMOTE: Cell<Duration>;
}

/// Runs `request`, returning its output and the time it spent inside [`waiting`].
pub async fn measure<F: Future>(request: F) -> (F::Output, Duration) {
    REMOTE
        .scope(Cell::new(Duration::ZERO), async move {
            let output = request.await;
            (output, REMOTE.with(Cell::get))
        })
        .await
}

/// Awaits `wait`, counting its time as the current request's remote time (nothing outside
/// [`measure`]).
pub async fn waiting<F: Future>(wait: F) -> F::Output {
    let started = Instant::now();
    let output = wait.await;
    let waited = started.elapsed();
    // Outside `measure` (a background task) there is nothing to count into.
    let _ = REMOTE.try_with(|remote| remote.set(remote.get() + waited));
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: only the wrapped waits count as remote time, summed; the rest of the request does
    // not, and a wait outside a measured request is harmless.
    #[tokio::test(start_paused = true)]
    async fn remote_time_is_the_sum_of_the_wrapped_waits() {
        let ((), remote) = measure(async {
            tokio::time::sleep(Duration::from_millis(7)).await;
            waiting(tokio::time::sleep(Duration::from_millis(30))).await;
            waiting(tokio::time::sleep(Duration::from_millis(12))).await;
        })
        .await;
        assert_eq!(remote, Duration::from_millis(42));
        let ((), nothing) = measure(tokio::time::sleep(Duration::from_millis(5))).await;
        assert_eq!(nothing, Duration::ZERO);
        waiting(tokio::time::sleep(Duration::from_millis(1))).await;
    }
}
