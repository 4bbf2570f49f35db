//! Formatting for stdout: consumed records (value, key/value, JSON lines) and small tables.
//! JSON is written by hand (strings escaped per RFC 8259) to keep the CLI's dependencies to
//! the workspace's; bytes that are not UTF-8 are shown with U+FFFD replacements.

use std::io::Write;

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
        OutputFormat::Json => writeln!(out, "{}", record_json(record)),
    }
}

/// One record as a JSON object.
pub fn record_json(record: &ConsumerRecord) -> String {
    let headers: Vec<String> = record
        .headers
        .iter()
        .map(|(key, value)| format!("{}:{}", json_string(key), json_bytes(value.as_deref())))
        .collect();
    format!(
        "{{\"topic\":{},\"partition\":{},\"offset\":{},\"timestamp\":{},\"key\":{},\"value\":{},\"headers\":{{{}}}}}",
        json_string(&record.topic),
        record.partition,
        record.offset,
        record.timestamp_ms,
        json_bytes(record.key.as_deref()),
        json_bytes(record.value.as_deref()),
        headers.join(",")
    )
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

/// A number, or `null` when absent (JSON).
pub fn json_number(value: Option<i64>) -> String {
    value.map_or_else(|| "null".to_string(), |value| value.to_string())
}

fn json_bytes(bytes: Option<&[u8]>) -> String {
    match bytes {
        Some(bytes) => json_string(&String::from_utf8_lossy(bytes)),
        None => "null".to_string(),
    }
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
        assert_eq!(json_number(None), "null");
    }

    #[test]
    fn json_escapes_and_nulls() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        let record = ConsumerRecord {
            topic: "t".to_string(),
            partition: 1,
            offset: 7,
            timestamp_ms: 9,
            log_append_time: false,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: vec![("h".to_string(), Some(Bytes::from_static(b"x"))), ("n".to_string(), None)],
        };
        assert_eq!(
            record_json(&record),
            r#"{"topic":"t","partition":1,"offset":7,"timestamp":9,"key":null,"value":"v","headers":{"h":"x","n":null}}"#
        );
    }
}
