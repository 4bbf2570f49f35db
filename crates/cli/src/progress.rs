//! Progress bars (indicatif) on stderr for long operations: producing a file ([`crate::produce`]),
//! `bench` runs, offset resets over many partitions. indicatif draws them only when stderr is a
//! terminal, so piped or redirected output stays the result lines alone; each bar is cleared
//! when its operation ends.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a progress bar is redrawn, per second.
pub const PROGRESS_REFRESH_PER_SECOND: u8 = 4;

/// Records between two updates of a bar's record count where records are counted one by one
/// (an update per record would cost more than the record).
pub const PROGRESS_UPDATE_RECORDS: u64 = 1_024;

/// Where bars are drawn: stderr, at [`PROGRESS_REFRESH_PER_SECOND`].
pub fn stderr() -> ProgressDrawTarget {
    ProgressDrawTarget::stderr_with_hz(PROGRESS_REFRESH_PER_SECOND)
}

/// A bar of `what` (a plural noun: "records", "partitions") counted towards `total`, with the
/// rate and time left; without a total, a counter with the rate and the time so far.
pub fn counting(total: Option<u64>, what: &str, target: ProgressDrawTarget) -> ProgressBar {
    let template = match total {
        Some(_) => format!("{{bar:30}} {{percent:>3}}% {{human_pos}}/{{human_len}} {what} ({{per_sec}}, {{eta}} left)"),
        None => format!("{{spinner}} {{human_pos}} {what} ({{per_sec}}, {{elapsed}})"),
    };
    let bar = ProgressBar::with_draw_target(total, target);
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid template"));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counting_bar_shows_its_count_and_total_or_just_its_count() {
        let term = indicatif::InMemoryTerm::new(4, 120);
        let bar = counting(Some(4_000), "records", ProgressDrawTarget::term_like(Box::new(term.clone())));
        bar.inc(1_000);
        bar.tick();
        let shown = term.contents();
        assert!(shown.contains(" 25% 1,000/4,000 records ("), "{shown:?}");

        let term = indicatif::InMemoryTerm::new(4, 120);
        let bar = counting(None, "records", ProgressDrawTarget::term_like(Box::new(term.clone())));
        bar.inc(2_500);
        bar.tick();
        let shown = term.contents();
        assert!(shown.contains("2,500 records ("), "{shown:?}");
        bar.finish_and_clear();
        assert!(term.contents().trim().is_empty(), "a finished bar is cleared: {:?}", term.contents());
    }
}
