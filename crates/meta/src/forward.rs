//! Forwarding commands from a follower to the leader, in batches.
//!
//! Commands proposed on a follower queue per leader; one task per leader sends everything
//! queued as one `ProposeBatch` RPC, with up to [`FORWARD_BATCHES_IN_FLIGHT_MAX`] RPCs in
//! flight, each on its own pooled connection. The leader hands each command to its own
//! batcher, so forwarded commands share Raft entries with the leader's own.
//!
//! A forwarded command is retried automatically only when it certainly was not committed: the
//! leader could not be dialed (nothing was sent), or the node answered that it is not the
//! leader (which a stopping leader also answers for a command its stopped Raft never took). When a request was sent but its answer was lost (timeout, broken connection) the
//! caller gets an error and decides; commands are built so that a retry is recognisable
//! (duplicate topic name, stale epoch).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::oneshot;
use tokio::sync::Semaphore;

use crate::commands::Command;
use crate::error::MetaError;
use crate::limits::FORWARD_BATCHES_IN_FLIGHT_MAX;
use crate::limits::FORWARD_QUEUE_IDLE_MS;
use crate::limits::PROPOSAL_BYTES_MAX;
use crate::limits::PROPOSAL_COMMANDS_MAX;
use crate::limits::PROPOSE_QUEUE_COMMANDS_MAX;
use crate::limits::PROPOSE_TIMEOUT_MS;
use crate::network::CallError;
use crate::network::NetworkSwitch;
use crate::network::PeerClient;
use crate::rpc::ForwardError;
use crate::rpc::ProposeReply;
use crate::rpc::RpcRequest;
use crate::rpc::RpcResponse;
use crate::tls::InternalTls;
use crate::types::NodeId;

/// How a forwarding attempt ended without a reply.
#[derive(Debug)]
pub(crate) enum ForwardFailure {
    /// Certainly not committed (leader unreachable or no longer leader): try again.
    Retry,
    /// May or may not have been committed, or cannot succeed: give up with this error.
    GiveUp(MetaError),
}

type Outcome = Result<ProposeReply, ForwardFailure>;

struct Pending {
    command: Command,
    bytes: usize,
    reply: oneshot::Sender<Outcome>,
}

/// The leader a queue sends to.
type LeaderKey = (NodeId, String);

/// Per-leader queues of commands to forward.
#[derive(Debug, Clone)]
pub(crate) struct Forwarder {
    node_id: NodeId,
    switch: NetworkSwitch,
    tls: Option<InternalTls>,
    queues: Arc<Mutex<BTreeMap<LeaderKey, mpsc::Sender<Pending>>>>,
}

impl Forwarder {
    pub(crate) fn new(node_id: NodeId, switch: NetworkSwitch, tls: Option<InternalTls>) -> Forwarder {
        Forwarder { node_id, switch, tls, queues: Arc::new(Mutex::new(BTreeMap::new())) }
    }

    /// Sends `command` (encoded size `bytes`) to `leader` at `addr` and waits up to `timeout`.
    pub(crate) async fn forward(&self, leader: NodeId, addr: &str, command: &Command, timeout: Duration) -> Outcome {
        let bytes = postcard::to_allocvec(command).map(|encoded| encoded.len()).unwrap_or(usize::MAX);
        let (reply, answer) = oneshot::channel();
        let queue = self.queue(leader, addr);
        if queue.send(Pending { command: command.clone(), bytes, reply }).await.is_err() {
            // The queue's task just retired for idleness; nothing was sent.
            return Err(ForwardFailure::Retry);
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(ForwardFailure::Retry),
            Err(_) => Err(ForwardFailure::GiveUp(MetaError::Timeout {
                operation: "forwarded proposal",
                timeout_ms: timeout.as_millis() as u64,
            })),
        }
    }

    fn queue(&self, leader: NodeId, addr: &str) -> mpsc::Sender<Pending> {
        let key = (leader, addr.to_string());
        let mut queues = self.queues.lock().expect("forward queues lock");
        if let Some(queue) = queues.get(&key).filter(|q| !q.is_closed()) {
            return queue.clone();
        }
        let (sender, receiver) = mpsc::channel(PROPOSE_QUEUE_COMMANDS_MAX);
        queues.insert(key.clone(), sender.clone());
        tokio::spawn(run_queue(self.clone(), key, receiver));
        sender
    }
}

/// Drains one leader's queue into `ProposeBatch` RPCs until it has been idle for
/// [`FORWARD_QUEUE_IDLE_MS`].
async fn run_queue(forwarder: Forwarder, key: LeaderKey, mut receiver: mpsc::Receiver<Pending>) {
    let in_flight = Arc::new(Semaphore::new(FORWARD_BATCHES_IN_FLIGHT_MAX));
    let clients: Arc<Mutex<Vec<PeerClient>>> = Arc::default();
    let idle = Duration::from_millis(FORWARD_QUEUE_IDLE_MS);
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(pending) => pending,
            None => match tokio::time::timeout(idle, receiver.recv()).await {
                Ok(Some(pending)) => pending,
                Ok(None) | Err(_) => break,
            },
        };
        let permit = in_flight.clone().acquire_owned().await.expect("the semaphore is never closed");
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < PROPOSAL_COMMANDS_MAX {
            match receiver.try_recv() {
                Ok(pending) if bytes + pending.bytes <= PROPOSAL_BYTES_MAX => {
                    bytes += pending.bytes;
                    batch.push(pending);
                }
                Ok(pending) => {
                    carried = Some(pending);
                    break;
                }
                Err(_) => break,
            }
        }
        let client = clients.lock().expect("forward clients lock").pop();
        let client = client.unwrap_or_else(|| {
            PeerClient::new(forwarder.node_id, key.0, key.1.clone(), forwarder.switch.clone())
                .with_tls(forwarder.tls.clone())
        });
        let clients = clients.clone();
        let leader = key.0;
        tokio::spawn(async move {
            let mut client = client;
            send_batch(&mut client, leader, batch).await;
            clients.lock().expect("forward clients lock").push(client);
            drop(permit);
        });
    }
    // Retire: commands that raced into the closing queue are answered `Retry` when dropped.
    receiver.close();
    forwarder.queues.lock().expect("forward queues lock").retain(|k, q| k != &key || !q.is_closed());
    while let Some(pending) = carried.take().or_else(|| receiver.try_recv().ok()) {
        let _ = pending.reply.send(Err(ForwardFailure::Retry));
    }
}

/// Sends one batch and answers each command.
async fn send_batch(client: &mut PeerClient, leader: NodeId, batch: Vec<Pending>) {
    let (commands, replies): (Vec<Command>, Vec<oneshot::Sender<Outcome>>) =
        batch.into_iter().map(|p| (p.command, p.reply)).unzip();
    let count = commands.len();
    // The leader waits up to PROPOSE_TIMEOUT_MS per command; allow for the round trip.
    let timeout = Duration::from_millis(PROPOSE_TIMEOUT_MS * 2);
    let results: Vec<Outcome> = match client.call(&RpcRequest::ProposeBatch(commands), timeout).await {
        Ok(RpcResponse::ProposeBatch(results)) if results.len() == count => {
            results.into_iter().map(|result| per_command(leader, result)).collect()
        }
        Ok(other) => {
            let reason = format!("unexpected answer to a batch of {count}: {other:?}");
            (0..count)
                .map(|_| Err(ForwardFailure::GiveUp(MetaError::Forward { leader, reason: reason.clone() })))
                .collect()
        }
        Err(CallError::Unreachable(reason)) => {
            tracing::debug!(leader, %reason, "leader unreachable for forwarding");
            (0..count).map(|_| Err(ForwardFailure::Retry)).collect()
        }
        Err(CallError::Timeout(_)) => (0..count)
            .map(|_| {
                Err(ForwardFailure::GiveUp(MetaError::Timeout {
                    operation: "forwarded proposal",
                    timeout_ms: timeout.as_millis() as u64,
                }))
            })
            .collect(),
        Err(CallError::Network(reason)) => (0..count)
            .map(|_| Err(ForwardFailure::GiveUp(MetaError::Forward { leader, reason: reason.clone() })))
            .collect(),
    };
    for (reply, result) in replies.into_iter().zip(results) {
        // The proposer may have given up waiting; nothing to do then.
        let _ = reply.send(result);
    }
}

fn per_command(leader: NodeId, result: Result<ProposeReply, ForwardError>) -> Outcome {
    match result {
        Ok(reply) => Ok(reply),
        Err(ForwardError::NotLeader { .. }) => Err(ForwardFailure::Retry),
        Err(ForwardError::Timeout) => Err(ForwardFailure::GiveUp(MetaError::Timeout {
            operation: "proposal on the leader",
            timeout_ms: PROPOSE_TIMEOUT_MS,
        })),
        Err(ForwardError::Stopped(reason)) | Err(ForwardError::Refused(reason)) => {
            Err(ForwardFailure::GiveUp(MetaError::Forward { leader, reason }))
        }
    }
}
