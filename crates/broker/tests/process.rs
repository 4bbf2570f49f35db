//! `sluice-broker` as an operator runs it: real processes of the built binary, their exit
//! codes and the one line they print when they refuse to start.
//!
//! Method: each test spawns the binary (see `common::process`) on free ports of 127.0.0.1 with
//! a temporary data directory, talks Kafka to it in real bytes (`common::wire`) and reads its
//! admin `/ready`; stderr (the broker's log) is kept in a file and inspected.

mod common;

use common::process::{BrokerProcess, Ports};
use common::wire::{batch_of, create_topic, delete_topic, produce, read_all};
use tokio::net::TcpStream;

/// Log lines that mean a broker found its files damaged or cut them back: none may appear
/// after a clean restart.
const DAMAGE_MARKERS: [&str; 8] = [
    "damaged",
    "truncating",
    "torn",
    "corrupt",
    "unfinished header",
    "lowering it",
    "deleting a segment",
    "rebuilding",
];

fn damage_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|line| DAMAGE_MARKERS.iter().any(|marker| line.contains(marker))).collect()
}

// Goal: a second broker started on a running broker's data directory (other ports, another
// node id, as a second container on a shared volume would be) exits non-zero at once with one
// line naming the holder, and touches nothing: the first broker keeps serving, stops cleanly,
// and restarts with its Raft log and partition intact — no truncation or damage in its log.
// Method: broker 1 creates a topic and acknowledges three batches; broker 2 is started on the
// same directory; its exit status and stderr are checked; broker 1 is read, stopped with
// SIGTERM, restarted on the same ports and read again, and both of its logs are searched for
// damage markers.
#[tokio::test]
async fn a_second_broker_on_a_locked_data_directory_exits_with_one_line_and_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let ports = Ports::free();
    let mut first = BrokerProcess::spawn(1, &data, ports, &temp.path().join("first.log"), &[]);
    first.wait_ready().await;
    let mut stream = TcpStream::connect(ports.kafka_addr()).await.unwrap();
    assert_eq!(create_topic(&mut stream, "kept", 2).await, 0);
    let mut acknowledged = Vec::new();
    for round in 0..3u8 {
        let values = vec![vec![round; 100], vec![round + 10; 100]];
        let (error, base) = produce(&mut stream, "kept", 0, batch_of(&values)).await;
        assert_eq!(error, 0);
        acknowledged.extend(values.into_iter().enumerate().map(|(i, v)| (base + i as i64, v)));
    }
    let expected: Vec<(i64, bytes::Bytes)> =
        acknowledged.into_iter().map(|(offset, value)| (offset, bytes::Bytes::from(value))).collect();

    let second_log = temp.path().join("second.log");
    let mut second = BrokerProcess::spawn(2, &data, Ports::free(), &second_log, &[]);
    let status = second.wait_exit().await;
    assert!(!status.success(), "the second broker must fail, got {status}");
    let stderr = std::fs::read_to_string(&second_log).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got:\n{stderr}");
    let data_text = data.display().to_string();
    assert_eq!(
        lines[0],
        format!("sluice-broker: data directory {data_text} is locked by process {} (node 1)", first.pid())
    );

    assert_eq!(read_all(&mut stream, "kept", 0).await, Ok(expected.clone()));
    drop(stream);
    assert!(first.terminate().await.success(), "clean stop:\n{}", first.log_text());
    let first_log = first.log_text();
    assert!(damage_lines(&first_log).is_empty(), "first run:\n{first_log}");

    let mut restarted = BrokerProcess::spawn(1, &data, ports, &temp.path().join("restarted.log"), &[]);
    restarted.wait_ready().await;
    let mut stream = TcpStream::connect(ports.kafka_addr()).await.unwrap();
    assert_eq!(read_all(&mut stream, "kept", 0).await, Ok(expected));
    let (error, _) = produce(&mut stream, "kept", 1, batch_of(&[b"after restart".to_vec()])).await;
    assert_eq!(error, 0);
    let restarted_log = restarted.log_text();
    assert!(damage_lines(&restarted_log).is_empty(), "restart found damage:\n{restarted_log}");
    assert!(restarted.terminate().await.success());
}

// Goal: a node whose own `--voters` entry is not its `--raft-listen` address is refused at
// start with one line (it used to wait two minutes for a leader and exit "no Raft leader
// known"). Method: start the binary with its voter entry on another port; it must exit
// non-zero well within the registration timeout with exactly one line on stderr.
#[tokio::test]
async fn a_voter_entry_that_is_not_the_raft_listener_is_refused_at_start() {
    let temp = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let elsewhere = common::process::free_port();
    let voters = format!("1@127.0.0.1:{elsewhere}");
    let log = temp.path().join("broker.log");
    let started = std::time::Instant::now();
    let mut broker = BrokerProcess::spawn(1, &temp.path().join("data"), ports, &log, &["--voters", &voters]);
    let status = broker.wait_exit().await;
    assert!(!status.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "refused late: {:?}", started.elapsed());
    let stderr = broker.log_text();
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got:\n{stderr}");
    assert!(
        lines[0].contains(&format!(
            "--voters names node 1 at 127.0.0.1:{elsewhere} but it listens for Raft on 127.0.0.1:{}",
            ports.raft
        )),
        "{}",
        lines[0]
    );
}

// Goal: `/ready` means ready to serve: it stays 503 until every assigned partition is open
// and the Kafka listener is built (it used to answer 200 ~15 ms after start, a second before a
// broker with many partitions answered Metadata). Method: a broker with 300 partitions is
// stopped and restarted; `/ready` is polled from the moment the process starts, and at its
// first 200 the log must already say the partitions were opened and the Kafka listener is
// ready; then every partition takes a produce at once.
#[tokio::test]
async fn ready_waits_until_the_assigned_partitions_are_open() {
    const PARTITIONS: i32 = 300;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let ports = Ports::free();
    let mut broker = BrokerProcess::spawn(1, &data, ports, &temp.path().join("first.log"), &[]);
    broker.wait_ready().await;
    let mut stream = TcpStream::connect(ports.kafka_addr()).await.unwrap();
    assert_eq!(create_topic(&mut stream, "many", PARTITIONS).await, 0);
    drop(stream);
    assert!(broker.terminate().await.success());

    let mut broker = BrokerProcess::spawn(1, &data, ports, &temp.path().join("second.log"), &[]);
    let mut not_ready_answers = 0;
    loop {
        match common::process::http_get(ports.admin_addr(), "/ready").await {
            Some((200, _)) => break,
            Some((503, body)) => {
                assert!(body.starts_with("not ready\n"), "{body}");
                not_ready_answers += 1;
            }
            _ => {}
        }
        assert!(broker.child.try_wait().unwrap().is_none(), "broker exited:\n{}", broker.log_text());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let log = broker.log_text();
    assert!(log.contains(&format!("assigned partitions opened open={PARTITIONS}")), "{log}");
    // (Not "kafka listener ready": `serve` logs it just after `start` returns, a race with this
    // poll; the listener is bound before /ready can answer 200, and the produces below use it.)
    eprintln!("/ready answered 503 {not_ready_answers} times before 200");
    let mut stream = TcpStream::connect(ports.kafka_addr()).await.unwrap();
    for partition in 0..PARTITIONS {
        let (error, _) = produce(&mut stream, "many", partition, batch_of(&[b"x".to_vec()])).await;
        assert_eq!(error, 0, "partition {partition}");
    }
    assert!(broker.terminate().await.success());
}

/// Runs the built binary with `args` and `env`, without starting a broker (a flag that
/// exits at once, or a refusal); its exit status, stdout and stderr.
fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (std::process::ExitStatus, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sluice-broker"));
    command.args(args);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SLUICE_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status, text(output.stdout), text(output.stderr))
}

// Goal: a config file sets what neither a flag nor a SLUICE_* variable sets, a typo in it is
// refused with one line, and --print-config shows each effective value with its source, as a
// file that reads back. Method: the binary with --print-config (it exits before starting).
#[test]
fn a_config_file_sets_what_flags_and_variables_leave_and_print_config_names_sources() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("sluice.toml");
    std::fs::write(&file, "node-id = 7\ndefault_partitions = 6\nlisten = \"127.0.0.1:19092\"\n").unwrap();
    let path = file.to_str().unwrap();
    let env = [("SLUICE_DEFAULT_PARTITIONS", "8")];
    let (status, printed, _) = run_binary(&["--config", path, "--listen", "127.0.0.1:29092", "--print-config"], &env);
    assert!(status.success());
    assert!(printed.contains("node-id = 7  # file\n"), "{printed}");
    assert!(printed.contains("default-partitions = 8  # env SLUICE_DEFAULT_PARTITIONS\n"), "{printed}");
    assert!(printed.contains("listen = \"127.0.0.1:29092\"  # flag\n"), "{printed}");
    assert!(printed.contains("raft-listen = \"127.0.0.1:9093\"  # default\n"), "{printed}");

    // The printed configuration is itself a config file giving the same values.
    let again = temp.path().join("again.toml");
    std::fs::write(&again, &printed).unwrap();
    let (status, reprinted, _) = run_binary(&["--print-config"], &[("SLUICE_CONFIG", again.to_str().unwrap())]);
    assert!(status.success());
    let values =
        |text: &str| text.lines().map(|line| line.split("  #").next().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(values(&reprinted), values(&printed));

    std::fs::write(&file, "node-id = 7\nlisen = \"0.0.0.0:9092\"\n").unwrap();
    let (status, _, stderr) = run_binary(&["--config", path, "--data-dir", temp.path().to_str().unwrap()], &[]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        stderr,
        format!("sluice-broker: config file {path}: lisen is not a setting (see sluice-broker --help)\n")
    );
}

// Goal: `--log-format json` writes one JSON object per line, the first a banner with the
// version, node id, the bound listeners and the data directory; openraft's info lines are off
// by default; a topic created and deleted is one line each; shutdown names each step it waits
// for. Method: a broker started, a topic
// created and deleted over the wire, the broker stopped with SIGTERM and its stderr read.
#[tokio::test]
async fn json_logs_begin_with_a_banner_and_leave_out_openraft_chatter() {
    let temp = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let log = temp.path().join("broker.log");
    let mut broker = BrokerProcess::spawn_with_log_filter(
        1,
        &temp.path().join("data"),
        ports,
        &log,
        &["--log-format", "json"],
        None,
    );
    broker.wait_ready().await;
    let mut stream = TcpStream::connect(ports.kafka_addr()).await.unwrap();
    assert_eq!(create_topic(&mut stream, "logged", 2).await, 0);
    assert_eq!(delete_topic(&mut stream, "logged").await, 0);
    assert!(broker.terminate().await.success());
    let text = broker.log_text();
    let lines_with = |message: &str| text.lines().filter(|line| line.contains(message)).collect::<Vec<_>>();
    let created = lines_with("\"message\":\"created topic\"");
    assert_eq!(created.len(), 1, "{text}");
    assert!(created[0].contains("\"topic\":\"logged\"") && created[0].contains("\"partitions\":2"), "{}", created[0]);
    assert_eq!(lines_with("\"message\":\"deleted topic\"").len(), 1, "{text}");
    // Shutdown says what it waits for, step by step, in order.
    let steps = [
        "kafka listener stopping: waiting for",
        "shutdown: flushing and closing partitions",
        "shutdown: stopping the metadata node",
        "\"broker stopped\"",
    ];
    let positions: Vec<usize> =
        steps.iter().map(|step| text.find(step).unwrap_or_else(|| panic!("no {step:?} in\n{text}"))).collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{steps:?} out of order:\n{text}");
    let first = text.lines().next().unwrap();
    for field in [
        "\"message\":\"sluice-broker starting\"".to_string(),
        format!("\"version\":\"{}\"", env!("CARGO_PKG_VERSION")),
        "\"node_id\":1".to_string(),
        format!("\"kafka\":\"127.0.0.1:{}\"", ports.kafka),
    ] {
        assert!(first.starts_with('{') && first.contains(&field), "{field} in {first}");
    }
    assert!(text.lines().all(|line| line.starts_with('{') && line.ends_with('}')), "{text}");
    assert!(!text.contains("\"target\":\"openraft"), "openraft at warn by default:\n{text}");
}
