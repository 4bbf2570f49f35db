//! `sluice produce`: one record per input line, from stdin or `--file`.
//!
//! Each line (without its `\n` or `\r\n`) is a value, or with `--key-separator` a key and a
//! value split at the first separator, or with `--format` whatever its format string names
//! (key, value, headers, timestamp; [`crate::line_format`]). Bytes are taken as they are (no
//! UTF-8 requirement), or decoded from hex or base64 with `--encoding`; `-Z` makes an empty
//! value a null (a tombstone). A line that does not fit the format stops the command with its
//! line number, after the records before it are delivered.
//! The command exits once every record is acknowledged, or at the first failed delivery with
//! a non-zero code. With `--file` on a terminal, a progress bar on stderr shows the share of
//! the file read, the records sent and the rate ([`progress_bar`]); piped or redirected,
//! stderr gets only the final line. Records wait for their acknowledgement in a bounded window, so a large
//! file does not hold every pending result in memory (the producer's buffer bounds the
//! records themselves).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use sluice_client::{Cluster, Delivery, Producer, ProducerRecord};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use crate::args::ProduceArgs;
use crate::line_format::{decode, Encoding, LineFormat, ParsedLine};
use crate::UsageError;

/// Deliveries awaited at most at once before reading more input.
const PENDING_DELIVERIES_MAX: usize = 100_000;

/// The bar for producing a file of `total_bytes`: bytes read of the file, records sent, rate
/// and time left. indicatif draws it only when stderr is a terminal.
fn progress_bar(total_bytes: u64, target: indicatif::ProgressDrawTarget) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(total_bytes), target);
    let style = indicatif::ProgressStyle::with_template(
        "{bar:30} {percent:>3}% {bytes}/{total_bytes} {msg} ({bytes_per_sec}, {eta} left)",
    )
    .expect("a valid template");
    bar.set_style(style);
    bar
}

/// Runs `sluice produce`.
pub async fn run(cluster: Cluster, args: ProduceArgs) -> anyhow::Result<()> {
    let format = match &args.format {
        Some(format) => Some(LineFormat::parse(format).map_err(|error| UsageError(format!("--format: {error}")))?),
        None => None,
    };
    cluster.topic(&args.topic).await?;
    let producer = Producer::new(cluster, args.producer.config()).await?;
    let (reader, total_bytes): (Box<dyn AsyncBufRead + Unpin + Send>, Option<u64>) = match &args.file {
        Some(path) => {
            let file = tokio::fs::File::open(path).await.with_context(|| format!("cannot open {}", path.display()))?;
            let length = file.metadata().await.ok().map(|m| m.len());
            (Box::new(BufReader::new(file)), length)
        }
        None => (Box::new(BufReader::new(tokio::io::stdin())), None),
    };
    let produced = produce_lines(&producer, &args, format.as_ref(), reader, total_bytes).await?;
    producer.flush().await?;
    eprintln!("produced {produced} record(s) to {}", args.topic);
    Ok(())
}

async fn produce_lines(
    producer: &Producer,
    args: &ProduceArgs,
    format: Option<&LineFormat>,
    mut reader: Box<dyn AsyncBufRead + Unpin + Send>,
    total_bytes: Option<u64>,
) -> anyhow::Result<u64> {
    let headers: Vec<(String, Option<Bytes>)> =
        args.headers.iter().map(|(key, value)| (key.clone(), Some(Bytes::from(value.clone())))).collect();
    let started = Instant::now();
    let progress = total_bytes.map(|total| progress_bar(total, crate::progress::stderr()));
    let mut pending: VecDeque<Delivery> = VecDeque::new();
    let mut line = Vec::new();
    let (mut produced, mut read_bytes, mut line_number) = (0u64, 0u64, 0u64);
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).await.context("cannot read input")?;
        if read == 0 {
            break;
        }
        read_bytes += read as u64;
        line_number += 1;
        trim_line_end(&mut line);
        if let Some(rate) = args.rate {
            let due = started + Duration::from_secs_f64(produced as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let parsed = match parse_line(&line, args, format) {
            Ok(parsed) => parsed,
            Err(error) => {
                for delivery in pending.drain(..) {
                    delivery.await.context("delivery failed")?;
                }
                anyhow::bail!("line {line_number}: {error} ({produced} record(s) before it were produced)");
            }
        };
        let record_headers = merge_headers(&headers, parsed.headers);
        let record = ProducerRecord {
            topic: args.topic.clone(),
            partition: args.partition,
            key: parsed.key,
            value: parsed.value,
            headers: record_headers,
            timestamp_ms: parsed.timestamp_ms,
        };
        pending.push_back(producer.send(record).await.map_err(|error| too_large_hint(error.into()))?);
        produced += 1;
        while pending.len() > PENDING_DELIVERIES_MAX {
            if let Some(delivery) = pending.pop_front() {
                delivery.await.context("delivery failed")?;
            }
        }
        if let Some(bar) = progress.as_ref().filter(|_| produced % crate::progress::PROGRESS_UPDATE_RECORDS == 0) {
            bar.set_position(read_bytes);
            bar.set_message(format!("{produced} records"));
        }
    }
    if let Some(bar) = &progress {
        bar.set_position(read_bytes);
        bar.set_message(format!("{produced} records, waiting for acknowledgements"));
    }
    for delivery in pending {
        delivery.await.context("delivery failed")?;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(produced)
}

/// The record a line stands for under `--format`, `-K` or neither.
fn parse_line(line: &[u8], args: &ProduceArgs, format: Option<&LineFormat>) -> Result<ParsedLine, String> {
    if let Some(format) = format {
        return format.record(line, args.encoding, args.null_empty);
    }
    let (key, value) = split_line(line, args.key_separator.as_deref());
    let bytes = |raw: Bytes| -> Result<Option<Bytes>, String> {
        match (raw.is_empty() && args.null_empty, args.encoding) {
            (true, _) => Ok(None),
            (false, Encoding::Text) => Ok(Some(raw)),
            (false, encoding) => decode(&raw, encoding).map(Some),
        }
    };
    Ok(ParsedLine { key: key.map(bytes).transpose()?.flatten(), value: bytes(value)?, ..ParsedLine::default() })
}

/// Adds the flag to a "record too large" error: the limit is `--max-request-size`.
fn too_large_hint(error: anyhow::Error) -> anyhow::Error {
    match error.downcast_ref::<sluice_client::ClientError>() {
        Some(sluice_client::ClientError::RecordTooLarge { .. }) => {
            error.context("record larger than max.request.size (raise it with --max-request-size)")
        }
        _ => error,
    }
}

/// The `-H` headers with the line's own (`%h`) after them; a line's header replaces a `-H`
/// header of the same name (names must be distinct in a record, see `line_format`).
fn merge_headers(
    common: &[(String, Option<Bytes>)],
    own: Vec<(String, Option<Bytes>)>,
) -> Vec<(String, Option<Bytes>)> {
    let mut merged: Vec<(String, Option<Bytes>)> =
        common.iter().filter(|(name, _)| !own.iter().any(|(own_name, _)| own_name == name)).cloned().collect();
    merged.extend(own);
    merged
}

fn trim_line_end(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// Key and value of a line: split at the first `separator`, or a null key.
fn split_line(line: &[u8], separator: Option<&str>) -> (Option<Bytes>, Bytes) {
    if let Some(separator) = separator.map(str::as_bytes).filter(|s| !s.is_empty()) {
        if let Some(at) = line.windows(separator.len()).position(|window| window == separator) {
            return (Some(Bytes::copy_from_slice(&line[..at])), Bytes::copy_from_slice(&line[at + separator.len()..]));
        }
    }
    (None, Bytes::copy_from_slice(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the bar shows the share of the file, the bytes and the records sent.
    #[test]
    fn the_progress_bar_shows_the_file_share_and_the_records() {
        let term = indicatif::InMemoryTerm::new(4, 120);
        let bar = progress_bar(2_048, indicatif::ProgressDrawTarget::term_like(Box::new(term.clone())));
        bar.set_position(1_024);
        bar.set_message("5120 records");
        bar.tick();
        let shown = term.contents();
        assert!(shown.contains(" 50% "), "{shown}");
        assert!(shown.contains("1.00 KiB/2.00 KiB"), "{shown}");
        assert!(shown.contains("5120 records"), "{shown}");
        bar.finish_and_clear();
    }

    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(split_line(b"k:v:w", Some(":")), (Some(Bytes::from_static(b"k")), Bytes::from_static(b"v:w")));
        assert_eq!(split_line(b"novalue", Some(":")), (None, Bytes::from_static(b"novalue")));
        assert_eq!(split_line(b"a::b", Some("::")), (Some(Bytes::from_static(b"a")), Bytes::from_static(b"b")));
        assert_eq!(split_line(b"plain", None), (None, Bytes::from_static(b"plain")));
        let common = vec![("a".to_string(), Some(Bytes::from_static(b"1"))), ("b".to_string(), None)];
        let own = vec![("a".to_string(), Some(Bytes::from_static(b"2")))];
        assert_eq!(
            merge_headers(&common, own),
            vec![("b".to_string(), None), ("a".to_string(), Some(Bytes::from_static(b"2")))],
            "the line's header wins over -H"
        );
        let mut line = b"x\r\n".to_vec();
        trim_line_end(&mut line);
        assert_eq!(line, b"x");
    }
}
