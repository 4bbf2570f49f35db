//! Goal: show that acknowledged commands survive a real crash (SIGKILL, no shutdown code runs)
//! of the Raft leader, that the rest elect a new leader within 2 s, and that the crashed node
//! restarts from its files and takes part in the quorum again.
//! Method: three voters run as separate OS processes (this test binary re-executed with the
//! ignored `node_process` test as entry point); the test process joins the group as a learner
//! to watch the applied state, and proposes with the Raft RPC `Propose` request, rotating over
//! the voters and following their "the leader is X" answers. The leader is killed with SIGKILL and restarted on the
//! same port and data directory; then another voter is killed, so that commits need the
//! restarted node.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Child;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use common::*;
use sluice_meta::membership::MembershipChange;
use sluice_meta::membership::MembershipFailure;
use sluice_meta::network::CallError;
use sluice_meta::network::NetworkSwitch;
use sluice_meta::network::PeerClient;
use sluice_meta::rpc::ForwardError;
use sluice_meta::rpc::RpcRequest;
use sluice_meta::rpc::RpcResponse;
use sluice_meta::Command;
use sluice_meta::CommandOutcome;
use sluice_meta::MetaConfig;
use sluice_meta::MetaNode;
use sluice_meta::NodeId;

/// Environment variable carrying a child node's configuration: `id|voters|data dir`.
const NODE_ENV: &str = "SLUICE_META_CRASH_TEST_NODE";

/// Entry point of the node processes, not a test: ignored so that it only runs when the crash
/// test starts it with `--ignored --exact node_process` and the configuration in
/// [`NODE_ENV`]; run by hand without that variable it returns at once.
#[test]
#[ignore = "entry point of the node processes the crash test spawns"]
fn node_process() {
    let Ok(spec) = std::env::var(NODE_ENV) else {
        eprintln!("node_process is the entry point of the crash test's child processes; nothing to do here");
        return;
    };
    let mut parts = spec.split('|');
    let node_id: NodeId = parts.next().unwrap().parse().unwrap();
    let voters = sluice_meta::parse_voters(parts.next().unwrap()).unwrap();
    let data_dir = parts.next().unwrap().to_string();
    let listen: SocketAddr = voters[&node_id].parse().unwrap();
    // Exit when the test process goes away (its end of our stdin closes), so that no node
    // outlives a crashed or interrupted test run.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let mut config = MetaConfig::new(node_id, data_dir, listen, voters);
        config.heartbeat_interval_ms = HEARTBEAT_INTERVAL_MS;
        config.election_timeout_min_ms = ELECTION_TIMEOUT_MIN_MS;
        config.election_timeout_max_ms = ELECTION_TIMEOUT_MAX_MS;
        let deadline = Instant::now() + Duration::from_secs(10);
        // The port of a killed predecessor may linger briefly.
        let _node = loop {
            match MetaNode::start(config.clone()).await {
                Ok(node) => break node,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("node {node_id}: start failed ({error}); retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("node {node_id} failed to start: {error}"),
            }
        };
        std::future::pending::<()>().await;
    });
}

/// A node process; killed (SIGKILL) when dropped.
struct NodeProcess(Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_node(id: NodeId, voters: &str, data_dir: &std::path::Path) -> NodeProcess {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "node_process", "--nocapture", "--test-threads=1"])
        .env(NODE_ENV, format!("{id}|{voters}|{}", data_dir.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    NodeProcess(child)
}

/// Sends `request` to node `target` over a fresh Raft RPC connection.
async fn call(target: NodeId, addr: &str, request: RpcRequest) -> Result<RpcResponse, CallError> {
    let mut client = PeerClient::new(99, target, addr.to_string(), NetworkSwitch::default());
    client.call(&request, Duration::from_secs(10)).await
}

/// Sends `request` to the live nodes in `candidates` until one is the leader and answers:
/// an unreachable node (starting, or killed) is skipped, and a "the leader is X" answer is
/// followed. Returns the leader's answer.
async fn call_leader(
    candidates: &[NodeId],
    addrs: &BTreeMap<NodeId, String>,
    request: RpcRequest,
    not_leader: impl Fn(&RpcResponse) -> Option<Option<NodeId>>,
) -> RpcResponse {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut next = candidates[0];
    let mut rotation = candidates.iter().copied().cycle();
    loop {
        assert!(Instant::now() < deadline, "no leader among {candidates:?} answered {request:?}");
        match call(next, &addrs[&next], request.clone()).await {
            Ok(response) => match not_leader(&response) {
                None => return response,
                Some(hint) => {
                    next = hint.filter(|h| candidates.contains(h)).unwrap_or_else(|| rotation.next().unwrap());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            // Nothing was sent: safe to ask another node.
            Err(CallError::Unreachable(reason)) => {
                tracing::debug!(%reason, "node {next} not answering");
                next = rotation.next().unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Sent, answer lost: a retry could apply the command twice, so stop here.
            Err(error) => panic!("node {next} lost the answer to {request:?}: {error}"),
        }
    }
}

/// Proposes on the leader among `candidates`; panics unless the command is committed and
/// succeeds.
async fn propose(candidates: &[NodeId], addrs: &BTreeMap<NodeId, String>, command: Command) -> (u64, CommandOutcome) {
    let response = call_leader(candidates, addrs, RpcRequest::Propose(command), |response| match response {
        RpcResponse::Propose(Err(ForwardError::NotLeader { leader, .. })) => Some(*leader),
        _ => None,
    })
    .await;
    match response {
        RpcResponse::Propose(Ok(reply)) => (reply.log_index, reply.result.unwrap()),
        other => panic!("proposal failed: {other:?}"),
    }
}

/// Adds node 4 as a learner through the leader among nodes 1..=3.
async fn join_as_learner(addrs: &BTreeMap<NodeId, String>) {
    let join = RpcRequest::ChangeMembership(MembershipChange::AddLearner { node_id: 4, addr: addrs[&4].clone() });
    let response = call_leader(&[1, 2, 3], addrs, join, |response| match response {
        RpcResponse::ChangeMembership(Err(MembershipFailure::NotLeader { leader, .. })) => Some(*leader),
        _ => None,
    })
    .await;
    assert!(matches!(response, RpcResponse::ChangeMembership(Ok(()))), "learner could not join: {response:?}");
}

async fn wait_for_leader_other_than(observer: &MetaNode, old: Option<NodeId>, timeout: Duration) -> NodeId {
    let deadline = Instant::now() + timeout;
    loop {
        let leader = observer.metrics().borrow().current_leader;
        if let Some(leader) = leader.filter(|l| Some(*l) != old) {
            return leader;
        }
        assert!(Instant::now() < deadline, "no new leader within {timeout:?} (old {old:?})");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commands_survive_sigkill_of_the_leader() {
    init_tracing();
    let data = tempfile::tempdir().unwrap();
    let mut addrs = BTreeMap::new();
    for id in 1..=4u64 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        addrs.insert(id, probe.local_addr().unwrap().to_string());
    }
    let voters: String = (1..=3u64).map(|id| format!("{id}@{}", addrs[&id])).collect::<Vec<_>>().join(",");
    let dir = |id: NodeId| data.path().join(format!("node-{id}"));
    let mut processes: BTreeMap<NodeId, NodeProcess> =
        (1..=3).map(|id| (id, spawn_node(id, &voters, &dir(id)))).collect();

    // The test process watches as a learner.
    let mut config =
        MetaConfig::new(4, dir(4), addrs[&4].parse().unwrap(), sluice_meta::parse_voters(&voters).unwrap());
    config.heartbeat_interval_ms = HEARTBEAT_INTERVAL_MS;
    config.election_timeout_min_ms = ELECTION_TIMEOUT_MIN_MS;
    config.election_timeout_max_ms = ELECTION_TIMEOUT_MAX_MS;
    let observer = MetaNode::start(config).await.unwrap();
    join_as_learner(&addrs).await;

    let (_, registered) = propose(&[1, 2, 3], &addrs, register(1)).await;
    let CommandOutcome::BrokerRegistered { broker_epoch } = registered else { panic!("{registered:?}") };
    let allocate = Command::AllocateProducerIds { broker_id: 1, broker_epoch };
    let mut acknowledged = 0;
    let mut last = 0;
    for _ in 0..100 {
        last = propose(&[1, 2, 3], &addrs, allocate.clone()).await.0;
        acknowledged += 1;
    }
    observer.wait_applied(last, Duration::from_secs(10)).await.unwrap();
    let leader = observer.current_leader().unwrap();

    // SIGKILL: no shutdown code runs in the leader process.
    drop(processes.remove(&leader));
    let killed_at = Instant::now();
    let new_leader = wait_for_leader_other_than(&observer, Some(leader), Duration::from_secs(5)).await;
    let failover = killed_at.elapsed();
    assert!(failover < Duration::from_secs(2), "failover after SIGKILL took {failover:?}");

    let survivors: Vec<NodeId> = (1..=3).filter(|id| *id != leader).collect();
    for _ in 0..30 {
        last = propose(&survivors, &addrs, allocate.clone()).await.0;
        acknowledged += 1;
    }

    // Restart the killed node from its files, then kill another voter: from now on every
    // commit needs the restarted node.
    processes.insert(leader, spawn_node(leader, &voters, &dir(leader)));
    observer.wait_applied(last, Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(processes.remove(&new_leader));
    let remaining: Vec<NodeId> = (1..=3).filter(|id| *id != new_leader).collect();
    for _ in 0..20 {
        last = propose(&remaining, &addrs, allocate.clone()).await.0;
        acknowledged += 1;
    }
    let applied = observer.wait_applied(last, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        applied.view.next_producer_id,
        1_000 * acknowledged,
        "every acknowledged producer-id block is in the replicated state, none twice"
    );
    observer.shutdown().await.unwrap();
}
