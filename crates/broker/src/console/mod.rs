//! The web console: read-only HTML pages served by the admin listener ([`crate::admin_http`])
//! at `/` — the cluster's health, brokers and metadata leader; topics; one topic's partitions;
//! a record browser; consumer groups with their lag and its recent history as an inline SVG
//! chart. `docs/console.md` describes the pages.
//!
//! Server-rendered: [`gather`] reads what a page needs from the layers below the request
//! handlers — the metadata view, the partition layer (in-memory offsets, a bounded read of
//! one partition for the record browser), the group coordinator's shards and the lag task's
//! [`LagHistory`](crate::coordinator::lag_history::LagHistory) — and [`pages`] turns it into
//! HTML, escaping every string that comes from data. The stylesheet and the one small script
//! (an opt-in auto-refresh) are compiled into the binary (`include_str!`); nothing is fetched
//! from elsewhere, and the `content-security-policy` header forbids it.
//!
//! Architecture invariant: the console never calls into `crate::handlers`; whatever it shares
//! with them (offline replicas and the health verdict: [`crate::cluster_health`]) lives below
//! both. Anything that may touch the disk or take a partition lock runs on the blocking pool;
//! group state is read through the shards' async locks.
//!
//! Bounded: at most [`CONSOLE_ROWS_PER_PAGE`] topics, partitions or groups per page, at most
//! [`CONSOLE_RECORDS_PER_PAGE_MAX`] records read from at most [`CONSOLE_READ_BYTES_MAX`] bytes of
//! log, at most [`CONSOLE_VALUE_BYTES_MAX`] bytes of each key, value and header value and at
//! most [`CONSOLE_HEADERS_SHOWN_MAX`] headers of a record shown.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::broker::Broker;

mod chart;
mod gather;
pub mod html;
pub mod pages;

/// Topics, partitions of a topic, groups, or a group's committed partitions shown per page; the
/// rest are on the next pages.
/// 100 rows bound a page's work and size whatever the partition count (a 1,000-partition topic
/// is 10 pages).
pub const CONSOLE_ROWS_PER_PAGE: usize = 100;

/// Records the record browser shows at most per page (`count` is clamped to it).
pub const CONSOLE_RECORDS_PER_PAGE_MAX: usize = 100;

/// Records shown when `count` is not given.
pub const CONSOLE_RECORDS_PER_PAGE_DEFAULT: usize = 20;

/// Bytes of log read for one record browser page (whole batches, at least one): a page shows
/// fewer records when they are larger than this together; "next records" goes on from there.
pub const CONSOLE_READ_BYTES_MAX: u64 = 1024 * 1024;

/// Bytes of one key, value or header value shown; the rest is cut with a marker that says how
/// much was shown of how much.
pub const CONSOLE_VALUE_BYTES_MAX: usize = 4096;

/// Headers shown per record at most; the rest are counted. With [`CONSOLE_VALUE_BYTES_MAX`] per
/// value it bounds what one record adds to a page.
pub const CONSOLE_HEADERS_SHOWN_MAX: usize = 20;

/// Health problems listed on the front page at most; the rest are counted.
pub const CONSOLE_PROBLEMS_SHOWN_MAX: usize = 50;

const _: () = assert!(CONSOLE_RECORDS_PER_PAGE_DEFAULT <= CONSOLE_RECORDS_PER_PAGE_MAX);

const STYLE: &str = include_str!("console.css");
const SCRIPT: &str = include_str!("console.js");

/// `content-type` of the HTML pages.
const HTML: &str = "text/html; charset=utf-8";

/// One answer of the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status line after `HTTP/1.1 `.
    pub status: &'static str,
    /// `content-type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Response {
    fn html(status: &'static str, body: String) -> Response {
        Response { status, content_type: HTML, body }
    }
}

/// The paths the console answers (with any query).
pub fn is_console_path(path: &str) -> bool {
    matches!(
        path.split('?').next().unwrap_or(""),
        "/" | "/topics" | "/topic" | "/records" | "/groups" | "/group" | "/console.css" | "/console.js"
    )
}

/// The query parameters of a request target, percent-decoded (`+` is a space); a parameter
/// given twice keeps its last value.
pub fn query_params(target: &str) -> BTreeMap<String, String> {
    let Some((_, query)) = target.split_once('?') else { return BTreeMap::new() };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(index + 1..index + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                match hex.and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers a GET of a console path (see [`is_console_path`]) with the page built now.
pub async fn respond(broker: Arc<Broker>, target: &str) -> Response {
    let path = target.split('?').next().unwrap_or("");
    let params = query_params(target);
    let page_index = params.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(0);
    match path {
        "/console.css" => Response { status: "200 OK", content_type: "text/css; charset=utf-8", body: STYLE.into() },
        "/console.js" => {
            Response { status: "200 OK", content_type: "text/javascript; charset=utf-8", body: SCRIPT.into() }
        }
        "/groups" => Response::html("200 OK", gather::groups(&broker, page_index).await),
        "/group" => {
            let id = params.get("id").cloned().unwrap_or_default();
            let (status, body) = gather::group(&broker, &id, page_index).await;
            Response::html(status, body)
        }
        _ => {
            let path = path.to_string();
            let answer = tokio::task::spawn_blocking(move || match path.as_str() {
                "/" => ("200 OK", gather::cluster(&broker)),
                "/topics" => ("200 OK", gather::topics(&broker, page_index)),
                "/topic" => gather::topic(&broker, params.get("name").map_or("", String::as_str), page_index),
                "/records" => gather::records(&broker, &params),
                _ => ("404 Not Found", pages::message(broker.node_id, "Not found", "No such page.")),
            })
            .await;
            match answer {
                Ok((status, body)) => Response::html(status, body),
                Err(error) => Response::html("500 Internal Server Error", format!("console page failed: {error}\n")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        let params = query_params("/records?topic=a%2Eb&format=json&time=2025-12-05T11%3A10&x=%zz&y=a+b&z=%4");
        assert_eq!(params["topic"], "a.b");
        assert_eq!(params["time"], "2025-12-05T11:10");
        assert_eq!(params["x"], "%zz");
        assert_eq!(params["y"], "a b");
        assert_eq!(params["z"], "%4");
        assert!(query_params("/").is_empty());
        assert!(is_console_path("/topic?name=x") && !is_console_path("/metrics"));
    }

    // Goal: the architecture rule holds in the source — no console module (nor the lag history
    // and health modules it reads) uses the request handlers. The patterns are split so this
    // test does not find itself.
    #[test]
    fn the_console_does_not_reach_into_the_handlers() {
        let sources = [
            ("console/mod.rs", include_str!("mod.rs")),
            ("console/gather.rs", include_str!("gather.rs")),
            ("console/pages.rs", include_str!("pages.rs")),
            ("console/html.rs", include_str!("html.rs")),
            ("console/chart.rs", include_str!("chart.rs")),
            ("cluster_health.rs", include_str!("../cluster_health.rs")),
            ("coordinator/lag_history.rs", include_str!("../coordinator/lag_history.rs")),
        ];
        for (file, text) in sources {
            for pattern in [concat!("crate::", "handlers::"), concat!("use crate::", "handlers")] {
                assert!(!text.contains(pattern), "{file} uses the handlers ({pattern})");
            }
        }
    }
}
