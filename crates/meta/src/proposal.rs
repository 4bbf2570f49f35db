//! Getting a command committed from any node: batch it into a Raft entry on the leader, or
//! forward it to the leader over the Raft RPC connection.
//!
//! openraft 0.9 appends (and fsyncs) once per client write, so commands proposed concurrently
//! are gathered into one [`Proposal`] entry by the [`Batcher`]: while up to
//! [`PROPOSALS_IN_FLIGHT_MAX`] entries are being committed, new commands queue and go out
//! together in the next one (group commit). Each command still gets its own result. Commands
//! of concurrent callers commit in an unspecified order; a caller that needs an order awaits
//! each proposal before making the next.
//!
//! Followers forward commands to the leader in batches too (`forward`).

use std::sync::Arc;
use std::time::Duration;

use openraft::error::ClientWriteError;
use tokio::sync::mpsc;
use tokio::sync::oneshot;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::commands::Command;
use crate::limits::COMMAND_BYTES_MAX;
use crate::limits::PROPOSALS_IN_FLIGHT_MAX;
use crate::limits::PROPOSAL_BYTES_MAX;
use crate::limits::PROPOSAL_COMMANDS_MAX;
use crate::limits::PROPOSE_QUEUE_COMMANDS_MAX;
use crate::rpc::ForwardError;
use crate::rpc::ProposeReply;
use crate::types::NodeId;
use crate::types::Proposal;
use crate::types::Raft;

type Reply = oneshot::Sender<Result<ProposeReply, ProposeFailure>>;

/// Why this node's batcher did not commit a command.
#[derive(Debug, Clone)]
pub(crate) enum ProposeFailure {
    /// The answer a node forwarding the command gets as it is.
    Answer(ForwardError),
    /// This node's Raft had stopped before the command reached it (openraft hands the message
    /// back when its core is gone), or the batcher had: certainly not committed.
    NotSubmitted(String),
}

impl ProposeFailure {
    /// What a node that forwarded the command is told. The RPC has no word of its own for a
    /// command that never reached a stopped Raft; "not the leader, none known" says the same to
    /// the forwarder (not committed: retry on the next leader) without changing the protocol.
    pub(crate) fn into_forward_error(self) -> ForwardError {
        match self {
            ProposeFailure::Answer(error) => error,
            ProposeFailure::NotSubmitted(_) => ForwardError::NotLeader { leader: None, leader_addr: None },
        }
    }
}

/// A command waiting for its batch, and where its result goes.
struct Pending {
    command: Command,
    bytes: usize,
    reply: Reply,
}

/// Gathers concurrently proposed commands into Raft entries on this node.
#[derive(Debug, Clone)]
pub(crate) struct Batcher {
    queue: mpsc::Sender<Pending>,
}

impl Batcher {
    /// Starts the batching task for `raft`; it ends when every `Batcher` clone is dropped.
    pub(crate) fn start(raft: Raft) -> (Batcher, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(PROPOSE_QUEUE_COMMANDS_MAX);
        let task = tokio::spawn(run_batcher(raft, receiver));
        (Batcher { queue }, task)
    }

    /// Commits `command` through the local Raft node, waiting up to `timeout` for it to be
    /// applied. Commands over [`COMMAND_BYTES_MAX`] are refused before they reach the log: an
    /// entry the log store cannot frame would be a storage error, which stops the Raft node.
    pub(crate) async fn propose(&self, command: Command, timeout: Duration) -> Result<ProposeReply, ProposeFailure> {
        let bytes = postcard::to_allocvec(&command).map(|encoded| encoded.len()).unwrap_or(usize::MAX);
        if bytes > COMMAND_BYTES_MAX {
            let refused = format!("command of {bytes} bytes exceeds {COMMAND_BYTES_MAX}");
            return Err(ProposeFailure::Answer(ForwardError::Refused(refused)));
        }
        let (reply, result) = oneshot::channel();
        let waiting = async {
            self.queue
                .send(Pending { command, bytes, reply })
                .await
                .map_err(|_| ProposeFailure::NotSubmitted("proposal batcher stopped".to_string()))?;
            let stopped = || ProposeFailure::Answer(ForwardError::Stopped("Raft stopped before answering".to_string()));
            result.await.map_err(|_| stopped())?
        };
        tokio::time::timeout(timeout, waiting).await.unwrap_or(Err(ProposeFailure::Answer(ForwardError::Timeout)))
    }
}

/// Takes queued commands, at most [`PROPOSAL_COMMANDS_MAX`] and [`PROPOSAL_BYTES_MAX`] per
/// entry, and submits each entry in queue order; results are awaited off the loop so that up to
/// [`PROPOSALS_IN_FLIGHT_MAX`] entries are in flight.
async fn run_batcher(raft: Raft, mut queue: mpsc::Receiver<Pending>) {
    let in_flight = Arc::new(Semaphore::new(PROPOSALS_IN_FLIGHT_MAX));
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(pending) => pending,
            None => match queue.recv().await {
                Some(pending) => pending,
                None => break,
            },
        };
        let permit = in_flight.clone().acquire_owned().await.expect("the semaphore is never closed");
        // Gather after waiting for a slot, so that commands queued meanwhile join this entry.
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < PROPOSAL_COMMANDS_MAX {
            match queue.try_recv() {
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
        let (commands, replies): (Vec<Command>, Vec<Reply>) = batch.into_iter().map(|p| (p.command, p.reply)).unzip();
        match raft.client_write_ff(Proposal { commands }).await {
            Ok(response) => {
                tokio::spawn(async move {
                    let outcome = response.await;
                    drop(permit);
                    deliver(outcome, replies);
                });
            }
            Err(fatal) => {
                // openraft hands the message back when its core has stopped: these commands
                // never reached the log.
                for reply in replies {
                    let _ = reply.send(Err(ProposeFailure::NotSubmitted(fatal.to_string())));
                }
            }
        }
    }
}

type WriteOutcome = Result<
    Result<openraft::raft::ClientWriteResponse<crate::types::TypeConfig>, ClientWriteError<NodeId, crate::types::Node>>,
    oneshot::error::RecvError,
>;

/// Hands each command of a committed (or refused) entry its own result.
fn deliver(outcome: WriteOutcome, replies: Vec<Reply>) {
    let error = match outcome {
        Ok(Ok(response)) if response.data.results.len() == replies.len() => {
            let log_index = response.log_id.index;
            for (reply, result) in replies.into_iter().zip(response.data.results) {
                // The caller may have timed out; its command is committed regardless.
                let _ = reply.send(Ok(ProposeReply { log_index, result }));
            }
            return;
        }
        Ok(Ok(response)) => ForwardError::Stopped(format!(
            "entry {} produced {} results for {} commands",
            response.log_id.index,
            response.data.results.len(),
            replies.len()
        )),
        Ok(Err(ClientWriteError::ForwardToLeader(forward))) => ForwardError::NotLeader {
            leader: forward.leader_id,
            leader_addr: forward.leader_node.map(|node| node.addr),
        },
        Ok(Err(ClientWriteError::ChangeMembershipError(error))) => ForwardError::Refused(error.to_string()),
        Err(_) => ForwardError::Stopped("Raft stopped before answering".to_string()),
    };
    for reply in replies {
        let _ = reply.send(Err(ProposeFailure::Answer(error.clone())));
    }
}
