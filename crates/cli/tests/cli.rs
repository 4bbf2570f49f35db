//! The `sluice` binary as a user runs it: produce from stdin and consume back (value,
//! key/value, JSON), topic commands, consumer groups (resume, lag, offset resets), and human
//! errors — an unknown topic, an unreachable broker, a group with active members and bad
//! arguments each give one line on stderr and a non-zero exit code, no backtrace.
//!
//! Method: a real broker in-process on ephemeral ports; the compiled `sluice` binary run as a
//! child process (blocking, on a separate thread from the broker's runtime).

mod common;

use std::time::Duration;

use common::{one_error_line, run, stdout, InProcessBroker};
use sluice_client::{ClientConfig, Cluster, Consumer, ConsumerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_topics_and_human_errors() {
    let broker = InProcessBroker::start().await;
    let bootstrap = broker.bootstrap.clone();

    let b = bootstrap.as_str();
    assert!(stdout(&run(b, &["topic", "create", "lines", "-p", "2", "-c", "retention.ms=60000"], None).await)
        .contains("created topic lines"));
    stdout(&run(b, &["produce", "lines", "-K", "=", "-H", "origin=test"], Some(b"a=1\nb=2\nc=3\n")).await);
    let values = stdout(&run(b, &["consume", "lines", "--from", "beginning", "-n", "3"], None).await);
    let mut values: Vec<&str> = values.lines().collect();
    values.sort();
    assert_eq!(values, ["1", "2", "3"]);
    let pairs = stdout(&run(b, &["consume", "lines", "--from", "beginning", "-n", "3", "-f", "key-value"], None).await);
    let mut pairs: Vec<&str> = pairs.lines().collect();
    pairs.sort();
    assert_eq!(pairs, ["a\t1", "b\t2", "c\t3"]);
    let json = stdout(
        &run(
            b,
            &["consume", "lines", "--from", "offset:0", "-p", "0", "-f", "json", "--idle-timeout-ms", "1000"],
            None,
        )
        .await,
    );
    assert!(!json.is_empty());
    assert!(
        json.lines().all(|line| line.contains("\"headers\":{\"origin\":\"test\"}") && line.contains("\"partition\":0")),
        "{json}"
    );
    let described = stdout(&run(b, &["topic", "describe", "lines"], None).await);
    assert!(described.contains("partitions 2") && described.contains("retention.ms=60000"), "{described}");
    // Each replica's lag behind its leader, from the replica's own log end (one replica here).
    assert!(described.contains("under-replicated 0") && described.contains("lag 1:0"), "{described}");
    stdout(&run(b, &["topic", "alter", "lines", "-p", "3", "--set", "cleanup.policy=compact"], None).await);
    assert!(stdout(&run(b, &["topic", "describe", "lines"], None).await).contains("cleanup.policy=compact"));
    assert!(stdout(&run(b, &["topic", "list"], None).await).lines().any(|line| line == "lines"));
    assert!(stdout(&run(b, &["cluster", "status"], None).await).contains("controller 1"));
    let bench = stdout(&run(b, &["bench", "produce", "-t", "bench", "-n", "2000", "-s", "100", "--json"], None).await);
    assert!(bench.contains("\"records\":2000") && bench.contains("\"p99_ms\""), "{bench}");
    let bench = stdout(&run(b, &["bench", "consume", "-t", "bench"], None).await);
    assert!(bench.contains("consume: 2000 records"), "{bench}");
    stdout(&run(b, &["topic", "delete", "lines"], None).await);

    one_error_line(&run(b, &["consume", "no-such-topic"], None).await, 1, "unknown topic \"no-such-topic\"");
    one_error_line(&run(b, &["produce", "no-such-topic"], Some(b"x\n")).await, 1, "unknown topic");
    one_error_line(&run(b, &["topic", "create", "bench"], None).await, 1, "already exists");
    one_error_line(&run(b, &["consume", "bench", "-o", "sideways"], None).await, 2, "sideways");
    one_error_line(&run(b, &["topic", "frobnicate"], None).await, 2, "frobnicate");
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = unused.local_addr().unwrap().to_string();
    drop(unused);
    one_error_line(&run(&nowhere, &["topic", "list"], None).await, 1, "no broker reachable");

    broker.stop().await;
}

/// The cells of the `orders` rows of a table.
fn rows(table: &str) -> Vec<Vec<String>> {
    let row = |line: &str| line.split_whitespace().map(String::from).collect();
    table.lines().filter(|line| line.starts_with("orders ")).map(row).collect()
}

/// The NEW-OFFSET column of a `group reset-offsets` table.
fn new_offsets(table: &str) -> Vec<i64> {
    rows(table).iter().map(|cells| cells[3].parse().unwrap()).collect()
}

/// Two runs of `consume --group`: the second resumes where the first committed.
async fn check_consume_resumes(b: &str) {
    let lines: String = (0..10).map(|i| format!("k{i}=v{i}\n")).collect();
    stdout(&run(b, &["produce", "orders", "-K", "="], Some(lines.as_bytes())).await);
    let first = stdout(&run(b, &[&GROUP_CONSUME[..], &["4"]].concat(), None).await);
    let second = stdout(&run(b, &[&GROUP_CONSUME[..], &["6"]].concat(), None).await);
    assert_eq!((first.lines().count(), second.lines().count()), (4, 6));
    let mut values: Vec<&str> = first.lines().chain(second.lines()).collect();
    values.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(values, expected, "the second run resumed where the first committed: nothing twice, nothing lost");
    assert!(stdout(&run(b, &["group", "list"], None).await).lines().any(|line| line.starts_with("g1 ")));
}

/// `group describe` after three more records: a lag of 3 in all, each row end - committed.
async fn check_describe_shows_lag(b: &str) {
    stdout(&run(b, &["produce", "orders", "-K", "="], Some(b"k1=late\nk2=later\nk3=latest\n")).await);
    let described = stdout(&run(b, &["group", "describe", "g1"], None).await);
    assert!(described.contains("state Empty") && described.contains("total lag 3"), "{described}");
    let table = rows(&described);
    assert_eq!(table.len(), 2, "{described}");
    for cells in &table {
        let [committed, end, lag] = [&cells[2], &cells[3], &cells[4]].map(|cell| cell.parse::<i64>().unwrap());
        assert_eq!(end - committed, lag, "{described}");
        // Lag in seconds: the age of the first unconsumed record (produced moments ago, with
        // the client's clock), 0 where the group is caught up.
        let seconds: f64 = cells[5].parse().unwrap();
        assert!(if lag == 0 { seconds == 0.0 } else { (0.0..600.0).contains(&seconds) }, "{described}");
    }
    assert!(described.contains(", max lag "), "{described}");
    let json = stdout(&run(b, &["group", "describe", "g1", "--json"], None).await);
    assert!(json.starts_with("{\"group\":\"g1\",\"state\":\"Empty\"") && json.contains("\"lag\":"), "{json}");
    assert!(json.contains("\"lag_seconds\":"), "{json}");
}

/// Resets to the earliest offsets (then all 13 records are read again), shifted back by one,
/// to an RFC 3339 time before every record and to an epoch-ms time after them.
async fn check_resets(b: &str) {
    let reset = ["group", "reset-offsets", "g1", "-t", "orders"];
    let with = |extra: &[&'static str]| [&reset[..], extra].concat();
    assert_eq!(new_offsets(&stdout(&run(b, &with(&["--to-earliest"]), None).await)), [0, 0]);
    let all = stdout(&run(b, &[&GROUP_CONSUME[..], &["13"]].concat(), None).await);
    assert_eq!(all.lines().count(), 13, "read again from the earliest offsets");
    let ends: Vec<i64> = rows(&stdout(&run(b, &["group", "describe", "g1"], None).await))
        .iter()
        .map(|cells| cells[3].parse().unwrap())
        .collect();
    let shifted = new_offsets(&stdout(&run(b, &with(&["--shift-by", "-1"]), None).await));
    assert_eq!(shifted, ends.iter().map(|end| end - 1).collect::<Vec<i64>>());
    let old = stdout(&run(b, &with(&["--to-datetime", "2001-01-01T00:00:00Z"]), None).await);
    assert_eq!(new_offsets(&old), [0, 0], "{old}");
    let late = stdout(&run(b, &with(&["--to-datetime", "4102444800000"]), None).await);
    assert_eq!(new_offsets(&late), ends, "epoch ms after every record: the log end");
    let dry = stdout(&run(b, &with(&["--to-earliest", "--dry-run", "--json"]), None).await);
    assert!(dry.contains("\"dry_run\":true") && dry.contains("\"offset\":0}"), "{dry}");
    assert_eq!(
        new_offsets(&stdout(&run(b, &with(&["--shift-by", "0"]), None).await)),
        ends,
        "a dry run commits nothing"
    );
}

/// Kafka's selections and targets: one partition (`orders:1`), `--all-topics`, `--to-current`,
/// `--by-duration`, a warning on stderr for each target clamped into the log, and an unknown
/// partition refused. The group's offsets are at the log ends when this starts.
async fn check_kafka_style_resets(b: &str) {
    let reset = |extra: &[&'static str]| [&["group", "reset-offsets", "g1"][..], extra].concat();
    let ends: Vec<i64> = rows(&stdout(&run(b, &["group", "describe", "g1"], None).await))
        .iter()
        .map(|cells| cells[3].parse().unwrap())
        .collect();
    let one = stdout(&run(b, &reset(&["-t", "orders:1", "--to-offset", "0"]), None).await);
    assert_eq!((rows(&one).len(), rows(&one)[0][1].as_str(), new_offsets(&one)), (1, "1", vec![0]), "{one}");
    let current = stdout(&run(b, &reset(&["--all-topics", "--to-current"]), None).await);
    assert_eq!(new_offsets(&current), [ends[0], 0], "only partition 1 moved: {current}");
    let hour = stdout(&run(b, &reset(&["--all-topics", "--by-duration", "PT1H"]), None).await);
    assert_eq!(new_offsets(&hour), [0, 0], "every record is younger than an hour: {hour}");
    let far = run(b, &reset(&["--all-topics", "--to-offset", "1000"]), None).await;
    assert_eq!(new_offsets(&stdout(&far)), ends);
    let warnings: Vec<String> = String::from_utf8_lossy(&far.stderr).lines().map(String::from).collect();
    let expected: Vec<String> = (0..2)
        .map(|partition| {
            format!("warning: orders-{partition}: offset 1000 is past the log end: reset to {}", ends[partition])
        })
        .collect();
    assert_eq!(warnings, expected);
    one_error_line(&run(b, &reset(&["-t", "orders:7", "--to-earliest"]), None).await, 1, "has no partition 7");
}

/// With a member active, reset and delete are refused: one line, exit code 1.
async fn check_refused_while_active(b: &str) {
    let mut config = ClientConfig::new(b);
    config.client_id = "test-member".to_string();
    let member_config = ConsumerConfig {
        group_id: Some("g1".to_string()),
        session_timeout: Duration::from_secs(3),
        max_poll_interval: Duration::from_secs(10),
        ..ConsumerConfig::default()
    };
    let mut member = Consumer::new(Cluster::connect(config).await.unwrap(), member_config);
    member.subscribe(["orders"]).await.unwrap();
    while member.assignment().is_empty() {
        member.poll(Duration::from_millis(200)).await.unwrap();
    }
    let refused = run(b, &["group", "reset-offsets", "g1", "--topic", "orders", "--to-latest"], None).await;
    one_error_line(&refused, 1, "active member");
    one_error_line(&run(b, &["group", "delete", "g1"], None).await, 1, "active member");
    assert!(stdout(&run(b, &["group", "describe", "g1"], None).await).contains("client test-member"));
    member.close().await.unwrap();
}

/// `consume --group` of the `orders` topic from the beginning (for partitions without a
/// commit); the record count follows.
const GROUP_CONSUME: [&str; 7] = ["consume", "orders", "--group", "g1", "--from", "beginning", "-n"];

/// Consumer groups from the command line: `consume --group` commits what it printed and the
/// next run resumes there; `group describe` shows each partition's committed offset, log end
/// and lag; `group reset-offsets` moves the offsets of topics, partitions or all the group's
/// topics, warning about clamped targets (and is refused, one line, exit 1, while a
/// member is active); `group list` and `group delete`; bad combinations exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_resume_describe_lag_reset_and_delete() {
    let broker = InProcessBroker::start().await;
    let bootstrap = broker.bootstrap.clone();
    let b = bootstrap.as_str();
    stdout(&run(b, &["topic", "create", "orders", "-p", "2"], None).await);
    check_consume_resumes(b).await;
    check_describe_shows_lag(b).await;
    check_resets(b).await;
    check_kafka_style_resets(b).await;
    check_refused_while_active(b).await;

    one_error_line(&run(b, &["group", "reset-offsets", "g1", "--topic", "orders"], None).await, 2, "--to-earliest");
    let both = ["group", "reset-offsets", "g1", "-t", "orders", "--to-earliest", "--to-latest"];
    one_error_line(&run(b, &both, None).await, 2, "--to-latest");
    let bad = ["consume", "orders", "--group", "g1", "--from", "offset:3"];
    one_error_line(&run(b, &bad, None).await, 2, "--group");
    assert_eq!(stdout(&run(b, &["group", "delete", "g1"], None).await).trim(), "deleted group g1");
    assert!(!stdout(&run(b, &["group", "list"], None).await).lines().any(|line| line.starts_with("g1 ")));
    one_error_line(&run(b, &["group", "describe", "g1"], None).await, 1, "does not exist");
    one_error_line(&run(b, &["group", "delete", "g1"], None).await, 1, "GroupIdNotFound");

    broker.stop().await;
}

// Goal: `sluice cluster status` shows a replica that failed to open on its broker (issue 18:
// it used to look healthy while the partition answered NOT_LEADER_OR_FOLLOWER). Method: a
// file stands where the partition's directory must be created; after `topic create` the
// status names the partition and broker as offline, and a healthy topic as not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_names_a_replica_that_failed_to_open() {
    let broker = InProcessBroker::start().await;
    let b = broker.bootstrap.clone();
    let logs = broker.data.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("blocked-0"), b"in the way").unwrap();
    stdout(&run(&b, &["topic", "create", "blocked"], None).await);
    stdout(&run(&b, &["topic", "create", "healthy"], None).await);
    let status = stdout(&run(&b, &["cluster", "status"], None).await);
    let line = |topic: &str| status.lines().find(|line| line.trim_start().starts_with(topic)).unwrap().to_string();
    assert!(line("blocked").ends_with("offline replicas [0@1]"), "{status}");
    assert!(!line("healthy").contains("offline"), "{status}");
    assert!(status.contains("offline replicas 1 "), "{status}");
    broker.stop().await;
}

// Goal: `sluice cluster elect-leaders` speaks ElectLeaders and prints one line per partition.
// Method: one broker leads every partition already, so every election is "not needed"; an
// unknown partition is a failure (exit code 1, the broker's error on its line); without
// --topic nothing needs an election. Elections that move leaders: tests/cluster/test_elections.py.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_elect_leaders_reports_each_partition() {
    let broker = InProcessBroker::start().await;
    let b = broker.bootstrap.clone();
    stdout(&run(&b, &["topic", "create", "elected", "-p", "2"], None).await);
    let all = stdout(&run(&b, &["cluster", "elect-leaders"], None).await);
    assert_eq!(all.trim(), "no partition needed an election", "{all}");
    let some = stdout(&run(&b, &["cluster", "elect-leaders", "--topic", "elected"], None).await);
    assert_eq!(some.lines().count(), 2, "{some}");
    assert!(some.lines().all(|l| l.contains("not needed")), "{some}");
    let missing =
        run(&b, &["cluster", "elect-leaders", "--type", "unclean", "--topic", "elected", "--partition", "5"], None)
            .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stdout).contains("elected/5  failed: error 3"), "{missing:?}");
    broker.stop().await;
}

/// The JSON lines of a `bench … --json` run, parsed.
fn json_lines(output: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(output).lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))).collect()
}

// Goal: the fixed-rate and end-to-end benchmarks run against a real broker, count exactly the
// records their schedule holds and print their result lines with percentiles; `--rate-of-max`
// prints the full-speed probe before the fixed-rate line. Method: a broker in this process,
// short runs (a second or less) of the compiled binary; no assertion on any time or rate
// measured (this machine is shared), only on counts, names and the shape of the lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_and_end_to_end_benchmarks_count_their_schedule() {
    let broker = InProcessBroker::start().await;
    let b = broker.bootstrap.clone();
    let keys = ["records_per_s", "mb_per_s", "p50_ms", "p99_ms", "p999_ms", "max_ms", "elapsed_s"];
    let has_numbers = |line: &serde_json::Value| keys.iter().all(|key| line[key].is_number());

    // 2,000 records/s for 0.5 s is 1,000 records on the schedule, split over two producers.
    let fixed = run(
        &b,
        &["bench", "produce", "-t", "fixed", "--rate", "2000", "--duration", "0.5", "--producers", "2", "--json"],
        None,
    )
    .await;
    let lines = json_lines(&fixed);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!((line["benchmark"].as_str(), line["records"].as_u64()), (Some("produce"), Some(1000)), "{line}");
    assert_eq!(
        (line["target_records_per_s"].as_u64(), line["latency"].as_str()),
        (Some(2000), Some("ack-from-intended"))
    );
    assert_eq!(line["bytes"].as_u64(), Some(100_000));
    assert!(has_numbers(line) && line.get("load_percent").is_none(), "{line}");

    // The text form of the same kind of run: one line, the target and the four percentiles.
    let text =
        stdout(&run(&b, &["bench", "produce", "-t", "fixed", "--rate", "1000", "-n", "200", "-s", "10"], None).await);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("produce at 1000 records/s: 200 records, 2000 bytes in "), "{text}");
    assert!(
        ["ack-from-intended latency p50 ", " ms, p99 ", " ms, p99.9 ", " ms, max "]
            .iter()
            .all(|part| text.contains(part)),
        "{text}"
    );

    // Unbounded runs report the same percentiles, from the call to send.
    let unbounded = json_lines(&run(&b, &["bench", "produce", "-t", "fixed", "-n", "500", "--json"], None).await);
    assert_eq!((unbounded[0]["records"].as_u64(), unbounded[0]["latency"].as_str()), (Some(500), Some("ack")));
    assert!(unbounded[0].get("target_records_per_s").is_none() && has_numbers(&unbounded[0]));

    // End-to-end: every produced record consumed once (the topic already holds the runs above,
    // which the consumer skips: it starts at the end).
    let e2e = json_lines(
        &run(&b, &["bench", "end-to-end", "-t", "fixed", "--rate", "1000", "-n", "300", "-s", "64", "--json"], None)
            .await,
    );
    assert_eq!(e2e.len(), 1, "{e2e:?}");
    assert_eq!((e2e[0]["benchmark"].as_str(), e2e[0]["records"].as_u64()), (Some("end-to-end"), Some(300)), "{e2e:?}");
    assert_eq!(e2e[0]["latency"].as_str(), Some("produce-to-consume"));
    assert!(has_numbers(&e2e[0]), "{e2e:?}");

    // --rate-of-max: the probe line, then the fixed-rate line at that share of the probe.
    let of_max = json_lines(
        &run(
            &b,
            &[
                "bench",
                "produce",
                "-t",
                "fixed",
                "--rate-of-max",
                "10",
                "--probe-secs",
                "0.5",
                "--duration",
                "0.5",
                "--json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(of_max.len(), 2, "{of_max:?}");
    assert_eq!(of_max[0]["benchmark"].as_str(), Some("produce-max"));
    assert_eq!((of_max[1]["benchmark"].as_str(), of_max[1]["load_percent"].as_u64()), (Some("produce"), Some(10)));
    let probed = of_max[0]["records_per_s"].as_f64().unwrap();
    let target = of_max[1]["target_records_per_s"].as_f64().unwrap();
    assert!((target - probed / 10.0).abs() <= 1.0, "10% of {probed} is not {target}");
    let scheduled = of_max[1]["records"].as_f64().unwrap();
    assert!((scheduled - target / 2.0).abs() <= 1.0, "{of_max:?}");

    one_error_line(&run(&b, &["bench", "end-to-end", "-t", "fixed", "-n", "10"], None).await, 1, "fixed rate");
    one_error_line(&run(&b, &["bench", "produce", "--rate", "0"], None).await, 2, "--rate");
    broker.stop().await;
}

// Goal: `sluice quota set|remove|list` as an operator uses it: a client-id quota and a
// default-user quota set, listed as a table and as JSON (the default as null), one key removed,
// the last key removed deleting the entity; no entity named is a usage error (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_set_list_and_remove() {
    let broker = InProcessBroker::start().await;
    let b = broker.bootstrap.as_str();
    let set = ["quota", "set", "--client-id", "app", "--producer-byte-rate", "1048576", "--consumer-byte-rate", "2048"];
    assert!(stdout(&run(b, &set, None).await).contains("set quotas of /clients/app"));
    stdout(&run(b, &["quota", "set", "--default-user", "--producer-byte-rate", "5000000"], None).await);
    let table = stdout(&run(b, &["quota", "list"], None).await);
    let rows: Vec<Vec<&str>> = table.lines().skip(1).map(|line| line.split_whitespace().collect()).collect();
    assert!(rows.contains(&vec!["-", "app", "1048576", "2048", "-"]), "{table}");
    assert!(rows.contains(&vec!["<default>", "-", "5000000", "-", "-"]), "{table}");
    let json = stdout(&run(b, &["quota", "list", "--json"], None).await);
    assert!(json.contains(r#"{"user":null,"values":{"producer_byte_rate":5000000.0}}"#), "{json}");
    stdout(&run(b, &["quota", "remove", "--client-id", "app", "--consumer-byte-rate"], None).await);
    stdout(&run(b, &["quota", "remove", "--default-user", "--producer-byte-rate"], None).await);
    let table = stdout(&run(b, &["quota", "list"], None).await);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.contains("1048576") && !table.contains("2048") && !table.contains("<default>"), "{table}");
    one_error_line(&run(b, &["quota", "set", "--producer-byte-rate", "1"], None).await, 2, "name the entity");
    broker.stop().await;
}
