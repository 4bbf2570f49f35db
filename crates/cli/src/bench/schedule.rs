//! When each record is meant to be sent, and the loop that sends them and times their
//! completions without coordinated omission.
//!
//! At a fixed rate `r`, record `i` has the intended send time `start + i / r`, fixed before the
//! run begins. The sender waits for that time if it is ahead and sends at once if it is behind;
//! latency is measured from the intended time, not from when `send` was actually called. A
//! stall (a full producer buffer, a slow broker, a descheduled benchmark) therefore counts
//! against every record whose intended time passed during it, as it would for a real
//! application producing at that rate — instead of silently pausing the clock, which is what
//! measuring from the actual send does (Gil Tene's "coordinated omission").
//!
//! Unbounded runs have no schedule: the intended time of a record is when `send` is called, and
//! its latency measures send → acknowledgement (mostly time queued in the producer's buffer).
//!
//! The runtime's timer has millisecond granularity: at a fixed rate a record is sent up to about 1 ms after
//! its intended time, and that delay is (rightly) part of its measured latency.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::report::{latency_histogram, record_latency};

/// Acknowledgements a sender may hold unread before it waits for the oldest: keeps the
/// benchmark's own bookkeeping bounded independently of the producer's buffer. A sender held
/// here is behind schedule, and that shows in the latencies.
pub const DELIVERY_QUEUE_MAX: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this many records.
    Records(u64),
    /// At a fixed rate: after `rate × duration` records. Unbounded: the first record not sent
    /// by then is not sent.
    Duration(Duration),
}

/// The intended send times of one sender's records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Records per second, or `None` for as fast as possible.
    rate: Option<f64>,
    stop: Stop,
}

impl Schedule {
    /// `rate` must be positive and finite (the CLI's parser checks).
    pub fn fixed_rate(rate: f64, stop: Stop) -> Schedule {
        assert!(rate.is_finite() && rate > 0.0, "a fixed rate is positive: {rate}");
        Schedule { rate: Some(rate), stop }
    }

    pub fn unbounded(stop: Stop) -> Schedule {
        Schedule { rate: None, stop }
    }

    /// The intended send time of record `index`, from the start of the run (`None` unbounded).
    pub fn intended_offset(&self, index: u64) -> Option<Duration> {
        // Whole nanoseconds, rounded: exact for rates that divide a second evenly.
        self.rate.map(|rate| Duration::from_nanos((index as f64 * 1e9 / rate).round() as u64))
    }

    /// How many records the run sends, when that is known before it starts.
    pub fn records(&self) -> Option<u64> {
        match (self.stop, self.rate) {
            (Stop::Records(records), _) => Some(records),
            (Stop::Duration(duration), Some(rate)) => Some((duration.as_secs_f64() * rate).round() as u64),
            (Stop::Duration(_), None) => None,
        }
    }

    /// Whether record `index` is sent, `elapsed` into the run.
    fn sends(&self, index: u64, elapsed: Duration) -> bool {
        match (self.records(), self.stop) {
            (Some(records), _) => index < records,
            (None, Stop::Duration(duration)) => elapsed < duration,
            (None, Stop::Records(_)) => unreachable!("a record count is always known"),
        }
    }
}

/// What one sender did: its records' latencies (µs) and when the last one completed.
#[derive(Debug)]
pub struct Sent {
    pub latencies: Histogram<u64>,
    pub finished: Instant,
}

/// A sent record's acknowledgement: a future of its result that also says, without waiting,
/// whether and when it arrived (the producer stamps the moment it settled the record's batch).
pub trait Acknowledgement: Future<Output = anyhow::Result<()>> + Unpin {
    /// When the acknowledgement (or the failure) arrived, if it has.
    fn settled_at(&self) -> Option<Instant>;
}

/// Sends records on `schedule` from `start` and times their completions.
///
/// `send(index, intended)` hands record `index` (with its intended send time, which
/// end-to-end runs put in the record) to the producer and returns its acknowledgement; it may
/// itself wait (a full buffer), which delays the records after it. Each latency is the moment
/// the acknowledgement arrived ([`Acknowledgement::settled_at`]) minus the intended time (the
/// call time when unbounded). Acknowledgements are read in send order between sends, without
/// waiting and without a task or wake-up per record: reading one late does not change its
/// latency. Stops at the schedule's end or the first error. `progress` counts the
/// acknowledgements, in steps of [`PROGRESS_UPDATE_RECORDS`](crate::progress::PROGRESS_UPDATE_RECORDS).
pub async fn drive<S, F, D>(
    schedule: Schedule,
    start: Instant,
    progress: indicatif::ProgressBar,
    mut send: S,
) -> anyhow::Result<Sent>
where
    S: FnMut(u64, Instant) -> F,
    F: Future<Output = anyhow::Result<D>>,
    D: Acknowledgement,
{
    let mut latencies = latency_histogram();
    let mut pending: VecDeque<(Instant, D)> = VecDeque::new();
    let mut unreported = 0u64;
    // Takes the front acknowledgement's result (waiting for it) and records its latency.
    let mut settle_front = async |pending: &mut VecDeque<(Instant, D)>, latencies: &mut Histogram<u64>| {
        let (intended, mut acknowledgement) = pending.pop_front().expect("called with a record pending");
        (&mut acknowledgement).await?;
        let settled = acknowledgement.settled_at().unwrap_or_else(Instant::now);
        record_latency(latencies, settled.saturating_duration_since(intended));
        unreported += 1;
        if unreported == crate::progress::PROGRESS_UPDATE_RECORDS {
            progress.inc(unreported);
            unreported = 0;
        }
        Ok::<_, anyhow::Error>(())
    };
    let mut index = 0u64;
    while schedule.sends(index, start.elapsed()) {
        let intended = match schedule.intended_offset(index) {
            Some(offset) => {
                let intended = start + offset;
                if intended > Instant::now() {
                    tokio::time::sleep_until(intended).await;
                }
                intended
            }
            None => Instant::now(),
        };
        pending.push_back((intended, send(index, intended).await?));
        while pending.front().is_some_and(|(_, acknowledgement)| acknowledgement.settled_at().is_some())
            || pending.len() > DELIVERY_QUEUE_MAX
        {
            settle_front(&mut pending, &mut latencies).await?;
        }
        index += 1;
    }
    while !pending.is_empty() {
        settle_front(&mut pending, &mut latencies).await?;
    }
    progress.inc(unreported);
    Ok(Sent { latencies, finished: Instant::now() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An acknowledgement that arrives at a set time, with a set result.
    struct Acked {
        arrives: std::pin::Pin<Box<tokio::time::Sleep>>,
        fails: bool,
    }

    impl Future for Acked {
        type Output = anyhow::Result<()>;

        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            context: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Self::Output> {
            std::task::ready!(self.arrives.as_mut().poll(context));
            std::task::Poll::Ready(if self.fails { Err(anyhow::anyhow!("refused")) } else { Ok(()) })
        }
    }

    impl Acknowledgement for Acked {
        fn settled_at(&self) -> Option<Instant> {
            Some(self.arrives.deadline()).filter(|at| *at <= Instant::now())
        }
    }

    fn acked_after(delay: Duration) -> Acked {
        Acked { arrives: Box::pin(tokio::time::sleep(delay)), fails: false }
    }

    /// An acknowledgement that is already there: latency is then only the sender's lateness.
    fn acked() -> Acked {
        acked_after(Duration::ZERO)
    }

    #[test]
    fn a_fixed_rate_schedule_spaces_records_evenly_and_counts_them_from_a_duration() {
        let schedule = Schedule::fixed_rate(1000.0, Stop::Duration(Duration::from_secs(2)));
        assert_eq!(schedule.records(), Some(2000));
        assert_eq!(schedule.intended_offset(0), Some(Duration::ZERO));
        assert_eq!(schedule.intended_offset(1500), Some(Duration::from_millis(1500)));
        assert_eq!(Schedule::fixed_rate(3.0, Stop::Records(7)).records(), Some(7));
        let unbounded = Schedule::unbounded(Stop::Duration(Duration::from_secs(1)));
        assert_eq!((unbounded.records(), unbounded.intended_offset(5)), (None, None));
        assert!(unbounded.sends(1_000_000, Duration::from_millis(999)));
        assert!(!unbounded.sends(0, Duration::from_secs(1)));
    }

    /// Goal: a stall in `send` is charged to every record whose intended time passed during it.
    /// Method: 1,000 records/s; `send` of record 10 takes 100 ms. Records 10..=109 were due
    /// during the stall and can only be sent after it, so record `k` waited at least
    /// `110 - k` ms whatever else delays the test; measured from the actual send, they would
    /// have shown no stall at all. Only lower bounds are asserted: a loaded machine can only
    /// add lateness.
    #[tokio::test]
    async fn a_stalled_send_delays_and_counts_against_the_records_behind_it() {
        let schedule = Schedule::fixed_rate(1000.0, Stop::Records(300));
        let start = Instant::now();
        let mut calls = Vec::new();
        let sent = drive(schedule, start, indicatif::ProgressBar::hidden(), |index, intended| {
            calls.push((index, intended - start, Instant::now() - start));
            async move {
                if index == 10 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(acked())
            }
        })
        .await
        .unwrap();
        let latencies = &sent.latencies;
        assert_eq!(latencies.len(), 300, "every record counted once");
        assert!(latencies.count_between(50_000, u64::MAX) >= 51, "records 10..=60 waited ≥ 50 ms");
        assert!(latencies.count_between(1_000, u64::MAX) >= 100, "records 10..=109 waited ≥ 1 ms");
        assert!(latencies.max() >= 100_000, "{}", latencies.max());
        // The schedule did not shift: record 11 kept its intended time and was sent late.
        let (index, intended, called) = calls[11];
        assert_eq!((index, intended), (11, Duration::from_millis(11)));
        assert!(called >= Duration::from_millis(110), "{called:?}");
        assert!(sent.finished - start >= Duration::from_millis(299));
    }

    /// Goal: a slow acknowledgement counts in full, from the intended time at a fixed rate and
    /// from the call unbounded. Method: every acknowledgement takes 3 ms.
    #[tokio::test]
    async fn latency_runs_to_the_acknowledgement() {
        let slow_ack = |_index: u64, _intended: Instant| async { Ok(acked_after(Duration::from_millis(3))) };
        for schedule in [Schedule::fixed_rate(500.0, Stop::Records(50)), Schedule::unbounded(Stop::Records(50))] {
            let sent = drive(schedule, Instant::now(), indicatif::ProgressBar::hidden(), slow_ack).await.unwrap();
            assert_eq!(sent.latencies.len(), 50);
            assert!(sent.latencies.min() >= 3_000, "{schedule:?}: {}", sent.latencies.min());
        }
    }

    #[tokio::test]
    async fn an_unbounded_run_for_a_duration_stops_sending_when_it_is_over() {
        let schedule = Schedule::unbounded(Stop::Duration(Duration::from_millis(50)));
        let sent = drive(schedule, Instant::now(), indicatif::ProgressBar::hidden(), |_, _| async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(acked())
        })
        .await
        .unwrap();
        assert!((1..=50).contains(&sent.latencies.len()), "{}", sent.latencies.len());
    }

    #[tokio::test]
    async fn the_first_failed_acknowledgement_ends_the_run_with_its_error() {
        let schedule = Schedule::fixed_rate(1000.0, Stop::Records(100));
        let result = drive(schedule, Instant::now(), indicatif::ProgressBar::hidden(), |index, _| async move {
            Ok(Acked { fails: index == 5, ..acked() })
        })
        .await;
        assert_eq!(result.unwrap_err().to_string(), "refused");
    }
}
