//! The admin HTTP listener: `GET /metrics` (Prometheus, see [`crate::metrics`]), `GET /health`
//! (the process is up: 200) and `GET /ready` (ready to
//! serve: 200 once the metadata group has a leader — with a live quorum when this node is that
//! leader —, this broker's registration is applied and every partition assigned to it is open
//! and writable, and the metadata log can write; else 503 with one line per reason, such as
//! `partition t-0: failed to open (3 attempts): …`), and the read-only web console at `/`
//! and its pages ([`crate::console`]).
//!
//! GETs without a body do not need an HTTP library: each connection sends one request line and
//! headers (at most [`ADMIN_REQUEST_BYTES_MAX`], within [`ADMIN_REQUEST_TIMEOUT_MS`]), gets one
//! response and is closed. At most [`ADMIN_CONNECTIONS_MAX`] are served at once. Every answer
//! carries a `content-security-policy` that lets a page load only this listener's own
//! stylesheet and script: even a value that escaped the console's escaping could not run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Bytes of request line and headers read from one admin connection; probes send ~100.
pub const ADMIN_REQUEST_BYTES_MAX: usize = 8 * 1024;

/// Bytes read from an admin socket at a time.
const ADMIN_READ_CHUNK_BYTES: usize = 1024;

const _: () = assert!(ADMIN_READ_CHUNK_BYTES <= ADMIN_REQUEST_BYTES_MAX);

/// Time a client has to send its request, in milliseconds.
pub const ADMIN_REQUEST_TIMEOUT_MS: u64 = 5_000;

/// Admin connections served at once; more wait in the accept queue.
pub const ADMIN_CONNECTIONS_MAX: usize = 64;

/// Answers readiness: whether the broker can serve clients now.
pub trait Readiness: Send + Sync + 'static {
    /// Why the broker is not ready, one line each; empty when `/ready` should answer 200.
    fn unready_reasons(&self) -> Vec<String>;

    /// The Prometheus metrics text, or `None` while the broker is starting (`/metrics` answers
    /// 503 then). Blocking (reads every hosted partition): called on the blocking pool.
    fn metrics(&self) -> Option<String> {
        None
    }

    /// The broker the web console reads, or `None` while it is starting (the console answers
    /// 503 then).
    fn broker(&self) -> Option<Arc<crate::broker::Broker>> {
        None
    }
}

/// Headers of every admin answer: no caching of live figures, no content sniffing, and only
/// this listener's own stylesheet and script (inline SVG needs nothing else).
const SECURITY_HEADERS: &str = "cache-control: no-store\r\nx-content-type-options: nosniff\r\n\
content-security-policy: default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'\r\n";

/// Lines of reasons a 503 body lists at most (a broker with thousands of failing partitions
/// would otherwise answer a probe with a page); the rest are counted.
pub const READY_REASONS_MAX: usize = 20;

/// Serves `/health`, `/ready`, `/metrics` and the console on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, readiness: Arc<dyn Readiness>, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(ADMIN_CONNECTIONS_MAX));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "admin accept failed");
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { break };
        let readiness = Arc::clone(&readiness);
        tokio::spawn(async move {
            if let Err(error) = answer(stream, &readiness).await {
                tracing::debug!(%peer, %error, "admin connection failed");
            }
            drop(slot);
        });
    }
}

async fn answer(mut stream: TcpStream, readiness: &Arc<dyn Readiness>) -> std::io::Result<()> {
    let mut buffer = Vec::with_capacity(ADMIN_READ_CHUNK_BYTES);
    let read = tokio::time::timeout(Duration::from_millis(ADMIN_REQUEST_TIMEOUT_MS), async {
        let mut chunk = [0u8; ADMIN_READ_CHUNK_BYTES];
        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") && buffer.len() < ADMIN_REQUEST_BYTES_MAX {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let request_line = buffer.split(|b| *b == b'\n').next().unwrap_or_default();
    let request_line = String::from_utf8_lossy(request_line);
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = if method == "GET" && crate::console::is_console_path(path) {
        match readiness.broker() {
            Some(broker) => {
                let page = crate::console::respond(broker, path).await;
                (page.status, page.content_type, page.body)
            }
            None => ("503 Service Unavailable", "text/plain", "starting\n".to_string()),
        }
    } else if (method, path) == ("GET", "/metrics") {
        let source = Arc::clone(readiness);
        match tokio::task::spawn_blocking(move || source.metrics()).await {
            Ok(Some(text)) => ("200 OK", crate::metrics::CONTENT_TYPE, text),
            _ => ("503 Service Unavailable", "text/plain", "starting\n".to_string()),
        }
    } else {
        let (status, body) = route(method, path, &**readiness);
        (status, "text/plain", body)
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{SECURITY_HEADERS}connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn route(method: &str, path: &str, readiness: &dyn Readiness) -> (&'static str, String) {
    match (method, path) {
        ("GET", "/health") => ("200 OK", "ok\n".to_string()),
        ("GET", "/ready") => match readiness.unready_reasons() {
            reasons if reasons.is_empty() => ("200 OK", "ready\n".to_string()),
            reasons => ("503 Service Unavailable", not_ready_body(&reasons)),
        },
        ("GET", _) => ("404 Not Found", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "method not allowed\n".to_string()),
    }
}

/// `not ready` and the reasons, one per line, at most [`READY_REASONS_MAX`] of them.
fn not_ready_body(reasons: &[String]) -> String {
    let mut body = String::from("not ready\n");
    for reason in reasons.iter().take(READY_REASONS_MAX) {
        // One reason is one line, whatever its error text holds.
        body.push_str(&reason.replace(['\r', '\n'], " "));
        body.push('\n');
    }
    if reasons.len() > READY_REASONS_MAX {
        body.push_str(&format!("… and {} more\n", reasons.len() - READY_REASONS_MAX));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<String>);

    impl Fixed {
        fn ready() -> Fixed {
            Fixed(Vec::new())
        }

        fn not_ready(count: usize) -> Fixed {
            Fixed((0..count).map(|i| format!("reason {i}\nsecond line")).collect())
        }
    }

    impl Readiness for Fixed {
        fn unready_reasons(&self) -> Vec<String> {
            self.0.clone()
        }
    }

    // Goal: /health is liveness only; /ready follows the reasons and lists them, one line
    // each and at most READY_REASONS_MAX.
    #[test]
    fn health_is_always_ok_and_ready_follows_readiness() {
        assert_eq!(route("GET", "/health", &Fixed::not_ready(1)).0, "200 OK");
        let (status, body) = route("GET", "/ready", &Fixed::not_ready(1));
        assert_eq!((status, body.as_str()), ("503 Service Unavailable", "not ready\nreason 0 second line\n"));
        let (_, body) = route("GET", "/ready", &Fixed::not_ready(READY_REASONS_MAX + 3));
        assert_eq!(body.lines().count(), 1 + READY_REASONS_MAX + 1);
        assert!(body.ends_with("… and 3 more\n"), "{body}");
        assert_eq!(route("GET", "/ready", &Fixed::ready()), ("200 OK", "ready\n".to_string()));
        assert_eq!(route("GET", "/nothing", &Fixed::ready()).0, "404 Not Found");
        assert_eq!(route("POST", "/ready", &Fixed::ready()).0, "405 Method Not Allowed");
    }

    #[tokio::test]
    async fn answers_over_tcp_and_stops_on_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::new(Fixed::not_ready(1)), async {
            let _ = stopped.await;
        }));
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        stop.send(()).unwrap();
        server.await.unwrap();
    }
}
