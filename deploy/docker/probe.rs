//! `sluice-probe`: the container healthcheck. A scratch image has no shell, curl or wget, so
//! Docker's `HEALTHCHECK CMD [...]` runs this instead: one HTTP/1.0 GET to the broker's admin
//! listener; exit 0 if the answer is `200`, else 1 (Docker's "unhealthy").
//!
//! Usage: `sluice-probe [host:port] [path]` (default `127.0.0.1:9644 /ready`).
//!
//! Standard library only, so `build-image.sh` compiles it with plain `rustc` (no cargo, no
//! crates) in a second or two, and it links only the libraries the broker already needs.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Connect, write and read timeout, each. Docker's own `--timeout` (3 s) bounds the whole run.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes of the answer read: the status line is all that is needed.
const ANSWER_BYTES_MAX: usize = 512;

fn probe(address: &str, path: &str) -> Result<String, String> {
    let target = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&target, IO_TIMEOUT).map_err(|e| format!("connect {target}: {e}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::with_capacity(ANSWER_BYTES_MAX);
    stream.take(ANSWER_BYTES_MAX as u64).read_to_end(&mut answer).map_err(|e| format!("receive: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or("").trim().to_string();
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(status_line),
        _ => Err(format!("{path}: {status_line:?}")),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:9644".to_string());
    let path = args.next().unwrap_or_else(|| "/ready".to_string());
    match probe(&address, &path) {
        Ok(status) => {
            println!("{address}{path}: {status}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{address}: {error}");
            ExitCode::FAILURE
        }
    }
}
