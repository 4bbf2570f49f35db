//! What a `sluice bench produce|end-to-end` command runs: one produce or end-to-end run,
//! unbounded or at a fixed rate, `--rate-of-max` after a full-speed probe, or the
//! `--workload omb` series.

use std::time::Duration;

use sluice_client::ClientConfig;

use super::end_to_end;
use super::ensure_topic;
use super::produce::{produce, Payload};
use super::report::Target;
use super::schedule::Stop;
use super::stamp::STAMP_BYTES;
use crate::args::{BenchProduceArgs, WorkloadArg};
use crate::connect;

/// `--workload omb`: the OpenMessaging Benchmark's record size, 1 KiB.
pub const OMB_RECORD_BYTES: usize = 1024;
/// `--workload omb`: the loads, as percentages of the measured maximum, each run for produce
/// and for end-to-end.
pub const OMB_LOAD_PERCENTS: [u8; 2] = [50, 90];
/// `--workload omb` without `--duration`: seconds per point. OMB itself runs 15 minutes per
/// point; 30 s gives a p99.9 from tens of thousands of records at these rates while the whole
/// series stays a few minutes long.
pub const OMB_POINT_DEFAULT_S: f64 = 30.0;

/// `sluice bench produce` (`end_to_end` false) or `sluice bench end-to-end`.
pub async fn run(config: ClientConfig, args: BenchProduceArgs, end_to_end: bool) -> anyhow::Result<()> {
    check(&args, end_to_end)?;
    ensure_topic(&connect(config.clone()).await?, &args.topic, args.partitions).await?;
    if let Some(WorkloadArg::Omb) = args.workload {
        return omb(&config, &args).await;
    }
    let stop = match args.duration {
        Some(seconds) => Stop::Duration(Duration::from_secs_f64(seconds)),
        None => Stop::Records(args.records),
    };
    let target = match (args.rate, args.rate_of_max) {
        (Some(rate), _) => Some(Target { records_per_s: rate, load_percent: None }),
        (None, Some(percent)) => {
            let max = probe_max(&config, &args, args.record_size).await?;
            Some(Target { records_per_s: max * f64::from(percent) / 100.0, load_percent: Some(percent) })
        }
        (None, None) => None,
    };
    let summary = match (end_to_end, target) {
        (true, Some(target)) => end_to_end::run(&config, &args, args.record_size, target, stop).await?,
        (false, _) => produce(&config, &args, args.record_size, target, stop, Payload::Pool).await?,
        (true, None) => unreachable!("checked: end-to-end runs at a fixed rate"),
    };
    summary.print(args.json);
    Ok(())
}

/// Argument rules clap cannot express.
pub fn check(args: &BenchProduceArgs, end_to_end: bool) -> anyhow::Result<()> {
    anyhow::ensure!(args.producers > 0, "--producers must be at least 1");
    anyhow::ensure!(args.partitions > 0, "--partitions must be at least 1");
    anyhow::ensure!(args.duration.is_some() || args.records > 0, "--records must be at least 1");
    if end_to_end {
        anyhow::ensure!(
            args.rate.is_some() || args.rate_of_max.is_some() || args.workload.is_some(),
            "end-to-end runs at a fixed rate: give --rate, --rate-of-max or --workload"
        );
        anyhow::ensure!(
            args.workload.is_some() || args.record_size >= STAMP_BYTES,
            "end-to-end records carry a {STAMP_BYTES}-byte stamp: --record-size must be at least {STAMP_BYTES}"
        );
    }
    Ok(())
}

/// `--workload omb`: the maximum first, then produce and end-to-end at each of
/// [`OMB_LOAD_PERCENTS`] of it, one line each.
async fn omb(config: &ClientConfig, args: &BenchProduceArgs) -> anyhow::Result<()> {
    let point = Stop::Duration(Duration::from_secs_f64(args.duration.unwrap_or(OMB_POINT_DEFAULT_S)));
    let max = probe_max(config, args, OMB_RECORD_BYTES).await?;
    for percent in OMB_LOAD_PERCENTS {
        let target = Target { records_per_s: max * f64::from(percent) / 100.0, load_percent: Some(percent) };
        produce(config, args, OMB_RECORD_BYTES, Some(target), point, Payload::Pool).await?.print(args.json);
        end_to_end::run(config, args, OMB_RECORD_BYTES, target, point).await?.print(args.json);
    }
    Ok(())
}

/// Runs unbounded for `--probe-secs`, prints that run as `produce-max` and returns its
/// records per second.
async fn probe_max(config: &ClientConfig, args: &BenchProduceArgs, record_size: usize) -> anyhow::Result<f64> {
    let stop = Stop::Duration(Duration::from_secs_f64(args.probe_secs));
    let mut summary = produce(config, args, record_size, None, stop, Payload::Pool).await?;
    summary.benchmark = "produce-max";
    summary.print(args.json);
    let seconds = summary.elapsed.as_secs_f64();
    anyhow::ensure!(summary.records > 0 && seconds > 0.0, "the maximum-throughput run sent no records");
    Ok(summary.records as f64 / seconds)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{BenchCommand, Cli, Command};

    fn parse(extra: &[&str]) -> Result<(BenchProduceArgs, bool), clap::Error> {
        let mut argv = vec!["sluice", "bench"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv)?.command {
            Command::Bench(BenchCommand::Produce(args)) => Ok((args, false)),
            Command::Bench(BenchCommand::EndToEnd(args)) => Ok((args, true)),
            other => panic!("{other:?}"),
        }
    }

    fn checked(extra: &[&str]) -> Result<(), String> {
        let (args, end_to_end) = parse(extra).map_err(|error| error.to_string())?;
        check(&args, end_to_end).map_err(|error| error.to_string())
    }

    #[test]
    fn arguments_are_checked_before_anything_runs() {
        assert_eq!(checked(&["produce"]), Ok(()));
        assert_eq!(checked(&["produce", "--rate", "1000", "--duration", "2.5"]), Ok(()));
        assert_eq!(checked(&["produce", "--rate-of-max", "90", "--probe-secs", "1", "-n", "10"]), Ok(()));
        assert_eq!(checked(&["end-to-end", "--workload", "omb", "--duration", "20"]), Ok(()));
        assert_eq!(checked(&["end-to-end", "--rate", "10", "-s", "16"]), Ok(()));
        for bad in [
            &["produce", "--rate", "0"][..],
            &["produce", "--rate", "-5"],
            &["produce", "--rate", "NaN"],
            &["produce", "--rate", "inf"],
            &["produce", "--duration", "0"],
            &["produce", "--duration", "100000"],
            &["produce", "--rate-of-max", "0"],
            &["produce", "--rate-of-max", "101"],
            &["produce", "--rate", "10", "--rate-of-max", "50"],
            &["produce", "--rate", "10", "--workload", "omb"],
            &["produce", "-n", "10", "--duration", "5"],
            &["produce", "--workload", "omb", "-s", "100"],
            &["produce", "--workload", "tpc"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        let refused = |extra: &[&str], says: &str| {
            let error = checked(extra).unwrap_err();
            assert!(error.contains(says), "{extra:?}: {error}");
        };
        refused(&["end-to-end"], "fixed rate");
        refused(&["end-to-end", "--rate", "10", "-s", "15"], "at least 16");
        refused(&["produce", "--producers", "0"], "--producers");
        refused(&["produce", "-n", "0"], "--records");
    }
}
