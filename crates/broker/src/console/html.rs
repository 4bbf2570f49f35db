//! HTML building blocks of the console: escaping, links, the page frame, and how keys, values
//! and numbers are shown. Pure functions; everything that comes from data goes through
//! [`escape`] (text and attribute values alike) or [`url_encode`] (query parameters).

use std::fmt::Write as _;

use super::CONSOLE_VALUE_BYTES_MAX;

/// `text` with `& < > " '` replaced by character references: safe in element content and in
/// quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query parameter value: every byte but `A-Z a-z 0-9 - . _ ~`.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A link to `path` with query `params` (values encoded), the whole `href` escaped.
pub fn href(path: &str, params: &[(&str, String)]) -> String {
    let mut url = path.to_string();
    for (index, (name, value)) in params.iter().enumerate() {
        url.push(if index == 0 { '?' } else { '&' });
        url.push_str(name);
        url.push('=');
        url.push_str(&url_encode(value));
    }
    escape(&url)
}

/// `<a href=…>text</a>` with the text escaped.
pub fn link(path: &str, params: &[(&str, String)], text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", href(path, params), escape(text))
}

/// The page frame: title, navigation, the body (already HTML) and a footer.
pub fn page(node_id: i32, title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · Sluice</title><link rel=\"stylesheet\" href=\"/console.css\">\
<script src=\"/console.js\" defer></script></head><body>\
<header><span class=\"brand\">Sluice</span> broker {node_id} \
<nav><a href=\"/\">Cluster</a> <a href=\"/topics\">Topics</a> <a href=\"/groups\">Consumer groups</a> \
<a href=\"/metrics\">Metrics</a></nav>\
<label class=\"refresh\"><input type=\"checkbox\" id=\"auto-refresh\"> refresh every 5 s</label></header>\
<main><h1>{title}</h1>\n{body}</main>\
<footer>Read-only console of this broker's admin listener. Partitions and groups this broker \
does not host or coordinate are shown from the metadata only.</footer></body></html>\n",
        title = escape(title),
    )
}

/// Bytes in B, KiB, MiB, GiB with one decimal.
pub fn bytes(value: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if value < 1024 {
        return format!("{value} B");
    }
    let mut scaled = value as f64 / 1024.0;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.1} {}", UNITS[unit])
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn timestamp(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{milli:03} UTC")
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month, day) → days since 1970-01-01 (inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time given as milliseconds since the Unix epoch, or as `YYYY-MM-DDTHH:MM[:SS]` (UTC, the
/// form a `datetime-local` input sends; a space may stand for the `T`).
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    let (date, time) = text.split_once(['T', ' '])?;
    let mut date = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.split(':').map(|part| part.parse::<i64>().ok());
    let (hour, minute) = (time.next()??, time.next()??);
    let second = time.next().flatten().unwrap_or(0);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..60).contains(&second);
    valid.then(|| days_from_civil(year, month, day) * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000)
}

/// How keys, values and header values are shown in the record browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// UTF-8 text (bytes that are not UTF-8 are shown as hex).
    Text,
    /// JSON, pretty-printed when it parses (else as text).
    Json,
    /// Hex dump, 16 bytes a line.
    Hex,
}

impl ValueFormat {
    /// From the `format` query parameter; text by default.
    pub fn parse(text: Option<&str>) -> ValueFormat {
        match text {
            Some("json") => ValueFormat::Json,
            Some("hex") => ValueFormat::Hex,
            _ => ValueFormat::Text,
        }
    }

    /// The query parameter value.
    pub fn name(self) -> &'static str {
        match self {
            ValueFormat::Text => "text",
            ValueFormat::Json => "json",
            ValueFormat::Hex => "hex",
        }
    }
}

/// A key, value or header value as escaped HTML: `null` for none, at most
/// [`CONSOLE_VALUE_BYTES_MAX`] bytes of it shown, with a marker naming what was cut.
pub fn value(bytes: Option<&[u8]>, format: ValueFormat) -> String {
    let Some(bytes) = bytes else { return "<span class=\"null\">null</span>".to_string() };
    let shown = &bytes[..bytes.len().min(CONSOLE_VALUE_BYTES_MAX)];
    let truncated = bytes.len() > shown.len();
    let mut text = match format {
        ValueFormat::Hex => hex_dump(shown),
        ValueFormat::Json if !truncated => match serde_json::from_slice::<serde_json::Value>(shown) {
            Ok(json) => serde_json::to_string_pretty(&json).unwrap_or_default(),
            Err(_) => as_text(shown),
        },
        ValueFormat::Json | ValueFormat::Text => as_text(shown),
    };
    // Pretty-printing adds whitespace: keep the shown text within the bound too.
    if text.len() > 4 * CONSOLE_VALUE_BYTES_MAX {
        let mut cut = 4 * CONSOLE_VALUE_BYTES_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    let mut html = format!("<pre>{}</pre>", escape(&text));
    if truncated {
        let _ = write!(
            html,
            "<span class=\"truncated\">… truncated: {} of {} bytes shown</span>",
            shown.len(),
            bytes.len()
        );
    }
    html
}

/// UTF-8 text, or the hex dump with a note when the bytes are not UTF-8. A value cut at the
/// byte limit may end inside a character: that tail is dropped, not a reason for hex.
fn as_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(error) if error.error_len().is_none() => String::from_utf8_lossy(&bytes[..error.valid_up_to()]).into(),
        Err(_) => format!("(not UTF-8; hex)\n{}", hex_dump(bytes)),
    }
}

/// 16 bytes a line: offset, hex, printable ASCII.
fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4);
    for (line, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}  ", line * 16);
        for (index, byte) in chunk.iter().enumerate() {
            let _ = write!(out, "{byte:02x}{}", if index == 7 { "  " } else { " " });
        }
        for _ in chunk.len()..16 {
            out.push_str("   ");
        }
        out.push(' ');
        out.extend(chunk.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(
            escape("<a href=\"x\" title='y'>&</a>"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(href("/topic", &[("name", "a&b\"<".to_string())]), "/topic?name=a%26b%22%3C");
    }

    #[test]
    fn values_are_bounded_and_shown_in_each_format() {
        let long = vec![b'a'; CONSOLE_VALUE_BYTES_MAX + 10];
        let shown = value(Some(&long), ValueFormat::Text);
        assert!(shown.contains("truncated: 4096 of 4106 bytes shown"), "{shown}");
        assert!(shown.starts_with(&format!("<pre>{}</pre><span", "a".repeat(CONSOLE_VALUE_BYTES_MAX))));
        assert_eq!(value(None, ValueFormat::Hex), "<span class=\"null\">null</span>");
        assert_eq!(
            value(Some(b"{\"k\":[1,2]}"), ValueFormat::Json),
            "<pre>{\n  &quot;k&quot;: [\n    1,\n    2\n  ]\n}</pre>"
        );
        assert_eq!(value(Some(b"not json <"), ValueFormat::Json), "<pre>not json &lt;</pre>");
        assert!(value(Some(&[0xff, 0x00, b'A']), ValueFormat::Text).contains("(not UTF-8; hex)\n00000000  ff 00 41"));
        assert!(value(Some(b"0123456789abcdefX"), ValueFormat::Hex).contains("00000010  58"));
    }

    #[test]
    fn times_round_trip_and_sizes_have_units() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(timestamp(1_764_933_000_123), "2025-12-05 11:10:00.123 UTC");
        assert_eq!(parse_time("2025-12-05T11:10"), Some(1_764_933_000_000));
        assert_eq!(parse_time("2025-12-05 11:10:00"), Some(1_764_933_000_000));
        assert_eq!(parse_time("1764933000123"), Some(1_764_933_000_123));
        assert_eq!(parse_time("2025-13-05T11:10"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
