//! Formatting for stdout: consumed records (value, key/value, JSON lines) and small tables.
//! JSON is written by serde_json, one compact object per line, from `Serialize` structs whose
//! field order is the output's key order; bytes that are not UTF-8 are shown with U+FFFD
//! replacements.

use std::borrow::Cow;
use std::io::Write;

use serde::ser::{Serialize, Serializer};
use sluice_client::ConsumerRecord;

use crate::args::OutputFormat;

/// Writes one record in `format`.
pub fn write_record(
    out: &mut impl Write,
    record: &ConsumerRecord,
    format: OutputFormat,
    key_separator: &str,
) -> std::io::Result<()> {
    let empty: &[u8] = b"";
    match format {
        OutputFormat::Value => {
            out.write_all(record.value.as_deref().unwrap_or(empty))?;
            out.write_all(b"\n")
        }
        OutputFormat::KeyValue => {
            out.write_all(record.key.as_deref().unwrap_or(empty))?;
            out.write_all(key_separator.as_bytes())?;
            out.write_all(record.value.as_deref().unwrap_or(empty))?;
            out.write_all(b"\n")
        }
        OutputFormat::Json => write_json_line(out, &RecordJson::from(record)),
    }
}

/// Writes `value` as one line of compact JSON.
pub fn write_json_line(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// One consumed record as JSON: `{"topic","partition","offset","timestamp","key","value","headers"}`.
#[derive(serde::Serialize)]
struct RecordJson<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<Cow<'a, str>>,
    value: Option<Cow<'a, str>>,
    headers: HeadersJson<'a>,
}

impl<'a> From<&'a ConsumerRecord> for RecordJson<'a> {
    fn from(record: &'a ConsumerRecord) -> Self {
        RecordJson {
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp_ms,
            key: lossy(record.key.as_deref()),
            value: lossy(record.value.as_deref()),
            headers: HeadersJson(&record.headers),
        }
    }
}

/// Headers as one JSON object, in record order (a repeated key is written again, as received).
struct HeadersJson<'a>(&'a [(String, Option<bytes::Bytes>)]);

impl Serialize for HeadersJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, value)| (key, lossy(value.as_deref()))))
    }
}

fn lossy(bytes: Option<&[u8]>) -> Option<Cow<'_, str>> {
    bytes.map(String::from_utf8_lossy)
}

/// Writes `rows` under `header` in columns padded to their widest cell, two spaces apart.
pub fn write_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|title| title.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}", width = *width)).collect();
        padded.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// A number, or `-` when absent (table cells).
pub fn cell(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_string(), |value| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn tables_align_columns() {
        let mut out = Vec::new();
        let rows =
            vec![vec!["orders".to_string(), "0".to_string(), cell(None)], vec!["t".into(), "12".into(), cell(Some(3))]];
        write_table(&mut out, &["TOPIC", "PARTITION", "LAG"], &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "TOPIC   PARTITION  LAG\norders  0          -\nt       12         3\n"
        );
    }

    #[test]
    fn json_lines_keep_the_key_order_escape_and_write_nulls() {
        let record = ConsumerRecord {
            topic: "t".to_string(),
            partition: 1,
            offset: 7,
            timestamp_ms: 9,
            log_append_time: false,
            key: None,
            value: Some(Bytes::from_static(b"a\"b\\c\n\x01\xff")),
            headers: vec![("h".to_string(), Some(Bytes::from_static(b"x"))), ("n".to_string(), None)],
        };
        let mut out = Vec::new();
        write_record(&mut out, &record, OutputFormat::Json, "").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"topic":"t","partition":1,"offset":7,"timestamp":9,"key":null,"#,
                r#""value":"a\"b\\c\n\u0001"#,
                "\u{fffd}", // the byte 0xff, not UTF-8
                r#"","headers":{"h":"x","n":null}}"#,
                "\n"
            )
        );
    }
}
