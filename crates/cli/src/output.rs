//! Formatting for stdout: consumed records (value, key/value, a format string, JSON lines) and
//! small tables. JSON is written by serde_json, one compact object per line, from `Serialize`
//! structs whose field order is the output's key order; bytes that are not UTF-8 are shown with
//! U+FFFD replacements. The other record formats write keys, values and header values as
//! their bytes, or in hex or base64 (`--encoding`), so binary records survive a round trip
//! through `produce` with the same format string and encoding.
//!
//! Format strings (`-f '%t %k=%v'`): `%k` key, `%v` value, `%h` headers (`a=1,b=2`; a null
//! header value as its name alone), `%t` timestamp (ms since the epoch), `%T` topic, `%p`
//! partition, `%o` offset, `%%` a percent sign; `\n`, `\t` and `\\` as in C; other text as
//! written. `%k`, `%v`, `%h` and `%t` mean what they mean to `produce -f`. Each record ends with
//! a newline unless the format already does.

use std::borrow::Cow;
use std::io::Write;

use base64::Engine as _;
use serde::ser::{Serialize, Serializer};
use sluice_client::ConsumerRecord;

use crate::line_format::Encoding;

/// How `consume` prints each record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFormat {
    /// The value only.
    Value,
    /// Key, separator, value.
    KeyValue,
    /// One JSON object per record (topic, partition, offset, timestamp, key, value, headers).
    Json,
    /// A format string, parsed.
    Template(Vec<OutputPiece>),
}

/// One piece of an output format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputPiece {
    /// Text written as it is.
    Literal(Vec<u8>),
    /// `%k`
    Key,
    /// `%v`
    Value,
    /// `%h`
    Headers,
    /// `%t`
    Timestamp,
    /// `%T`
    Topic,
    /// `%p`
    Partition,
    /// `%o`
    Offset,
}

/// `value`, `key-value`, `json`, or a format string with at least one `%` field.
pub fn parse_output_format(text: &str) -> Result<OutputFormat, String> {
    match text {
        "value" => return Ok(OutputFormat::Value),
        "key-value" => return Ok(OutputFormat::KeyValue),
        "json" => return Ok(OutputFormat::Json),
        _ => {}
    }
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let piece = match (c, chars.clone().next()) {
            ('%', Some(field)) => match field {
                'k' => Some(OutputPiece::Key),
                'v' => Some(OutputPiece::Value),
                'h' => Some(OutputPiece::Headers),
                't' => Some(OutputPiece::Timestamp),
                'T' => Some(OutputPiece::Topic),
                'p' => Some(OutputPiece::Partition),
                'o' => Some(OutputPiece::Offset),
                '%' => None,
                other => return Err(format!("unknown field %{other} (known: %k %v %h %t %T %p %o %%)")),
            },
            ('\\', Some('n')) => {
                chars.next();
                literal.push(b'\n');
                continue;
            }
            ('\\', Some('t')) => {
                chars.next();
                literal.push(b'\t');
                continue;
            }
            ('\\', Some('\\')) => {
                chars.next();
                literal.push(b'\\');
                continue;
            }
            ('%', None) => return Err("a format string cannot end with a lone %".to_string()),
            _ => {
                literal.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
        };
        chars.next();
        match piece {
            Some(piece) => {
                if !literal.is_empty() {
                    pieces.push(OutputPiece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(piece);
            }
            None => literal.push(b'%'),
        }
    }
    if !pieces.iter().any(|piece| !matches!(piece, OutputPiece::Literal(_))) {
        return Err(format!("expected value, key-value, json or a format string with %k, %v, ..., got {text:?}"));
    }
    if literal.last() != Some(&b'\n') {
        literal.push(b'\n');
    }
    pieces.push(OutputPiece::Literal(literal));
    Ok(OutputFormat::Template(pieces))
}

/// Writes one record in `format`; keys, values and header values in `encoding` (not JSON).
pub fn write_record(
    out: &mut impl Write,
    record: &ConsumerRecord,
    format: &OutputFormat,
    key_separator: &str,
    encoding: Encoding,
) -> std::io::Result<()> {
    fn bytes(field: Option<&[u8]>, encoding: Encoding) -> Cow<'_, [u8]> {
        encode(field.unwrap_or_default(), encoding)
    }
    match format {
        OutputFormat::Value => {
            out.write_all(&bytes(record.value.as_deref(), encoding))?;
            out.write_all(b"\n")
        }
        OutputFormat::KeyValue => {
            out.write_all(&bytes(record.key.as_deref(), encoding))?;
            out.write_all(key_separator.as_bytes())?;
            out.write_all(&bytes(record.value.as_deref(), encoding))?;
            out.write_all(b"\n")
        }
        OutputFormat::Json => write_json_line(out, &RecordJson::from(record)),
        OutputFormat::Template(pieces) => {
            for piece in pieces {
                match piece {
                    OutputPiece::Literal(text) => out.write_all(text)?,
                    OutputPiece::Key => out.write_all(&bytes(record.key.as_deref(), encoding))?,
                    OutputPiece::Value => out.write_all(&bytes(record.value.as_deref(), encoding))?,
                    OutputPiece::Headers => {
                        for (index, (name, value)) in record.headers.iter().enumerate() {
                            out.write_all(if index == 0 { b"" } else { b"," })?;
                            out.write_all(name.as_bytes())?;
                            if let Some(value) = value {
                                out.write_all(b"=")?;
                                out.write_all(&encode(value, encoding))?;
                            }
                        }
                    }
                    OutputPiece::Timestamp => write!(out, "{}", record.timestamp_ms)?,
                    OutputPiece::Topic => out.write_all(record.topic.as_bytes())?,
                    OutputPiece::Partition => write!(out, "{}", record.partition)?,
                    OutputPiece::Offset => write!(out, "{}", record.offset)?,
                }
            }
            Ok(())
        }
    }
}

/// `bytes` as written in `encoding`.
fn encode(bytes: &[u8], encoding: Encoding) -> Cow<'_, [u8]> {
    match encoding {
        Encoding::Text => Cow::Borrowed(bytes),
        Encoding::Hex => Cow::Owned(hex::encode(bytes).into_bytes()),
        Encoding::Base64 => Cow::Owned(base64::engine::general_purpose::STANDARD.encode(bytes).into_bytes()),
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

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 1,
            offset: 7,
            timestamp_ms: 9,
            log_append_time: false,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"\x00\n")),
            headers: vec![("h".to_string(), Some(Bytes::from_static(b"x"))), ("n".to_string(), None)],
        }
    }

    fn written(format: &str, encoding: Encoding) -> Vec<u8> {
        let mut out = Vec::new();
        write_record(&mut out, &record(), &parse_output_format(format).unwrap(), "", encoding).unwrap();
        out
    }

    #[test]
    fn format_strings_write_each_field() {
        assert_eq!(written(r"%T/%p@%o %t %k=%v;%h", Encoding::Text), b"t/1@7 9 k=\x00\n;h=x,n\n");
        assert_eq!(written(r"%k\t%v", Encoding::Hex), b"6b\t000a\n");
        assert_eq!(written(r"%v\n", Encoding::Base64), b"AAo=\n", "a format ending in \\n gets no second one");
        assert_eq!(written("100%% %k", Encoding::Text), b"100% k\n");
        assert_eq!(parse_output_format("key-value"), Ok(OutputFormat::KeyValue));
        assert!(parse_output_format("%x").unwrap_err().contains("%x"));
        assert!(parse_output_format("plain").unwrap_err().contains("expected value, key-value, json"));
        assert!(parse_output_format("%k %").is_err());
    }

    #[test]
    fn json_lines_keep_the_key_order_escape_and_write_nulls() {
        let record = ConsumerRecord {
            topic: "t".into(),
            partition: 1,
            offset: 7,
            timestamp_ms: 9,
            log_append_time: false,
            key: None,
            value: Some(Bytes::from_static(b"a\"b\\c\n\x01\xff")),
            headers: vec![("h".to_string(), Some(Bytes::from_static(b"x"))), ("n".to_string(), None)],
        };
        let mut out = Vec::new();
        write_record(&mut out, &record, &OutputFormat::Json, "", Encoding::Text).unwrap();
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
