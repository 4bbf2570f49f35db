//! The habits a Kafka user brings from kcat, rpk and Kafka's scripts (issue 17), each checked on
//! the `sluice` binary against a real broker: `consume` starts at the beginning and takes
//! kcat's `-o` positions and `-e`, says on stderr when a position is outside the log and how
//! many records it consumed, and prints format strings, binary-safe with `--encoding`;
//! `produce` writes tombstones, headers, timestamps from a format string and binary keys and
//! values, and reads back what `consume` wrote; `topic create` lets the broker's defaults
//! decide, `topic alter` applies nothing when one change is bad, `topic delete` takes several
//! names; listings and descriptions print JSON; `cluster health` gives a verdict and exit code;
//! a closed stdout is not an error; every command's help has examples; completions are
//! generated.
//!
//! Method: a broker in this process on ephemeral ports (`common::InProcessBroker`), the
//! compiled `sluice` run as a child process; assertions on its stdout, stderr and exit code.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{one_error_line, run, sorted_lines, stderr, stdout, InProcessBroker};

/// Values `v0`..`v9` in topic `positions` (one partition), then every kcat-style position.
async fn check_positions(b: &str) {
    stdout(&run(b, &["topic", "create", "positions", "-p", "1"], None).await);
    let lines: String = (0..10).map(|i| format!("v{i}\n")).collect();
    stdout(&run(b, &["produce", "positions"], Some(lines.as_bytes())).await);
    let consume = |extra: &[&'static str]| [&["consume", "positions", "-e"][..], extra].concat();
    let values = |output: &std::process::Output| stdout(output).lines().map(String::from).collect::<Vec<_>>();

    // No -o: from the beginning (kcat, rpk), and -e exits at the end instead of waiting.
    let all = run(b, &consume(&[]), None).await;
    assert_eq!(values(&all), (0..10).map(|i| format!("v{i}")).collect::<Vec<_>>());
    assert_eq!(stderr(&all).trim(), "consumed 10 records");
    assert_eq!(values(&run(b, &consume(&["-o", "-3"]), None).await), ["v7", "v8", "v9"], "the last 3");
    assert_eq!(values(&run(b, &consume(&["-o", "4", "-n", "2"]), None).await), ["v4", "v5"]);
    assert!(values(&run(b, &consume(&["-o", "end"]), None).await).is_empty());
    assert_eq!(values(&run(b, &consume(&["-o", "-1h"]), None).await).len(), 10, "produced within the hour");
    assert_eq!(values(&run(b, &consume(&["-o", "2001-01-01T00:00:00Z"]), None).await).len(), 10);
    let one = run(b, &consume(&["-o", "9"]), None).await;
    assert_eq!(stderr(&one).trim(), "consumed 1 record", "singular");

    // Outside the log: said on stderr, with what was done instead; not a silent replay from 0.
    let past = run(b, &consume(&["-o", "100"]), None).await;
    assert!(values(&past).is_empty());
    assert_eq!(
        stderr(&past).lines().collect::<Vec<_>>(),
        ["positions-0: offset 100 is past the end (10): starting at the end", "consumed 0 records"]
    );
    let future = run(b, &consume(&["-o", "2999-01-01T00:00:00Z"]), None).await;
    assert!(values(&future).is_empty());
    assert!(
        stderr(&future).starts_with("positions-0: no record at or after 2999-01-01T00:00:00.000Z"),
        "{}",
        stderr(&future)
    );
    one_error_line(&run(b, &consume(&["-o", "yesterday"]), None).await, 2, "yesterday");
    let group_offset = run(b, &["consume", "positions", "-g", "g", "-o", "-3"], None).await;
    one_error_line(&group_offset, 2, "only -o beginning or end");
}

/// The JSON lines of `consume <topic> -e -f json`.
async fn consumed_json(b: &str, topic: &str) -> Vec<serde_json::Value> {
    let output = run(b, &["consume", topic, "-e", "-f", "json"], None).await;
    stdout(&output).lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// Tombstones, headers (common and per line), timestamps, hex and base64, and refusals.
async fn check_produce(b: &str) {
    stdout(&run(b, &["topic", "create", "users", "-p", "1", "-c", "cleanup.policy=compact"], None).await);
    stdout(&run(b, &["produce", "users", "-K", "=", "-Z"], Some(b"alice=1\nalice=\n")).await);
    let records = consumed_json(b, "users").await;
    assert_eq!(records.len(), 2);
    assert_eq!((&records[1]["key"], &records[1]["value"]), (&"alice".into(), &serde_json::Value::Null), "a tombstone");
    stdout(&run(b, &["produce", "users", "-K", "="], Some(b"bob=\n")).await);
    assert_eq!(consumed_json(b, "users").await[2]["value"], "", "without -Z an empty value is empty, not null");

    stdout(&run(b, &["topic", "create", "formatted", "-p", "1"], None).await);
    let line = b"1700000000000 k1 v 1;src=web,trace\n";
    let args = ["produce", "formatted", "-f", "%t %k %v;%h", "-H", "src=cli", "-H", "env=test"];
    stdout(&run(b, &args, Some(line)).await);
    let records = consumed_json(b, "formatted").await;
    assert_eq!(records[0]["timestamp"], 1_700_000_000_000_i64);
    assert_eq!((&records[0]["key"], &records[0]["value"]), (&"k1".into(), &"v 1".into()));
    let headers = serde_json::json!({"env": "test", "src": "web", "trace": null});
    assert_eq!(records[0]["headers"], headers, "the line's src replaces -H src");

    // Binary keys and values: bytes 0x00 0xff, and a newline and carriage return.
    stdout(&run(b, &["topic", "create", "raw", "-p", "1"], None).await);
    stdout(&run(b, &["produce", "raw", "-K", " ", "--encoding", "hex"], Some(b"00ff 0a0d\n")).await);
    stdout(&run(b, &["produce", "raw", "-f", "%k %v", "--encoding", "base64"], Some(b"AP8= Cg0=\n")).await);
    let raw = run(b, &["consume", "raw", "-e", "-f", "key-value", "--key-separator", "|"], None).await;
    assert_eq!(raw.stdout, b"\x00\xff|\n\r\n\x00\xff|\n\r\n", "{raw:?}");
    // A round trip: what consume writes with a format string and an encoding, produce reads.
    let hex = run(b, &["consume", "raw", "-e", "-f", "%k %v", "--encoding", "hex"], None).await;
    assert_eq!(stdout(&hex), "00ff 0a0d\n00ff 0a0d\n");
    stdout(&run(b, &["topic", "create", "raw-copy", "-p", "1"], None).await);
    stdout(&run(b, &["produce", "raw-copy", "-f", "%k %v", "--encoding", "hex"], Some(&hex.stdout)).await);
    let copy = run(b, &["consume", "raw-copy", "-e", "-f", "key-value", "--key-separator", "|"], None).await;
    assert_eq!(copy.stdout, raw.stdout, "the same bytes");
    let placed = stdout(&run(b, &["consume", "raw", "-e", "-f", "%T/%p@%o"], None).await);
    assert_eq!(placed, "raw/0@0\nraw/0@1\n");

    // A line that does not fit stops the command with its number; the lines before it are in.
    let bad = run(b, &["produce", "raw", "-f", "%k=%v"], Some(b"a=1\nno separator\nb=2\n")).await;
    one_error_line(&bad, 1, "line 2: no \"=\" after the Key field (1 record(s) before it were produced)");
    assert_eq!(consumed_json(b, "raw").await.len(), 3);
    one_error_line(&run(b, &["produce", "raw", "-f", "%k"], Some(b"x\n")).await, 2, "--format: the format needs %v");
    one_error_line(
        &run(b, &["produce", "raw", "--max-request-size", "100"], Some(b"x\n")).await,
        2,
        "at least 256 bytes",
    );
    let large = vec![b'x'; 4096];
    let too_large = run(b, &["produce", "raw", "--max-request-size", "1024"], Some(&large)).await;
    one_error_line(&too_large, 1, "--max-request-size");
    assert!(stderr(&too_large).contains("max.request.size"), "{}", stderr(&too_large));
}

// Goal: `consume` and `produce` behave as kcat/rpk users expect (positions, -e, stderr notes
// and summary; tombstones, headers, format strings, binary input, the size limit by name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_positions_and_produce_formats_like_kcat() {
    let broker = InProcessBroker::start().await;
    let b = broker.bootstrap.clone();
    check_positions(&b).await;
    check_produce(&b).await;
    broker.stop().await;
}

/// The partition count `topic describe --json` reports.
async fn partition_count(b: &str, topic: &str) -> usize {
    let described: serde_json::Value =
        serde_json::from_str(&stdout(&run(b, &["topic", "describe", topic, "--json"], None).await)).unwrap();
    described["partitions"].as_array().unwrap().len()
}

// Goal: topic commands respect the broker and scripts: create without -p/-r takes the broker's
// num.partitions (3 here), alter with one bad change applies none, delete takes several names,
// and list/describe/status/health print JSON with log offsets and config sources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_take_broker_defaults_validate_alters_and_print_json() {
    let broker = InProcessBroker::start_with(|config| config.defaults.partitions = 3).await;
    let b = broker.bootstrap.clone();
    let b = b.as_str();
    let created = stdout(&run(b, &["topic", "create", "defaults"], None).await);
    assert_eq!(created.trim(), "created topic defaults with 3 partition(s), replication factor 1");
    assert_eq!(partition_count(b, "defaults").await, 3);

    let half = run(b, &["topic", "alter", "defaults", "-p", "5", "--set", "retention.ms=soon"], None).await;
    one_error_line(&half, 1, "retention.ms");
    assert_eq!(partition_count(b, "defaults").await, 3, "no partitions added before the bad config was refused");
    stdout(&run(b, &["topic", "alter", "defaults", "-p", "5", "--set", "retention.ms=60000"], None).await);
    assert_eq!(partition_count(b, "defaults").await, 5);

    stdout(&run(b, &["produce", "defaults", "-p", "1"], Some(b"a\nb\n")).await);
    let described: serde_json::Value =
        serde_json::from_str(&stdout(&run(b, &["topic", "describe", "defaults", "--json"], None).await)).unwrap();
    let partition1 = &described["partitions"][1];
    assert_eq!((&partition1["log_start_offset"], &partition1["log_end_offset"]), (&0.into(), &2.into()), "{described}");
    // Sizes from DescribeLogDirs: the partition with two records holds more than the empty one.
    let size = |p: usize| described["partitions"][p]["size_bytes"].as_u64().expect("size_bytes");
    assert!(size(1) > size(0), "{described}");
    let configs = described["configs"].as_array().unwrap();
    let source = |name: &str| configs.iter().find(|c| c["name"] == name).map(|c| c["source"].clone()).unwrap();
    assert_eq!(source("retention.ms"), "TOPIC_CONFIG");
    assert_ne!(source("segment.bytes"), "TOPIC_CONFIG", "every config, with its source");
    let text = stdout(&run(b, &["topic", "describe", "defaults"], None).await);
    assert!(text.contains("offsets 0..2") && text.contains("retention.ms=60000  (TOPIC_CONFIG)"), "{text}");

    let listed = stdout(&run(b, &["topic", "list", "--json"], None).await);
    let topic: serde_json::Value =
        serde_json::from_str(listed.lines().find(|l| l.contains("defaults")).unwrap()).unwrap();
    assert_eq!(topic, serde_json::json!({"topic": "defaults", "partitions": 5, "internal": false}));
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&run(b, &["cluster", "status", "--json"], None).await)).unwrap();
    assert_eq!(status["controller"], 1);
    let health = run(b, &["cluster", "health", "--json"], None).await;
    assert_eq!(stdout(&health).trim(), r#"{"healthy":true,"problems":[]}"#);

    stdout(&run(b, &["topic", "create", "old-a", "-p", "1"], None).await);
    stdout(&run(b, &["topic", "create", "old-b", "-p", "1"], None).await);
    let typo = run(b, &["topic", "delete", "old-a", "old-c", "old-b"], None).await;
    one_error_line(&typo, 1, "unknown topic(s) [\"old-c\"]: nothing deleted");
    let deleted = stdout(&run(b, &["topic", "delete", "old-a", "old-b"], None).await);
    assert_eq!(deleted, "deleted topic old-a\ndeleted topic old-b\n");
    let names = stdout(&run(b, &["topic", "list"], None).await);
    assert!(!names.lines().any(|name| name.starts_with("old-")), "{names}");
    broker.stop().await;
}

// Goal: `cluster health` is a verdict a script can use: "healthy" and exit 0, or "unhealthy",
// the reasons and exit 1. Method: a file stands where a partition's directory must be created,
// so that replica fails to open (offline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_health_is_a_verdict_with_an_exit_code() {
    let broker = InProcessBroker::start().await;
    let b = broker.bootstrap.clone();
    let healthy = run(&b, &["cluster", "health"], None).await;
    assert_eq!(stdout(&healthy), "healthy\n");
    let logs = broker.data.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("blocked-0"), b"in the way").unwrap();
    stdout(&run(&b, &["topic", "create", "blocked"], None).await);
    let unhealthy = run(&b, &["cluster", "health"], None).await;
    assert_eq!(unhealthy.status.code(), Some(1), "{unhealthy:?}");
    let text = String::from_utf8(unhealthy.stdout.clone()).unwrap();
    assert!(text.starts_with("unhealthy\n") && text.contains("blocked-0: offline replicas on brokers [1]"), "{text}");
    assert!(unhealthy.stderr.is_empty(), "the verdict is the output: {:?}", stderr(&unhealthy));
    broker.stop().await;
}

// Goal: `sluice consume ... | head -1` ends quietly: exit 0, no error line. Method: 20,000
// records of 100 bytes (more than a pipe holds), one line read, the pipe closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_is_not_an_error() {
    let broker = InProcessBroker::start().await;
    let b = broker.bootstrap.clone();
    stdout(&run(&b, &["bench", "produce", "-t", "many", "-n", "20000", "-s", "100"], None).await);
    let bootstrap = b.clone();
    let (status, error) = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["--bootstrap", &bootstrap, "consume", "many", "-e"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = Vec::new(); // bench values are not text
        BufReader::new(child.stdout.take().unwrap()).read_until(b'\n', &mut first).unwrap();
        assert!(!first.is_empty());
        let output = child.wait_with_output().unwrap(); // stdout was dropped: closed
        (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?} {error}");
    assert_completions_survive_a_closed_pipe();
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines.len(), 1, "{error}");
    assert!(lines[0].starts_with("consumed ") && !lines[0].contains("consumed 20000"), "{error}");
    broker.stop().await;
}

/// `sluice completions bash` with its stdout closed before it writes (the script would fit in
/// a pipe's buffer, so reading a line first would race): exit 0, nothing on stderr.
fn assert_completions_survive_a_closed_pipe() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success() && output.stderr.is_empty(), "{output:?}");
}

// Goal: help a user finds without a manual: every command's --help ends with examples, a
// mistyped subcommand keeps clap's "did you mean" tip on the one error line, completions exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_has_examples_typos_get_tips_and_completions_exist() {
    let nowhere = "127.0.0.1:1";
    for command in ["topic", "produce", "consume", "group", "cluster", "bench", "completions"] {
        let help = run(nowhere, &[command, "--help"], None).await;
        assert!(stdout(&help).contains("\nExamples:\n  "), "{command} --help: {}", stdout(&help));
    }
    one_error_line(&run(nowhere, &["topic", "lst"], None).await, 2, "tip: a similar subcommand exists: 'list'");
    let bash = stdout(&run(nowhere, &["completions", "bash"], None).await);
    assert!(bash.contains("_sluice()") && bash.contains("reset-offsets"), "{}", &bash[..bash.len().min(300)]);
    assert!(sorted_lines(&run(nowhere, &["completions", "fish"], None).await)
        .iter()
        .any(|l| l.contains("complete -c sluice")));
}
