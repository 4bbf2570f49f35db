//! `sluice-broker probe ready|health`: asks a broker's admin listener whether it is ready (or
//! alive) and exits 0 on `200`, 1 otherwise with one line on stderr saying why. It is the
//! health check of the container image (a `FROM scratch` image has no shell, curl or wget) and
//! of anything else that prefers running a command to making an HTTP request.
//!
//! One HTTP/1.0 `GET /ready` (or `/health`) on a plain TCP connection, the answer read up to
//! [`PROBE_ANSWER_BYTES_MAX`]: the status line decides, and on a `503` the first reason line of
//! the body (`partition t-0: failed to open …`) goes into the error, so the one line says why
//! the broker is not ready. Standard library only and blocking: a probe is one short-lived
//! connection, started without the async runtime the broker needs.
//!
//! The address defaults to the broker's own `--admin-listen` (so `SLUICE_ADMIN_LISTEN` in a
//! container's environment is honoured); an unspecified IP there (`0.0.0.0`, `::`) is asked at
//! the loopback address of its family. A name that resolves to several addresses is tried in
//! order (`localhost` may give `::1` first while the broker listens on `127.0.0.1` only).
//! `--timeout-ms` bounds the connect, send and receive steps together; name resolution is the
//! system resolver's and is not bounded by it.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Time a probe may take by default (connect, send and receive together), in milliseconds.
/// Docker's healthcheck and Kubernetes' exec probes time out at a few seconds; this ends first
/// and so says why.
pub const PROBE_TIMEOUT_MS_DEFAULT: u64 = 2_000;

/// Longest `--timeout-ms` accepted, in milliseconds: a probe is a health check, not a wait.
pub const PROBE_TIMEOUT_MS_MAX: u64 = 60_000;

/// Bytes of the answer read: the status line and the first reasons of a `503` body (the admin
/// listener's reason lines are short; [`crate::admin_http::READY_REASONS_MAX`] of them can be
/// longer, and the rest is not needed).
pub const PROBE_ANSWER_BYTES_MAX: usize = 4 * 1024;

/// Characters of a reason or status line quoted in an error: one terminal line.
const QUOTED_CHARS_MAX: usize = 200;

/// What a probe asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeCheck {
    /// `GET /ready`: the broker can serve (registered, partitions open and writable).
    Ready,
    /// `GET /health`: the process is up (liveness).
    Health,
}

impl ProbeCheck {
    /// The admin path asked.
    pub fn path(self) -> &'static str {
        match self {
            ProbeCheck::Ready => "/ready",
            ProbeCheck::Health => "/health",
        }
    }
}

/// Flags of `sluice-broker probe`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// What to ask: `ready` (GET /ready) or `health` (GET /health).
    #[arg(value_enum)]
    pub check: ProbeCheck,
    /// Admin listener to ask, `host:port` (default: this broker's --admin-listen, with 0.0.0.0
    /// or :: asked at the loopback address).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Time the whole probe may take (connect, send, receive), in milliseconds.
    #[arg(long, default_value_t = PROBE_TIMEOUT_MS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..=PROBE_TIMEOUT_MS_MAX))]
    pub timeout_ms: u64,
}

/// Why a probe failed. Each is one line for the operator; none is retried by the probe itself
/// (its caller, Docker or Kubernetes, probes again on its own schedule).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The name did not resolve (DNS, `/etc/hosts`), or `host:port` is malformed.
    #[error("cannot resolve {address}: {source}")]
    Resolve {
        /// The address asked.
        address: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The name resolved to no address at all.
    #[error("{address} resolves to no address")]
    NoAddress {
        /// The address asked.
        address: String,
    },
    /// No resolved address accepted the connection (nothing listens there, or it is filtered):
    /// the broker is not running or listens elsewhere.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// The last address tried.
        target: SocketAddr,
        /// The last connect error.
        source: std::io::Error,
    },
    /// Connected, but the request or the answer did not get through in time, or the
    /// connection broke.
    #[error("{target}: {step} failed: {source}")]
    Io {
        /// The address connected to.
        target: SocketAddr,
        /// `send` or `receive`.
        step: &'static str,
        /// The I/O error (a timeout shows as "timed out" or "would block").
        source: std::io::Error,
    },
    /// The whole `--timeout-ms` passed before the answer was complete.
    #[error("{target}: no answer within {timeout_ms} ms")]
    Timeout {
        /// The address connected to.
        target: SocketAddr,
        /// The limit.
        timeout_ms: u64,
    },
    /// The listener answered with something other than an HTTP status line.
    #[error("{target}: not an HTTP answer: {first_line:?}")]
    NotHttp {
        /// The address connected to.
        target: SocketAddr,
        /// What came back, cut to one line.
        first_line: String,
    },
    /// An HTTP answer other than `200`: for `/ready`, the broker is not ready (the first reason
    /// it gives is quoted), or the address is not a Sluice admin listener (`404`).
    #[error("{target}{path}: {status}{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Status {
        /// The address connected to.
        target: SocketAddr,
        /// The path asked.
        path: &'static str,
        /// The status code and text, for example `503 Service Unavailable`.
        status: String,
        /// The first reason line of the body after `not ready`, if any.
        reason: Option<String>,
    },
}

/// The address a probe asks when `--addr` is not given: the admin listener, with an
/// unspecified IP replaced by the loopback address of its family.
pub fn default_address(admin_listen: SocketAddr) -> SocketAddr {
    let ip = match admin_listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, admin_listen.port())
}

/// Asks `address` (`host:port`) for `check`'s path within `timeout`; on `200`, the status line
/// (`200 OK`) and the address that answered.
pub fn probe(address: &str, check: ProbeCheck, timeout: Duration) -> Result<(SocketAddr, String), ProbeError> {
    let deadline = Instant::now() + timeout;
    let targets: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve { address: address.to_string(), source })?
        .collect();
    let mut stream_and_target = None;
    let mut last_error = None;
    for target in &targets {
        let Some(remaining) = remaining(deadline) else { break };
        match TcpStream::connect_timeout(target, remaining) {
            Ok(stream) => {
                stream_and_target = Some((stream, *target));
                break;
            }
            Err(source) => last_error = Some((*target, source)),
        }
    }
    let (mut stream, target) = match (stream_and_target, last_error) {
        (Some(connected), _) => connected,
        (None, Some((target, source))) => return Err(ProbeError::Connect { target, source }),
        (None, None) if targets.is_empty() => return Err(ProbeError::NoAddress { address: address.to_string() }),
        (None, None) => return Err(ProbeError::Timeout { target: targets[0], timeout_ms: timeout.as_millis() as u64 }),
    };
    let timed_out = || ProbeError::Timeout { target, timeout_ms: timeout.as_millis() as u64 };
    let io = |step: &'static str| move |source| ProbeError::Io { target, step, source };

    let request = format!("GET {} HTTP/1.0\r\nHost: {address}\r\n\r\n", check.path());
    stream.set_write_timeout(Some(remaining(deadline).ok_or_else(timed_out)?)).map_err(io("send"))?;
    stream.write_all(request.as_bytes()).map_err(io("send"))?;

    let mut answer = Vec::with_capacity(PROBE_ANSWER_BYTES_MAX);
    let mut chunk = [0u8; 1024];
    while answer.len() < PROBE_ANSWER_BYTES_MAX {
        stream.set_read_timeout(Some(remaining(deadline).ok_or_else(timed_out)?)).map_err(io("receive"))?;
        let read = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(timed_out())
            }
            Err(error) => return Err(io("receive")(error)),
        };
        let room = PROBE_ANSWER_BYTES_MAX - answer.len();
        answer.extend_from_slice(&chunk[..read.min(room)]);
    }
    judge(target, check, &String::from_utf8_lossy(&answer)).map(|status| (target, status))
}

/// Reads an HTTP answer: `Ok(status)` for a `200`, else the error that says why.
fn judge(target: SocketAddr, check: ProbeCheck, answer: &str) -> Result<String, ProbeError> {
    let mut lines = answer.split('\n').map(|line| line.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or("");
    let status = match status_line.split_once(' ') {
        Some((version, status)) if version.starts_with("HTTP/") && !status.trim().is_empty() => status.trim(),
        _ => return Err(ProbeError::NotHttp { target, first_line: quoted(status_line) }),
    };
    if status.split_whitespace().next() == Some("200") {
        return Ok(status.to_string());
    }
    // The body follows the first empty line; its first line is `not ready`, the next ones
    // are the reasons.
    let mut body = lines.skip_while(|line| !line.is_empty()).skip(1).filter(|line| !line.trim().is_empty());
    let first = body.next();
    let reason = match first {
        Some("not ready") => body.next(),
        other => other,
    };
    Err(ProbeError::Status { target, path: check.path(), status: quoted(status), reason: reason.map(quoted) })
}

/// The time left until `deadline`, or `None` once it has passed.
fn remaining(deadline: Instant) -> Option<Duration> {
    deadline.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
}

/// `text` cut to [`QUOTED_CHARS_MAX`] characters.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS_MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn target() -> SocketAddr {
        "127.0.0.1:9644".parse().unwrap()
    }

    // Goal: only a 200 status passes; a 503 names its first reason; a non-HTTP answer and a
    // 404 are failures with what came back. Method: `judge` on literal answers.
    #[test]
    fn only_a_200_passes_and_a_503_names_its_first_reason() {
        assert_eq!(judge(target(), ProbeCheck::Ready, "HTTP/1.1 200 OK\r\n\r\nready\n").unwrap(), "200 OK");
        let answer = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\r\nnot ready\n\
                      metadata: no Raft leader known\npartition t-0: failed to open\n";
        let error = judge(target(), ProbeCheck::Ready, answer).unwrap_err();
        assert_eq!(error.to_string(), "127.0.0.1:9644/ready: 503 Service Unavailable: metadata: no Raft leader known");
        let error = judge(target(), ProbeCheck::Health, "HTTP/1.1 404 Not Found\r\n\r\nnot found\n").unwrap_err();
        assert_eq!(error.to_string(), "127.0.0.1:9644/health: 404 Not Found: not found");
        let error = judge(target(), ProbeCheck::Ready, "SSH-2.0-OpenSSH_9.2\r\n").unwrap_err();
        assert_eq!(error.to_string(), "127.0.0.1:9644: not an HTTP answer: \"SSH-2.0-OpenSSH_9.2\"");
        assert!(matches!(judge(target(), ProbeCheck::Ready, ""), Err(ProbeError::NotHttp { .. })));
    }

    // Goal: the default address is the admin listener, asked at loopback when it listens on
    // every interface.
    #[test]
    fn an_unspecified_admin_listener_is_asked_at_loopback() {
        let asked = |listen: &str| default_address(listen.parse().unwrap()).to_string();
        assert_eq!(asked("0.0.0.0:9644"), "127.0.0.1:9644");
        assert_eq!(asked("[::]:9644"), "[::1]:9644");
        assert_eq!(asked("10.0.0.7:19644"), "10.0.0.7:19644");
    }

    // Goal: a listener that accepts but never answers fails the probe after the timeout, not
    // later, and says so. Method: a bound socket with a backlog (the kernel accepts) that the
    // test never reads from.
    #[test]
    fn a_silent_listener_fails_after_the_timeout() {
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = silent.local_addr().unwrap().to_string();
        let started = Instant::now();
        let error = probe(&address, ProbeCheck::Ready, Duration::from_millis(300)).unwrap_err();
        let took = started.elapsed();
        assert!(matches!(error, ProbeError::Timeout { timeout_ms: 300, .. }), "{error}");
        assert_eq!(error.to_string(), format!("{address}: no answer within 300 ms"));
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "took {took:?}");
    }

    // Goal: a name that resolves to several addresses is tried in order until one connects.
    // Method: "localhost" (::1 and/or 127.0.0.1) against a one-answer server on 127.0.0.1.
    #[test]
    fn every_resolved_address_is_tried() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let answering = std::thread::spawn(move || {
            let (mut stream, _) = server.accept().unwrap();
            let mut request = [0u8; 256];
            let _ = stream.read(&mut request).unwrap();
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n").unwrap();
        });
        let (answered_by, status) =
            probe(&format!("localhost:{port}"), ProbeCheck::Health, Duration::from_secs(5)).unwrap();
        assert_eq!((answered_by.to_string(), status.as_str()), (format!("127.0.0.1:{port}"), "200 OK"));
        answering.join().unwrap();
    }
}
