//! What one request gathers while it is handled: where its time went, and the server-side
//! errors it met.
//!
//! Time is split as Kafka's request metrics split it:
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
//! A **server-side error** is an answer that says the broker failed, not the client
//! ([`is_server_side`]: an unknown server error, a storage error). The handlers report each with
//! [`server_error`]; the dispatcher logs one line per request that met any, with its API,
//! client id and peer address.
//!
//! A **throttle** is the time a client over its quota must wait ([`crate::quota`]): the
//! dispatcher reports it with [`throttled`] and the connection stops handling that client's
//! requests for that long once the response is written.
//!
//! None needs a parameter threaded through every handler: the dispatcher runs each request
//! inside [`measure`], which sets up a task-local; the handlers wrap their waits in [`waiting`]
//! and report errors with [`server_error`]. Both live here, below the handlers and the
//! dispatcher.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::Duration;

// tokio's clock: the same as std's, but a paused test clock moves it too.
use tokio::time::Instant;

tokio::task_local! {
    static SCOPE: Scope;
}

#[derive(Debug, Default)]
struct Scope {
    remote: Cell<Duration>,
    errors: Cell<u32>,
    first_error: RefCell<Option<ServerError>>,
    throttle: Cell<Duration>,
}

/// The first server-side error a request met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// Its Kafka error code.
    pub code: i16,
    /// What failed.
    pub detail: String,
}

/// What [`measure`] gathered about one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gathered {
    /// Time spent inside [`waiting`].
    pub remote: Duration,
    /// Server-side errors reported with [`server_error`].
    pub errors: u32,
    /// The first of them.
    pub first_error: Option<ServerError>,
    /// The longest throttle reported with [`throttled`]: the connection handles nothing more
    /// for this long after writing the response (KIP-219's muting).
    pub throttle: Duration,
}

impl Gathered {
    /// What two parts of one request gathered, together (a deferred answer's two halves).
    pub fn and(self, later: Gathered) -> Gathered {
        Gathered {
            remote: self.remote + later.remote,
            errors: self.errors + later.errors,
            first_error: self.first_error.or(later.first_error),
            throttle: self.throttle.max(later.throttle),
        }
    }
}

/// Runs `request`, returning its output and what it gathered.
pub async fn measure<F: Future>(request: F) -> (F::Output, Gathered) {
    SCOPE
        .scope(Scope::default(), async move {
            let output = request.await;
            let gathered = SCOPE.with(|scope| Gathered {
                remote: scope.remote.get(),
                errors: scope.errors.get(),
                first_error: scope.first_error.take(),
                throttle: scope.throttle.get(),
            });
            (output, gathered)
        })
        .await
}

/// Whether an answer with `code` says the broker failed rather than the client: an unknown
/// server error (a bug, a failed task) or a storage error (a disk the operator must look at).
/// Not the refusals a healthy broker gives (not leader, not enough replicas, ...). Pure.
pub fn is_server_side(code: i16) -> bool {
    matches!(code, crate::kafka_code::UNKNOWN_SERVER_ERROR | crate::kafka_code::KAFKA_STORAGE_ERROR)
}

/// Reports that the current request answers `code` because of `detail`, if `code` is
/// server-side ([`is_server_side`]); outside [`measure`] nothing happens.
pub fn server_error(code: i16, detail: &dyn std::fmt::Display) {
    if !is_server_side(code) {
        return;
    }
    let _ = SCOPE.try_with(|scope| {
        scope.errors.set(scope.errors.get().saturating_add(1));
        scope.first_error.borrow_mut().get_or_insert_with(|| ServerError { code, detail: detail.to_string() });
    });
}

/// Reports that the current request's client is over a quota and must wait `throttle` before
/// its connection is served again (nothing outside [`measure`]).
pub fn throttled(throttle: Duration) {
    let _ = SCOPE.try_with(|scope| scope.throttle.set(scope.throttle.get().max(throttle)));
}

/// Awaits `wait`, counting its time as the current request's remote time (nothing outside
/// [`measure`]).
pub async fn waiting<F: Future>(wait: F) -> F::Output {
    let started = Instant::now();
    let output = wait.await;
    let waited = started.elapsed();
    // Outside `measure` (a background task) there is nothing to count into.
    let _ = SCOPE.try_with(|scope| scope.remote.set(scope.remote.get() + waited));
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: only the wrapped waits count as remote time, summed; the rest of the request does
    // not, and a wait outside a measured request is harmless.
    #[tokio::test(start_paused = true)]
    async fn remote_time_is_the_sum_of_the_wrapped_waits() {
        let ((), Gathered { remote, .. }) = measure(async {
            tokio::time::sleep(Duration::from_millis(7)).await;
            waiting(tokio::time::sleep(Duration::from_millis(30))).await;
            waiting(tokio::time::sleep(Duration::from_millis(12))).await;
        })
        .await;
        assert_eq!(remote, Duration::from_millis(42));
        let ((), nothing) = measure(tokio::time::sleep(Duration::from_millis(5))).await;
        assert_eq!(nothing.remote, Duration::ZERO);
        waiting(tokio::time::sleep(Duration::from_millis(1))).await;
    }

    // Goal: only server-side codes are gathered, the first one kept with its detail and all
    // counted; a report outside a measured request is harmless.
    #[tokio::test]
    async fn server_side_errors_are_counted_and_the_first_kept() {
        use crate::kafka_code::*;
        let ((), gathered) = measure(async {
            server_error(NOT_LEADER_OR_FOLLOWER, &"a refusal, not a failure");
            server_error(KAFKA_STORAGE_ERROR, &"disk gone");
            server_error(UNKNOWN_SERVER_ERROR, &"task panicked");
        })
        .await;
        assert_eq!(gathered.errors, 2);
        assert_eq!(gathered.first_error, Some(ServerError { code: KAFKA_STORAGE_ERROR, detail: "disk gone".into() }));
        let ((), clean) = measure(async {}).await;
        assert_eq!(clean, Gathered::default());
        server_error(UNKNOWN_SERVER_ERROR, &"outside");
    }
}
