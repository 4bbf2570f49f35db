//! The Raft RPC wire format: length-delimited frames of postcard-encoded messages over TCP,
//! or over TLS when internal TLS is configured (see [`crate::tls`]; the framing is the same).
//!
//! ```text
//! frame:   len u32 BE | postcard(RpcRequest or RpcResponse) [len]      (len ≤ RPC_FRAME_BYTES_MAX)
//! ```
//!
//! A connection starts with `Hello { protocol_version, from, to }`, answered by `HelloOk` or
//! `Refused`, then carries one request and its response at a time. A frame longer than
//! [`RPC_FRAME_BYTES_MAX`], or one that does not decode, closes the connection (after a log
//! line); nothing on the wire can make a node panic or allocate more than one frame.

use bytes::Bytes;
use futures::SinkExt;
use futures::StreamExt;
use openraft::error::InstallSnapshotError;
use openraft::error::RaftError;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::InstallSnapshotRequest;
use openraft::raft::InstallSnapshotResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;
use tokio_util::codec::Framed;
use tokio_util::codec::LengthDelimitedCodec;

use crate::commands::Command;
use crate::commands::CommandOutcome;
use crate::error::CommandError;
use crate::limits::RPC_FRAME_BYTES_MAX;
use crate::membership::MembershipChange;
use crate::membership::MembershipFailure;
use crate::membership::QuorumState;
use crate::tls::RpcStream;
use crate::types::NodeId;
use crate::types::TypeConfig;
use crate::view::BrokerId;

/// Version of this wire protocol, checked in the hello exchange.
///
/// Version 2: broker heartbeats, and commands carry the `message.timestamp.*` topic configs.
/// Version 3: commands carry `unclean.leader.election.enable` and `replica.lag.time.max.ms`,
/// and `ElectLeaderUnclean`.
/// Version 4: `MembershipChange::RemoveVoter` (demote to learner) and `DescribeQuorum`.
/// Version 5: `StartReassignment` and `CancelReassignment`, and snapshots carry the view's
/// `reassignments`.
/// Version 6: `CreateTopicAssigned` and `CreatePartitionsAssigned` (explicit replica
/// assignments).
/// Version 7: `RegisterBrokerListeners`, the security commands, `CommandError::ResourceNotFound`,
/// and snapshots carry listeners and the security state.
/// Version 8: `AlterBrokerConfigs`, and snapshots carry the dynamic broker configs;
/// `GroupStatus` (a voter starting with empty storage asks whether the group already exists
/// and knows it; see `MetaNode::bootstrap`), its answer carrying the cluster id; a hello may
/// name [`ANY_NODE`] as `to` (a broker joining through `--join` knows addresses, not ids).
pub const RPC_PROTOCOL_VERSION: u16 = 8;

/// The `to` of a hello from a caller that knows the address it dials but not the node behind
/// it (a broker joining through `--join host:port`). Never a real node: node ids are broker
/// ids, non-negative `i32`s.
pub const ANY_NODE: NodeId = u64::MAX;

/// A framed connection (TCP or TLS) carrying RPC messages.
pub type RpcConnection = Framed<RpcStream, RpcCodec>;

/// Wraps a stream (a `TcpStream` or an [`RpcStream`]) with the bounded length-delimited codec.
pub fn framed(stream: impl Into<RpcStream>) -> RpcConnection {
    Framed::new(stream.into(), RpcCodec::new())
}

/// Bytes of a frame's length prefix.
const FRAME_LENGTH_PREFIX_BYTES: usize = 4;

/// tokio-util's length-delimited codec, bounded to [`RPC_FRAME_BYTES_MAX`], which decodes a
/// frame only once all of it has arrived. The plain codec reserves buffer space for the
/// length a frame *announces* as soon as it reads the prefix, so four bytes from anyone who
/// can reach the Raft port cost up to 8 MiB per connection before the hello is even read
/// (found by the `raft_rpc` fuzz target: a 21-byte input held 4.3 MB). Here the read buffer
/// grows only with the bytes that actually arrive.
#[derive(Debug)]
pub struct RpcCodec {
    inner: LengthDelimitedCodec,
}

impl RpcCodec {
    /// A codec refusing frames longer than [`RPC_FRAME_BYTES_MAX`].
    pub fn new() -> RpcCodec {
        RpcCodec { inner: LengthDelimitedCodec::builder().max_frame_length(RPC_FRAME_BYTES_MAX).new_codec() }
    }
}

impl Default for RpcCodec {
    fn default() -> Self {
        RpcCodec::new()
    }
}

impl tokio_util::codec::Decoder for RpcCodec {
    type Item = bytes::BytesMut;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut bytes::BytesMut) -> std::io::Result<Option<bytes::BytesMut>> {
        if let Some(prefix) = src.get(..FRAME_LENGTH_PREFIX_BYTES) {
            let announced = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
            // An over-long frame goes to the inner codec at once, which refuses it; a frame
            // within bounds waits until it is whole, so the inner codec reserves nothing.
            if announced <= RPC_FRAME_BYTES_MAX && src.len() < FRAME_LENGTH_PREFIX_BYTES + announced {
                return Ok(None);
            }
        }
        self.inner.decode(src)
    }
}

impl tokio_util::codec::Encoder<Bytes> for RpcCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Bytes, dst: &mut bytes::BytesMut) -> std::io::Result<()> {
        self.inner.encode(frame, dst)
    }
}

/// A request from one node to another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RpcRequest {
    /// First frame of a connection.
    Hello {
        /// [`RPC_PROTOCOL_VERSION`] of the caller.
        protocol_version: u16,
        /// Caller's node id.
        from: NodeId,
        /// Node id the caller believes it dialed, or [`ANY_NODE`].
        to: NodeId,
    },
    /// Raft AppendEntries (also heartbeats).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft RequestVote.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A command forwarded by a follower to the leader.
    Propose(Command),
    /// Commands forwarded together by a follower to the leader (at most
    /// [`PROPOSAL_COMMANDS_MAX`](crate::limits::PROPOSAL_COMMANDS_MAX)); each is proposed on
    /// its own and gets its own result.
    ProposeBatch(Vec<Command>),
    /// A membership change forwarded by a follower to the leader.
    ChangeMembership(MembershipChange),
    /// A broker's heartbeat, sent to the leader (see [`crate::liveness`]).
    BrokerHeartbeat {
        /// The broker.
        broker_id: BrokerId,
        /// Its current registration.
        broker_epoch: i64,
    },
    /// The quorum as the leader sees it.
    DescribeQuorum,
    /// Whether the answering node belongs to an initialized group, that group's voters, and
    /// whether its metadata knows broker `node_id` (asked by a voter starting with empty
    /// storage, before it takes part in Raft).
    GroupStatus {
        /// The node asking.
        node_id: NodeId,
    },
}

/// The answer to an [`RpcRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum RpcResponse {
    /// Hello accepted.
    HelloOk,
    /// The request was refused (wrong node, wrong version, oversized snapshot).
    Refused {
        /// Why.
        reason: String,
    },
    /// AppendEntries result.
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Vote result.
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// InstallSnapshot result.
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// Forwarded proposal result.
    Propose(Result<ProposeReply, ForwardError>),
    /// Results of a forwarded batch, in the order of its commands.
    ProposeBatch(Vec<Result<ProposeReply, ForwardError>>),
    /// Forwarded membership change result.
    ChangeMembership(Result<(), MembershipFailure>),
    /// The heartbeat was recorded, or this node is not the leader.
    BrokerHeartbeat(Result<(), ForwardError>),
    /// The leader's quorum state, or this node is not the leader.
    DescribeQuorum(Result<QuorumState, ForwardError>),
    /// The answering node's view of the group.
    GroupStatus(GroupStatus),
}

/// What one node knows of the group, for a voter deciding at its first start with empty
/// storage whether to create the group, join it, or refuse to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The answering node has Raft state (it initialized the group or received its log).
    pub initialized: bool,
    /// The voters of the latest membership the answering node knows (empty if uninitialized).
    pub voters: Vec<NodeId>,
    /// The answering node's metadata view holds a registration of the asking node's broker
    /// id: the asker ran in this group before, so its empty storage was lost, not new.
    pub registered: bool,
    /// The answering node's cluster id ([`MetaConfig::cluster_id`](crate::MetaConfig::cluster_id)),
    /// if it knows one: a node joining through `--join` adopts it.
    pub cluster_id: Option<String>,
}

/// A forwarded command's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProposeReply {
    /// Log index the command was committed at.
    pub log_index: u64,
    /// The state machine's result for this command.
    pub result: Result<CommandOutcome, CommandError>,
}

/// Why a forwarded command was not committed by the node it was sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardError {
    /// That node is not (or no longer) the leader. Nothing was committed: retry on the leader.
    /// Also the answer of a stopping leader whose Raft had stopped before the command reached
    /// it (`leader: None`): openraft hands such a command back.
    NotLeader {
        /// The leader it knows of.
        leader: Option<NodeId>,
        /// That leader's Raft address.
        leader_addr: Option<String>,
    },
    /// The command did not commit in time there. Retriable, but it may still commit.
    Timeout,
    /// That node's Raft stopped. A command in flight may or may not have committed.
    Stopped(String),
    /// The command was refused before reaching the log (e.g. too large). Not retriable.
    Refused(String),
}

/// Why a frame could not be received.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection. Retriable on a new connection.
    #[error("connection closed")]
    Closed,
    /// Socket error or a frame over the size limit. The connection is closed; a new one may
    /// be tried (a peer that keeps sending oversized frames is broken).
    #[error("transport: {0}")]
    Transport(#[from] std::io::Error),
    /// The frame is not a valid message (version skew or corruption). Not retriable on this
    /// connection; it is closed.
    #[error("undecodable frame of {bytes} bytes: {reason}")]
    Decode {
        /// Frame length.
        bytes: usize,
        /// Decoder message.
        reason: String,
    },
}

/// Sends one message as a frame.
pub async fn send_message<T: Serialize>(connection: &mut RpcConnection, message: &T) -> std::io::Result<()> {
    let bytes = postcard::to_allocvec(message).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    if bytes.len() > RPC_FRAME_BYTES_MAX {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("message of {} bytes exceeds the {RPC_FRAME_BYTES_MAX}-byte frame limit", bytes.len()),
        ));
    }
    connection.send(Bytes::from(bytes)).await
}

/// Receives one frame and decodes it.
pub async fn receive_message<T: DeserializeOwned>(connection: &mut RpcConnection) -> Result<T, FrameError> {
    let frame = match connection.next().await {
        None => return Err(FrameError::Closed),
        // TLS: the peer closed its socket without a close_notify alert (a dropped client does
        // not send one). Between two frames nothing was cut short: an ordinary close.
        Some(Err(error))
            if error.kind() == std::io::ErrorKind::UnexpectedEof && connection.read_buffer().is_empty() =>
        {
            return Err(FrameError::Closed)
        }
        Some(frame) => frame?,
    };
    postcard::from_bytes(&frame).map_err(|e| FrameError::Decode { bytes: frame.len(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::Rng;
    use rand::SeedableRng;

    use super::*;

    /// A length prefix announcing a large frame reserves nothing until the frame arrives (the
    /// plain tokio-util codec reserved the announced length at once: 8 MiB per connection
    /// for four bytes); a whole frame decodes; an over-long announcement is refused at once.
    #[test]
    fn the_codec_reserves_only_what_arrives() {
        use tokio_util::codec::{Decoder, Encoder};
        let mut codec = RpcCodec::new();
        let mut buffer = bytes::BytesMut::with_capacity(64);
        buffer.extend_from_slice(&(RPC_FRAME_BYTES_MAX as u32).to_be_bytes());
        buffer.extend_from_slice(b"only a little");
        assert!(codec.decode(&mut buffer).unwrap().is_none());
        assert!(buffer.capacity() < 1024, "reserved {} bytes for a frame not sent", buffer.capacity());

        let mut whole = bytes::BytesMut::new();
        codec.encode(Bytes::from_static(b"hello"), &mut whole).unwrap();
        let (head, tail) = whole.split_at(6);
        let mut partial = bytes::BytesMut::from(head);
        assert!(codec.decode(&mut partial).unwrap().is_none());
        partial.extend_from_slice(tail);
        assert_eq!(&codec.decode(&mut partial).unwrap().unwrap()[..], b"hello");

        let mut too_long = bytes::BytesMut::new();
        too_long.extend_from_slice(&(RPC_FRAME_BYTES_MAX as u32 + 1).to_be_bytes());
        assert!(codec.decode(&mut too_long).is_err());
    }

    /// Random frames (seeded, so a failure reproduces) never panic the decoder: every one is
    /// either a message or an error. Half of them start from a valid encoding and are mutated,
    /// so the decoder gets past the first byte.
    #[test]
    fn random_frames_decode_or_fail_without_panicking() {
        let mut rng = StdRng::seed_from_u64(0xf4a3e);
        let valid = postcard::to_allocvec(&RpcRequest::Propose(Command::DeleteTopic { name: "t".repeat(40) })).unwrap();
        let mut decoded = 0;
        for round in 0..20_000 {
            let frame: Vec<u8> = if round % 2 == 0 {
                let len = rng.gen_range(0..256);
                (0..len).map(|_| rng.gen()).collect()
            } else {
                let mut frame = valid.clone();
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..frame.len());
                    frame[at] = rng.gen();
                }
                frame.truncate(rng.gen_range(1..=frame.len()));
                frame
            };
            decoded += usize::from(postcard::from_bytes::<RpcRequest>(&frame).is_ok());
            decoded += usize::from(postcard::from_bytes::<RpcResponse>(&frame).is_ok());
        }
        assert!(decoded > 0, "some mutated frames still decode, so decoding was exercised");
    }
}
