//! The `sluice` binary as a user runs it: produce from stdin and consume back (value,
//! key/value, JSON), topic commands, and human errors — an unknown topic, an unreachable
//! broker and bad arguments each give one line on stderr and a non-zero exit code, no
//! backtrace.
//!
//! Method: a real broker in-process on ephemeral ports; the compiled `sluice` binary run as a
//! child process (blocking, on a separate thread from the broker's runtime).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use sluice_broker::{Node, NodeConfig};

fn sluice(bootstrap: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--bootstrap")
        .arg(bootstrap)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

async fn run(bootstrap: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let (bootstrap, args, stdin) =
        (bootstrap.to_string(), args.iter().map(|a| a.to_string()).collect::<Vec<_>>(), stdin.map(<[u8]>::to_vec));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sluice(&bootstrap, &args, stdin.as_deref())
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn one_error_line(output: &Output, code: i32, contains: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.contains(contains), "{stderr:?} should mention {contains:?}");
    assert!(!stderr.contains("backtrace") && !stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_topics_and_human_errors() {
    let temp = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::ephemeral(1, temp.path())).await.unwrap();
    let bootstrap = node.addresses().kafka.to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        node.serve(async {
            let _ = stopped.await;
        })
        .await
        .unwrap()
    });

    let b = bootstrap.as_str();
    assert!(stdout(&run(b, &["topic", "create", "lines", "-p", "2", "-c", "retention.ms=60000"], None).await)
        .contains("created topic lines"));
    stdout(&run(b, &["produce", "lines", "-K", "=", "-H", "origin=test"], Some(b"a=1\nb=2\nc=3\n")).await);
    let values = stdout(&run(b, &["consume", "lines", "--from", "beginning", "-n", "3"], None).await);
    let mut values: Vec<&str> = values.lines().collect();
    values.sort();
    assert_eq!(values, ["1", "2", "3"]);
    let pairs = stdout(&run(b, &["consume", "lines", "--from", "beginning", "-n", "3", "-o", "key-value"], None).await);
    let mut pairs: Vec<&str> = pairs.lines().collect();
    pairs.sort();
    assert_eq!(pairs, ["a\t1", "b\t2", "c\t3"]);
    let json = stdout(
        &run(
            b,
            &["consume", "lines", "--from", "offset:0", "-p", "0", "-o", "json", "--idle-timeout-ms", "1000"],
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
    one_error_line(&run(b, &["consume", "bench", "--from", "sideways"], None).await, 2, "--from");
    one_error_line(&run(b, &["topic", "frobnicate"], None).await, 2, "frobnicate");
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = unused.local_addr().unwrap().to_string();
    drop(unused);
    one_error_line(&run(&nowhere, &["topic", "list"], None).await, 1, "no broker reachable");

    let _ = stop.send(());
    served.await.unwrap();
}
