//! Where `consume` starts in each partition: the `-o/--offset` syntax (kcat's and rpk's) and
//! the pure decision of the offset a position names, given the partition's log start and end.
//!
//! Syntax: `beginning` (also `start`, `earliest`), `end` (also `latest`), `N` (an offset),
//! `-N` (the last N records), `@MS` (milliseconds since the epoch), an RFC 3339 date-time, or a
//! time relative to now: `-30s`, `-15m`, `-1h`, `-2d`. The older `offset:N` and `timestamp:MS`
//! forms are still accepted.
//!
//! A position outside the log is not an error: the consumer starts at the nearest end and says
//! so on stderr, because a user who asked for offset 100 of a 40-record log wants to know that
//! what follows starts at 40, not to see a silent replay from 0.

/// Where `consume` starts, as the user wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The log start.
    Beginning,
    /// The log end (new records only).
    End,
    /// An offset.
    Offset(i64),
    /// The last N records of each partition.
    Last(i64),
    /// The first record at or after a timestamp (ms since the epoch).
    Timestamp(i64),
    /// The first record at or after this many milliseconds before now.
    Ago(i64),
}

impl StartFrom {
    /// The position with relative times turned into timestamps, given the time now.
    pub fn at(self, now_ms: i64) -> StartFrom {
        match self {
            StartFrom::Ago(ms) => StartFrom::Timestamp(now_ms.saturating_sub(ms)),
            other => other,
        }
    }
}

/// Parses an `-o/--offset` value.
pub fn parse_start(text: &str) -> Result<StartFrom, String> {
    let number =
        |value: &str, what: &str| value.parse::<i64>().map_err(|_| format!("{what} must be an integer, got {value:?}"));
    match text {
        "beginning" | "start" | "earliest" => return Ok(StartFrom::Beginning),
        "end" | "latest" => return Ok(StartFrom::End),
        _ => {}
    }
    if let Some(value) = text.strip_prefix("offset:") {
        return Ok(StartFrom::Offset(number(value, "offset")?));
    }
    if let Some(value) = text.strip_prefix("timestamp:").or_else(|| text.strip_prefix('@')) {
        return parse_time(value).map(StartFrom::Timestamp);
    }
    if let Some(count) = text.strip_prefix('-') {
        if let Ok(count) = count.parse::<i64>() {
            return Ok(StartFrom::Last(count));
        }
        if let Some(ms) = parse_duration_ms(count) {
            return Ok(StartFrom::Ago(ms));
        }
    }
    if let Ok(offset) = text.parse::<i64>() {
        return Ok(StartFrom::Offset(offset));
    }
    if let Ok(datetime) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(StartFrom::Timestamp(datetime.timestamp_millis()));
    }
    Err(format!(
        "expected beginning, end, an offset N, -N (last N records), @MS (epoch ms), an RFC 3339 time or -1h/-15m/-30s/-2d, got {text:?}"
    ))
}

/// Milliseconds since the epoch, given as such or as an RFC 3339 date-time.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(millis) = text.parse::<i64>() {
        return Ok(millis);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|datetime| datetime.timestamp_millis())
        .map_err(|error| format!("expected an RFC 3339 date-time or epoch milliseconds, got {text:?} ({error})"))
}

/// `30s`, `15m`, `1h`, `2d` (also `500ms`) in milliseconds; `None` for anything else.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let digits = text.find(|c: char| !c.is_ascii_digit()).filter(|&at| at > 0)?;
    let (count, unit) = text.split_at(digits);
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    count.parse::<i64>().ok()?.checked_mul(unit_ms)
}

/// Kafka's ISO 8601 durations, `PnDTnHnMnS` (`PT1H`, `P1DT12H`, `PT30M`), in milliseconds;
/// `None` for anything else (whole numbers only, no years or months: their length varies).
pub fn parse_iso_duration_ms(text: &str) -> Option<i64> {
    let rest = text.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((days, time)) => (days, Some(time)),
        None => (rest, None),
    };
    let mut total: i64 = 0;
    let mut add = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut remaining = part;
        let mut last_unit = None;
        while !remaining.is_empty() {
            let digits = remaining.find(|c: char| !c.is_ascii_digit()).filter(|&at| at > 0)?;
            let count: i64 = remaining[..digits].parse().ok()?;
            let unit = remaining[digits..].chars().next()?;
            // Units in their order, each at most once: PT1H30M, not PT30M1H.
            let position = units.iter().position(|(name, _)| *name == unit)?;
            if last_unit.is_some_and(|last| position <= last) {
                return None;
            }
            last_unit = Some(position);
            total = total.checked_add(count.checked_mul(units[position].1)?)?;
            remaining = &remaining[digits + unit.len_utf8()..];
        }
        Some(())
    };
    add(days, &[('D', 86_400_000)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        add(time, &[('H', 3_600_000), ('M', 60_000), ('S', 1_000)])?;
    }
    (!rest.is_empty()).then_some(total)
}

/// The offset a position names in a partition whose log holds `[log_start, log_end)`, and a
/// note for stderr when the position lay outside the log and was moved. Timestamps are looked
/// up by the broker: give the offset it found (the end when no record is that late) as
/// `found_for_timestamp`.
pub fn resolve(
    from: StartFrom,
    log_start: i64,
    log_end: i64,
    found_for_timestamp: Option<i64>,
) -> (i64, Option<String>) {
    match from {
        StartFrom::Beginning => (log_start, None),
        StartFrom::End => (log_end, None),
        StartFrom::Offset(offset) if offset > log_end => {
            (log_end, Some(format!("offset {offset} is past the end ({log_end}): starting at the end")))
        }
        StartFrom::Offset(offset) if offset < log_start => {
            (log_start, Some(format!("offset {offset} is before the log start ({log_start}): starting at {log_start}")))
        }
        StartFrom::Offset(offset) => (offset, None),
        StartFrom::Last(count) => (log_end.saturating_sub(count.max(0)).max(log_start), None),
        StartFrom::Timestamp(timestamp_ms) | StartFrom::Ago(timestamp_ms) => {
            let found = found_for_timestamp.unwrap_or(log_end).clamp(log_start, log_end);
            let note = (found == log_end && log_start < log_end).then(|| {
                format!("no record at or after {}: starting at the end ({log_end})", describe_time(timestamp_ms))
            });
            (found, note)
        }
    }
}

/// `2024-05-01T12:00:00Z (1714564800000)`, or the number alone when it is not a valid time.
fn describe_time(timestamp_ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(timestamp_ms) {
        Some(time) => format!("{} ({timestamp_ms})", time.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
        None => timestamp_ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_like_kcat_and_rpk() {
        assert_eq!(parse_start("beginning"), Ok(StartFrom::Beginning));
        assert_eq!(parse_start("start"), Ok(StartFrom::Beginning));
        assert_eq!(parse_start("end"), Ok(StartFrom::End));
        assert_eq!(parse_start("42"), Ok(StartFrom::Offset(42)));
        assert_eq!(parse_start("-10"), Ok(StartFrom::Last(10)));
        assert_eq!(parse_start("@1700000000000"), Ok(StartFrom::Timestamp(1_700_000_000_000)));
        assert_eq!(parse_start("2023-11-14T22:13:20Z"), Ok(StartFrom::Timestamp(1_700_000_000_000)));
        assert_eq!(parse_start("-1h"), Ok(StartFrom::Ago(3_600_000)));
        assert_eq!(parse_start("-15m"), Ok(StartFrom::Ago(900_000)));
        assert_eq!(parse_start("-2d"), Ok(StartFrom::Ago(172_800_000)));
        assert_eq!(parse_start("-500ms"), Ok(StartFrom::Ago(500)));
        assert_eq!(parse_start("offset:7"), Ok(StartFrom::Offset(7)));
        assert_eq!(parse_start("timestamp:5"), Ok(StartFrom::Timestamp(5)));
        for bad in ["middle", "-1y", "-h", "offset:x", "@yesterday", "2023-11-14"] {
            assert!(parse_start(bad).is_err(), "{bad}");
        }
        assert_eq!(StartFrom::Ago(1_000).at(5_000), StartFrom::Timestamp(4_000));
    }

    #[test]
    fn iso_durations_parse_like_kafkas_by_duration() {
        assert_eq!(parse_iso_duration_ms("PT1H"), Some(3_600_000));
        assert_eq!(parse_iso_duration_ms("P1DT12H"), Some(129_600_000));
        assert_eq!(parse_iso_duration_ms("PT1H30M15S"), Some(5_415_000));
        assert_eq!(parse_iso_duration_ms("P2D"), Some(172_800_000));
        for bad in ["P", "PT", "1H", "PT30M1H", "P1H", "PT1D", "PTH", "P1Y", "PT1H1H"] {
            assert_eq!(parse_iso_duration_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn datetimes_parse_as_rfc3339_or_epoch_milliseconds() {
        assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T23:13:20.5+01:00"), Ok(1_700_000_000_500));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn positions_outside_the_log_move_to_its_nearest_end_with_a_note() {
        // A log holding offsets 10..40.
        assert_eq!(resolve(StartFrom::Beginning, 10, 40, None), (10, None));
        assert_eq!(resolve(StartFrom::End, 10, 40, None), (40, None));
        assert_eq!(resolve(StartFrom::Offset(25), 10, 40, None), (25, None));
        assert_eq!(resolve(StartFrom::Offset(40), 10, 40, None), (40, None), "the end itself is in range");
        let (offset, note) = resolve(StartFrom::Offset(100), 10, 40, None);
        assert_eq!((offset, note.unwrap().contains("past the end (40)")), (40, true));
        let (offset, note) = resolve(StartFrom::Offset(3), 10, 40, None);
        assert_eq!((offset, note.unwrap().contains("before the log start (10)")), (10, true));
        assert_eq!(resolve(StartFrom::Last(5), 10, 40, None), (35, None));
        assert_eq!(resolve(StartFrom::Last(500), 10, 40, None), (10, None), "fewer records than asked: all");
        assert_eq!(resolve(StartFrom::Timestamp(1), 10, 40, Some(12)), (12, None));
        let (offset, note) = resolve(StartFrom::Timestamp(0), 10, 40, Some(40));
        assert_eq!((offset, note.unwrap().contains("no record at or after 1970-01-01T00:00:00.000Z")), (40, true));
        assert_eq!(resolve(StartFrom::Timestamp(0), 0, 0, Some(0)), (0, None), "an empty log: nothing to say");
    }
}
