//! Results of a benchmark run: latencies in an HDR histogram, and the one line (text or JSON)
//! printed per result.
//!
//! Latencies are recorded in microseconds with three significant digits (a recorded value is
//! within 0.1% of the measured one), saturating at [`LATENCY_MAX_US`]; the histogram's memory
//! is fixed whatever the record count.

use std::io::Write;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::output::write_json_line;

/// The largest latency a histogram records, in microseconds: one hour. A longer one (a stalled
/// run) is recorded as this, so the maximum still shows that something was wrong.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;
/// Significant decimal digits the histogram keeps: 3 (0.1% error) costs ~200 KiB per
/// histogram at this range, and is the precision the output prints (0.01 ms of 10 ms).
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// An empty latency histogram in microseconds, 1 µs to [`LATENCY_MAX_US`].
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS)
        .expect("the latency histogram's bounds are valid constants")
}

/// Records `latency` in `histogram` (below 1 µs counts as 1 µs, above the maximum as the
/// maximum).
pub fn record_latency(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(1, LATENCY_MAX_US);
    histogram.saturating_record(micros);
}

/// p50, p99, p99.9 and the maximum of a histogram, in microseconds (0 for an empty one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles { p50_us: 0, p99_us: 0, p999_us: 0, max_us: 0 };
        }
        Percentiles {
            p50_us: histogram.value_at_quantile(0.5),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        }
    }

    /// `p50 1.23 ms, p99 4.56 ms, p99.9 7.89 ms, max 10.00 ms`.
    pub fn text(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            ms(self.p50_us),
            ms(self.p99_us),
            ms(self.p999_us),
            ms(self.max_us)
        )
    }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// The fixed rate a run aimed at, when it had one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Records per second in all.
    pub records_per_s: f64,
    /// The share of the measured maximum this rate is, for `--rate-of-max` and `--workload`.
    pub load_percent: Option<u8>,
}

/// One result line: what ran, how much, how fast, and its latency percentiles.
#[derive(Debug)]
pub struct Summary {
    /// `produce`, `produce-max`, `end-to-end`, `consume`.
    pub benchmark: &'static str,
    /// What the latency measures: `ack` (send call → acknowledgement), `ack-from-intended`
    /// (intended send time → acknowledgement), `produce-to-consume`, `poll`.
    pub latency: &'static str,
    pub target: Option<Target>,
    pub records: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub percentiles: Percentiles,
}

impl Summary {
    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE) / 1e6
    }

    /// The text line, e.g. `produce at 5000 records/s (50% of max): 100000 records, … ; ack-from-intended latency p50 …`.
    pub fn text(&self) -> String {
        let target = match self.target {
            None => String::new(),
            Some(Target { records_per_s, load_percent: None }) => format!(" at {records_per_s:.0} records/s"),
            Some(Target { records_per_s, load_percent: Some(percent) }) => {
                format!(" at {records_per_s:.0} records/s ({percent}% of max)")
            }
        };
        format!(
            "{}{target}: {} records, {} bytes in {:.2} s: {:.0} records/s, {:.2} MB/s; {} latency {}",
            self.benchmark,
            self.records,
            self.bytes,
            self.elapsed.as_secs_f64(),
            self.records_per_s(),
            self.mb_per_s(),
            self.latency,
            self.percentiles.text()
        )
    }

    pub fn json(&self) -> SummaryJson<'_> {
        let p = &self.percentiles;
        SummaryJson {
            benchmark: self.benchmark,
            records: self.records,
            bytes: self.bytes,
            elapsed_s: round_to(self.elapsed.as_secs_f64(), 3),
            records_per_s: self.records_per_s().round() as u64,
            mb_per_s: round_to(self.mb_per_s(), 2),
            target_records_per_s: self.target.map(|target| target.records_per_s.round() as u64),
            load_percent: self.target.and_then(|target| target.load_percent),
            latency: self.latency,
            p50_ms: round_to(ms(p.p50_us), 3),
            p99_ms: round_to(ms(p.p99_us), 3),
            p999_ms: round_to(ms(p.p999_us), 3),
            max_ms: round_to(ms(p.max_us), 3),
        }
    }

    /// Prints the line on stdout (a closed stdout is not the benchmark's failure).
    pub fn print(&self, json: bool) {
        let mut out = std::io::stdout().lock();
        if json {
            let _ = write_json_line(&mut out, &self.json());
        } else {
            let _ = writeln!(out, "{}", self.text());
        }
    }
}

/// `bench … --json`: one line per result, parsed by `scripts/bench-client.sh`,
/// `scripts/bench-latency.sh` and the CLI's tests. Numbers keep the precision of the text:
/// seconds and milliseconds to 0.001, MB/s to 0.01, records/s whole. `target_records_per_s` and
/// `load_percent` appear only for fixed-rate runs.
#[derive(Debug, Serialize)]
pub struct SummaryJson<'a> {
    benchmark: &'a str,
    records: u64,
    bytes: u64,
    elapsed_s: f64,
    records_per_s: u64,
    mb_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_records_per_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    load_percent: Option<u8>,
    latency: &'a str,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

/// `value` rounded to `decimals` decimal places (serialised as the shortest decimal that reads
/// back as that value, so 5.42 rather than 5.4199999).
fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(target: Option<Target>, percentiles: Percentiles) -> Summary {
        Summary {
            benchmark: "produce",
            latency: "ack-from-intended",
            target,
            records: 1_000_000,
            bytes: 1_024_000_000,
            elapsed: Duration::from_secs_f64(5.419_6),
            percentiles,
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram_within_its_precision() {
        let mut histogram = latency_histogram();
        for millis in 1..=1000u64 {
            record_latency(&mut histogram, Duration::from_millis(millis));
        }
        let p = Percentiles::of(&histogram);
        // Three significant digits: each value within 0.1% of the exact percentile.
        let near = |got: u64, want: u64| got.abs_diff(want) * 1000 <= want;
        assert!(near(p.p50_us, 500_000), "{p:?}");
        assert!(near(p.p99_us, 990_000), "{p:?}");
        assert!(near(p.p999_us, 999_000), "{p:?}");
        assert!(near(p.max_us, 1_000_000), "{p:?}");
        assert_eq!(Percentiles::of(&latency_histogram()), Percentiles { p50_us: 0, p99_us: 0, p999_us: 0, max_us: 0 });
    }

    #[test]
    fn out_of_range_latencies_saturate_instead_of_failing() {
        let mut histogram = latency_histogram();
        record_latency(&mut histogram, Duration::ZERO);
        record_latency(&mut histogram, Duration::from_secs(10 * 3600));
        assert_eq!(histogram.len(), 2);
        assert_eq!(histogram.min(), 1);
        assert!(histogram.max() >= LATENCY_MAX_US && histogram.max() * 1000 <= LATENCY_MAX_US * 1001);
    }

    #[test]
    fn the_text_line_names_the_target_and_prints_milliseconds_to_two_places() {
        let percentiles = Percentiles { p50_us: 1_234, p99_us: 4_999, p999_us: 12_346, max_us: 30_770_999 };
        assert_eq!(percentiles.text(), "p50 1.23 ms, p99 5.00 ms, p99.9 12.35 ms, max 30771.00 ms");
        let fixed = summary(Some(Target { records_per_s: 5000.0, load_percent: Some(50) }), percentiles);
        assert_eq!(
            fixed.text(),
            "produce at 5000 records/s (50% of max): 1000000 records, 1024000000 bytes in 5.42 s: \
             184515 records/s, 188.94 MB/s; ack-from-intended latency p50 1.23 ms, p99 5.00 ms, \
             p99.9 12.35 ms, max 30771.00 ms"
        );
        assert!(summary(None, percentiles).text().starts_with("produce: 1000000 records"));
    }

    #[test]
    fn the_json_line_keeps_its_keys_in_order_as_rounded_numbers() {
        let percentiles = Percentiles { p50_us: 669_410, p99_us: 895_793, p999_us: 0, max_us: 30_770_999 };
        let unbounded = summary(None, percentiles);
        assert_eq!(
            serde_json::to_string(&unbounded.json()).unwrap(),
            concat!(
                r#"{"benchmark":"produce","records":1000000,"bytes":1024000000,"elapsed_s":5.42,"#,
                r#""records_per_s":184515,"mb_per_s":188.94,"latency":"ack-from-intended","p50_ms":669.41,"#,
                r#""p99_ms":895.793,"p999_ms":0.0,"max_ms":30770.999}"#
            )
        );
        let fixed = summary(Some(Target { records_per_s: 5000.4, load_percent: Some(90) }), percentiles);
        let line = serde_json::to_string(&fixed.json()).unwrap();
        assert!(
            line.contains(r#""mb_per_s":188.94,"target_records_per_s":5000,"load_percent":90,"latency""#),
            "{line}"
        );
    }
}
