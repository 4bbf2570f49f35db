//! How `produce` turns one input line into a record: a key separator (`-K`, kcat's), or a
//! format string (`-f`, rpk's `%k %v` style) naming where the key, value, headers and
//! timestamp are in the line; then the encoding of keys and values (text, hex, base64) and
//! empty-as-null (`-Z`, kcat's, for tombstones). Pure: tested without a broker.
//!
//! Format string: `%k` key, `%v` value, `%h` headers (`name=value` pairs separated by `,`; a
//! name without `=` is a header with a null value), `%t` timestamp (ms since the epoch; empty
//! for "now"), `%%` a percent sign, `\t` a tab, `\\` a backslash; anything else is literal text
//! that must appear in the line. Every field but the last must be followed by literal text
//! (the field ends at its first occurrence); the last field takes the rest of the line.

use base64::Engine as _;
use bytes::Bytes;

/// A field of a format string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `%k`
    Key,
    /// `%v`
    Value,
    /// `%h`
    Headers,
    /// `%t`
    Timestamp,
}

/// One piece of a parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A field.
    Field(Field),
    /// Text that must appear in the line.
    Literal(Vec<u8>),
}

/// A parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFormat {
    pieces: Vec<Piece>,
}

/// How keys, values and header values are written in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// Bytes as they are.
    Text,
    /// Hexadecimal digits, two per byte.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// The parts of a record read from one line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedLine {
    /// Key (`None`: null).
    pub key: Option<Bytes>,
    /// Value (`None`: null, a tombstone).
    pub value: Option<Bytes>,
    /// Headers in line order.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Timestamp, ms since the epoch (`None`: the producer's clock).
    pub timestamp_ms: Option<i64>,
}

impl LineFormat {
    /// Parses a format string; an error says what is wrong with it.
    pub fn parse(format: &str) -> Result<LineFormat, String> {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut literal = Vec::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            let field = match (c, chars.clone().next()) {
                ('%', Some('k')) => Some(Field::Key),
                ('%', Some('v')) => Some(Field::Value),
                ('%', Some('h')) => Some(Field::Headers),
                ('%', Some('t')) => Some(Field::Timestamp),
                ('%', Some('%')) | ('\\', Some('\\')) => {
                    chars.next();
                    literal.push(c as u8);
                    continue;
                }
                ('\\', Some('t')) => {
                    chars.next();
                    literal.push(b'\t');
                    continue;
                }
                ('%', other) => return Err(format!("unknown field %{} (known: %k %v %h %t %%)", other.unwrap_or(' '))),
                _ => None,
            };
            match field {
                Some(field) => {
                    chars.next();
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    if matches!(pieces.last(), Some(Piece::Field(_))) {
                        return Err("two fields need text between them, where the first ends".to_string());
                    }
                    if pieces.contains(&Piece::Field(field)) {
                        return Err("a field appears twice".to_string());
                    }
                    pieces.push(Piece::Field(field));
                }
                None => literal.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        if !pieces.contains(&Piece::Field(Field::Value)) {
            return Err("the format needs %v".to_string());
        }
        Ok(LineFormat { pieces })
    }

    /// The raw bytes of each field in `line`; an error when the line does not fit.
    pub fn split<'a>(&self, line: &'a [u8]) -> Result<Vec<(Field, &'a [u8])>, String> {
        let mut rest = line;
        let mut fields = Vec::new();
        for (index, piece) in self.pieces.iter().enumerate() {
            match piece {
                Piece::Literal(text) => {
                    rest = rest.strip_prefix(text.as_slice()).ok_or_else(|| {
                        format!(
                            "expected {:?} where the line has {:?}",
                            lossy(text),
                            lossy(&rest[..rest.len().min(20)])
                        )
                    })?;
                }
                Piece::Field(field) => {
                    let end = match self.pieces.get(index + 1) {
                        Some(Piece::Literal(text)) => {
                            find(rest, text).ok_or_else(|| format!("no {:?} after the {field:?} field", lossy(text)))?
                        }
                        _ => rest.len(),
                    };
                    fields.push((*field, &rest[..end]));
                    rest = &rest[end..];
                }
            }
        }
        if !rest.is_empty() {
            return Err(format!("unexpected text at the end of the line: {:?}", lossy(rest)));
        }
        Ok(fields)
    }

    /// The record in `line`: fields decoded with `encoding`; with `empty_is_null`, an empty key
    /// or value is null.
    pub fn record(&self, line: &[u8], encoding: Encoding, empty_is_null: bool) -> Result<ParsedLine, String> {
        let mut parsed = ParsedLine::default();
        let bytes = |raw: &[u8]| -> Result<Option<Bytes>, String> {
            if raw.is_empty() && empty_is_null {
                return Ok(None);
            }
            decode(raw, encoding).map(Some)
        };
        for (field, raw) in self.split(line)? {
            match field {
                Field::Key => parsed.key = bytes(raw)?,
                Field::Value => parsed.value = bytes(raw)?,
                Field::Timestamp if raw.is_empty() => {}
                Field::Timestamp => {
                    let text = std::str::from_utf8(raw).map_err(|_| "the timestamp is not text".to_string())?;
                    parsed.timestamp_ms = Some(
                        text.parse().map_err(|_| format!("timestamp {text:?} is not milliseconds since the epoch"))?,
                    );
                }
                Field::Headers => parsed.headers = headers(raw, encoding)?,
            }
        }
        Ok(parsed)
    }
}

/// `a=1,b=2,c`: headers a and b, and c with a null value.
fn headers(raw: &[u8], encoding: Encoding) -> Result<Vec<(String, Option<Bytes>)>, String> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen = std::collections::HashSet::new();
    raw.split(|&byte| byte == b',')
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&byte| byte == b'=') {
                Some(at) => (&pair[..at], Some(decode(&pair[at + 1..], encoding)?)),
                None => (pair, None),
            };
            let name = std::str::from_utf8(name).map_err(|_| "a header name is not UTF-8".to_string())?;
            if name.is_empty() {
                return Err("a header has an empty name".to_string());
            }
            // Kafka's record format allows a repeated name, but the protocol library keeps
            // headers in a map and would drop all but one: refused rather than lost.
            if !seen.insert(name) {
                return Err(format!("header {name:?} appears twice"));
            }
            Ok((name.to_string(), value))
        })
        .collect()
}

/// Decodes a key, value or header value.
pub fn decode(raw: &[u8], encoding: Encoding) -> Result<Bytes, String> {
    match encoding {
        Encoding::Text => Ok(Bytes::copy_from_slice(raw)),
        Encoding::Hex => hex::decode(raw).map(Bytes::from).map_err(|error| format!("not hex: {error}")),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map(Bytes::from)
            .map_err(|error| format!("not base64: {error}")),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn format_strings_name_key_value_headers_and_timestamp() {
        let format = LineFormat::parse("%t %k=%v;%h").unwrap();
        let parsed = format.record(b"1700000000000 user=a=b;src=web,trace", Encoding::Text, false).unwrap();
        assert_eq!(parsed.timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(parsed.key, b("user"));
        assert_eq!(parsed.value, b("a=b"), "a field ends at the first occurrence of the text after it");
        assert_eq!(parsed.headers, vec![("src".to_string(), b("web")), ("trace".to_string(), None)]);
        let tabbed = LineFormat::parse(r"%k\t%v").unwrap();
        assert_eq!(tabbed.record(b"k\tv", Encoding::Text, false).unwrap().key, b("k"));
        assert_eq!(
            LineFormat::parse("100%% %v").unwrap().record(b"100% x", Encoding::Text, false).unwrap().value,
            b("x")
        );
    }

    #[test]
    fn bad_formats_and_lines_are_refused_with_a_reason() {
        assert!(LineFormat::parse("%k").unwrap_err().contains("%v"));
        assert!(LineFormat::parse("%k%v").unwrap_err().contains("text between"));
        assert!(LineFormat::parse("%v %v").unwrap_err().contains("twice"));
        assert!(LineFormat::parse("%x %v").unwrap_err().contains("%x"));
        let format = LineFormat::parse("%k=%v").unwrap();
        assert!(format.record(b"no separator", Encoding::Text, false).unwrap_err().contains("\"=\""));
        let timed = LineFormat::parse("%t,%v").unwrap();
        assert!(timed.record(b"soon,x", Encoding::Text, false).is_err());
        assert_eq!(timed.record(b",x", Encoding::Text, false).unwrap().timestamp_ms, None, "empty: now");
        assert!(LineFormat::parse("<%v>").unwrap().record(b"<x>tail", Encoding::Text, false).is_err());
        let with_headers = LineFormat::parse("%v;%h").unwrap();
        assert!(with_headers.record(b"x;a=1,a=2", Encoding::Text, false).unwrap_err().contains("twice"));
        assert!(with_headers.record(b"x;=1", Encoding::Text, false).unwrap_err().contains("empty name"));
    }

    #[test]
    fn empty_values_are_tombstones_with_empty_is_null() {
        let format = LineFormat::parse("%k=%v").unwrap();
        let parsed = format.record(b"user=", Encoding::Text, true).unwrap();
        assert_eq!((parsed.key, parsed.value), (b("user"), None));
        assert_eq!(format.record(b"user=", Encoding::Text, false).unwrap().value, b(""));
    }

    #[test]
    fn hex_and_base64_carry_any_bytes() {
        let format = LineFormat::parse("%k %v").unwrap();
        let parsed = format.record(b"00ff 0a0d", Encoding::Hex, false).unwrap();
        assert_eq!((parsed.key.unwrap().to_vec(), parsed.value.unwrap().to_vec()), (vec![0, 255], vec![b'\n', b'\r']));
        let parsed = format.record(b"AP8= Cg0=", Encoding::Base64, false).unwrap();
        assert_eq!(parsed.value.unwrap().to_vec(), vec![b'\n', b'\r']);
        assert!(format.record(b"zz 00", Encoding::Hex, false).unwrap_err().contains("hex"));
    }
}
