//! Goal: the README's "first five minutes" block works as written — a new user who pastes it
//! line by line starts a broker, creates a topic, produces keyed lines, consumes them and sees
//! a group's lag, and each command prints what the README says it prints.
//!
//! Method: the block is cut out of `README.md` (the `sh` fence after the
//! `<!-- first-five-minutes -->` marker) and run by one `bash -e`, every line unchanged; the
//! harness only puts an `echo` of a step marker on stdout and stderr before each line, so each
//! command's output can be checked on its own. `sluice` is the binary under test and
//! `sluice-broker` the broker built next to it (or `SLUICE_BROKER_BIN`), both put first on
//! `PATH`. The README uses the broker's default ports (9092, 9093, 9644), so the script runs in
//! a private network namespace (`unshare -rn`, loopback brought up) where they are free however
//! many brokers the machine runs; where namespaces are not allowed the test says SKIPPED.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole block may take this long (a group join waits for its rebalance delay; the health
/// check polls every second).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The marker comment that precedes the block in README.md.
const MARKER: &str = "<!-- first-five-minutes";

/// The commands of the first `sh` fence after [`MARKER`].
fn readme_block(readme: &str) -> Vec<String> {
    let after_marker = &readme[readme.find(MARKER).expect("README.md has the first-five-minutes marker")..];
    let mut lines = after_marker.lines().skip_while(|line| line.trim() != "```sh").skip(1);
    let block: Vec<String> = lines.by_ref().take_while(|line| line.trim() != "```").map(String::from).collect();
    assert!(!block.is_empty(), "an empty first-five-minutes block");
    block
}

/// The broker binary: `SLUICE_BROKER_BIN`, else the one cargo built next to `sluice`.
fn broker_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SLUICE_BROKER_BIN") {
        return PathBuf::from(path);
    }
    let sibling = Path::new(env!("CARGO_BIN_EXE_sluice")).with_file_name("sluice-broker");
    assert!(
        sibling.exists(),
        "no {} (build it with `cargo build -p sluice-broker`, or set SLUICE_BROKER_BIN)",
        sibling.display()
    );
    sibling
}

/// Whether this process may make a user and network namespace with a working loopback.
fn namespaces_allowed() -> bool {
    Command::new("unshare")
        .args(["-rn", "ip", "link", "set", "lo", "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// What one line of the block printed.
#[derive(Debug, Default, Clone)]
struct Step {
    line: String,
    stdout: String,
    stderr: String,
}

/// Splits output at the `@@step N` markers into each step's part.
fn split_steps(output: &str, steps: &mut [Step], into_stdout: bool) {
    let mut current: Option<usize> = None;
    for line in output.lines() {
        if let Some(index) = line.strip_prefix("@@step ") {
            current = index.parse().ok();
            continue;
        }
        if let Some(step) = current.and_then(|index| steps.get_mut(index)) {
            let text = if into_stdout { &mut step.stdout } else { &mut step.stderr };
            text.push_str(line);
            text.push('\n');
        }
    }
}

/// Runs the block; the steps and the script's exit code.
fn run_block(block: &[String], work: &Path, bin: &Path) -> (Vec<Step>, Option<i32>) {
    let mut script = String::new();
    for (index, line) in block.iter().enumerate() {
        script.push_str(&format!("echo '@@step {index}'; echo '@@step {index}' >&2\n{line}\n"));
    }
    std::fs::write(work.join("five-minutes.sh"), script).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut child = std::process::Command::new("unshare")
        .args(["-rn", "bash", "-c", "ip link set lo up && exec bash -e five-minutes.sh"])
        .current_dir(work)
        .env("PATH", path)
        .env_remove("SLUICE_BOOTSTRAP")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(work.join("stdout")).unwrap())
        .stderr(std::fs::File::create(work.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(work.join("broker.log")).unwrap_or_default();
            let stderr = std::fs::read_to_string(work.join("stderr")).unwrap_or_default();
            panic!("the block ran past {SCRIPT_TIMEOUT:?}; stderr:\n{stderr}\nbroker.log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut steps: Vec<Step> = block.iter().map(|line| Step { line: line.clone(), ..Step::default() }).collect();
    split_steps(&std::fs::read_to_string(work.join("stdout")).unwrap(), &mut steps, true);
    split_steps(&std::fs::read_to_string(work.join("stderr")).unwrap(), &mut steps, false);
    (steps, status.code())
}

/// The step whose line starts with `command`.
fn step<'a>(steps: &'a [Step], command: &str) -> &'a Step {
    steps
        .iter()
        .find(|step| step.line.starts_with(command))
        .unwrap_or_else(|| panic!("no README line starts {command:?}"))
}

#[test]
fn readme_first_five_minutes_runs_verbatim() {
    if !namespaces_allowed() {
        eprintln!("SKIPPED: `unshare -rn` (a private network namespace for ports 9092/9093/9644) is not allowed here");
        return;
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let block = readme_block(&readme);
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sluice"), bin.join("sluice")).unwrap();
    std::os::unix::fs::symlink(broker_binary(), bin.join("sluice-broker")).unwrap();

    let (steps, code) = run_block(&block, work.path(), &bin);
    let log = std::fs::read_to_string(work.path().join("broker.log")).unwrap_or_default();
    assert_eq!(code, Some(0), "the block failed: {steps:#?}\nbroker.log:\n{log}");

    let health = step(&steps, "sluice cluster health");
    assert_eq!(health.stdout.lines().last(), Some("healthy"), "{health:#?}");
    let create = step(&steps, "sluice topic create greetings");
    assert_eq!(
        create.stdout.trim(),
        "created topic greetings with 3 partition(s), replication factor 1",
        "{create:#?}"
    );
    let produce = step(&steps, "printf");
    assert!(produce.stderr.contains("produced 4 record(s) to greetings"), "{produce:#?}");

    let consume = step(&steps, "sluice consume greetings -f key-value -e");
    let mut pairs: Vec<&str> = consume.stdout.lines().collect();
    let alice: Vec<&str> = pairs.iter().copied().filter(|pair| pair.starts_with("alice\t")).collect();
    assert_eq!(alice, ["alice\thello", "alice\tbye"], "one key, one partition, in order: {consume:#?}");
    pairs.sort();
    assert_eq!(pairs, ["alice\tbye", "alice\thello", "bob\thi", "carol\they"], "{consume:#?}");
    assert_eq!(consume.stderr.trim(), "consumed 4 records", "{consume:#?}");

    let group_runs: Vec<&Step> =
        steps.iter().filter(|step| step.line.starts_with("sluice consume greetings --group readers")).collect();
    assert_eq!(group_runs.len(), 2, "two runs of the group: {steps:#?}");
    let mut first = group_runs[0].stdout.lines().collect::<Vec<_>>();
    first.sort();
    assert_eq!(first, ["bye", "hello", "hey", "hi"], "{:#?}", group_runs[0]);
    assert_eq!(group_runs[0].stderr.trim(), "consumed 4 records", "{:#?}", group_runs[0]);
    let describe = step(&steps, "sluice group describe readers");
    assert!(describe.stdout.contains("total lag 1"), "{describe:#?}");
    assert_eq!(group_runs[1].stdout, "back\n", "the second run resumes at the commits: {:#?}", group_runs[1]);
    assert_eq!(group_runs[1].stderr.trim(), "consumed 1 record", "{:#?}", group_runs[1]);
    assert!(!log.contains("ERROR"), "the broker logged errors:\n{log}");
}
