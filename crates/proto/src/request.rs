//! Requests and responses: header versions, body decoding, response encoding.
//!
//! # Request payload (after the frame's length prefix)
//!
//! ```text
//! request_api_key: i16 | request_api_version: i16 | correlation_id: i32 |
//! client_id: nullable string (header v1+) | tagged fields (header v2, flexible versions) | body
//! ```
//!
//! The header version depends on the api and its version (`ApiKey::request_header_version`):
//! flexible versions of a message use header v2, older ones v1. The first 8 bytes are the same
//! in every header version, so [`read_request_prefix`] can route a request (and answer an
//! unsupported ApiVersions) before anything else is decoded.
//!
//! # Response payload
//!
//! ```text
//! correlation_id: i32 | tagged fields (header v1, flexible versions) | body
//! ```
//!
//! ApiVersions responses always use header v0, whatever the version, so that a client that
//! sent a version the broker does not understand can still read the answer (KIP-511);
//! `ApiKey::response_header_version` encodes that rule and [`encode_response`] follows it.
//!
//! Bodies are decoded by `kafka-protocol` behind the length guard of [`crate::guard`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::buf::ByteBuf;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::api_versions::SupportedApis;
use crate::error::ProtoError;
use crate::frame::FRAME_LENGTH_PREFIX_BYTES;
use crate::guard::{decode_bounded, decoded_bytes_max_for};

/// Bytes every request header starts with: api key (2), api version (2), correlation id (4).
pub const REQUEST_PREFIX_BYTES: usize = 8;

/// The fixed start of every request header, readable before the api is known to be supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    /// Raw api key.
    pub api_key: i16,
    /// Requested version of the api.
    pub api_version: i16,
    /// Echoed in the response so the client can match it.
    pub correlation_id: i32,
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The api, already checked against the supported table.
    pub api_key: ApiKey,
    /// The full request header.
    pub header: RequestHeader,
    /// The decoded body.
    pub body: RequestKind,
    /// Upper bound of the bytes the decoded body holds in memory beyond the frame it shares
    /// (see [`crate::guard`]).
    pub decoded_bytes: usize,
}

impl Request {
    /// The requested api version.
    pub fn api_version(&self) -> i16 {
        self.header.request_api_version
    }

    /// The correlation id to echo in the response.
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// Reads the api key, api version and correlation id from the front of a request payload.
pub fn read_request_prefix(payload: &[u8]) -> Result<RequestPrefix, ProtoError> {
    let Some(mut prefix) = payload.get(..REQUEST_PREFIX_BYTES) else {
        return Err(ProtoError::TruncatedHeader { length_bytes: payload.len() });
    };
    Ok(RequestPrefix { api_key: prefix.get_i16(), api_version: prefix.get_i16(), correlation_id: prefix.get_i32() })
}

/// Decodes a request header, leaving `payload` at the start of the body. Does not consult a
/// supported-api table (clients and tests use this; the broker uses [`decode_request`]).
pub fn decode_request_header(payload: &mut Bytes) -> Result<(ApiKey, RequestHeader), ProtoError> {
    let prefix = read_request_prefix(payload)?;
    let api_key =
        ApiKey::try_from(prefix.api_key).map_err(|()| ProtoError::UnknownApiKey { api_key: prefix.api_key })?;
    let header_version = api_key.request_header_version(prefix.api_version);
    // The header has no arrays: its only wire lengths are the client id (i16, checked against
    // the remaining bytes by the decoder) and tagged fields (each read with a bounds check).
    let header = RequestHeader::decode(payload, header_version)
        .map_err(|error| ProtoError::malformed("request header", error))?;
    Ok((api_key, header))
}

/// Decodes a whole request payload (frame prefix already removed): checks the api and version
/// against `supported` before decoding the body, so an unsupported version is never parsed.
/// The body may decode to at most [`decoded_bytes_max_for`] its size (see [`crate::guard`]).
pub fn decode_request(payload: Bytes, supported: &SupportedApis) -> Result<Request, ProtoError> {
    let decoded_bytes_max = decoded_bytes_max_for(payload.len());
    decode_request_within(payload, supported, decoded_bytes_max)
}

/// [`decode_request`] with an explicit limit on the decoded body's size in memory, in bytes
/// (the broker passes what it reserved from its decoded-request budget).
pub fn decode_request_within(
    mut payload: Bytes,
    supported: &SupportedApis,
    decoded_bytes_max: usize,
) -> Result<Request, ProtoError> {
    let prefix = read_request_prefix(&payload)?;
    let api_key =
        ApiKey::try_from(prefix.api_key).map_err(|()| ProtoError::UnknownApiKey { api_key: prefix.api_key })?;
    if !supported.is_supported(prefix.api_key, prefix.api_version) {
        return Err(ProtoError::UnsupportedVersion { api_key, api_version: prefix.api_version });
    }
    let (_, header) = decode_request_header(&mut payload)?;
    let (body, decoded_bytes) = decode_bounded("request body", &payload, decoded_bytes_max, |buf| {
        decode_request_kind(api_key, buf, header.request_api_version)
    })?;
    Ok(Request { api_key, header, body, decoded_bytes })
}

/// Decodes a request body of `api_key` at `api_version`, with the length guard and the default
/// decoded-size limit ([`decoded_bytes_max_for`] its size).
pub fn decode_request_body(api_key: ApiKey, api_version: i16, body: &Bytes) -> Result<RequestKind, ProtoError> {
    decode_bounded("request body", body, decoded_bytes_max_for(body.len()), |buf| {
        decode_request_kind(api_key, buf, api_version)
    })
    .map(|(body, _)| body)
}

/// Encodes `header` and `body` as a complete request frame (length prefix included), with the
/// header version the api and version require. For clients and tests.
pub fn encode_request<R: Encodable>(header: &RequestHeader, body: &R) -> Result<Bytes, ProtoError> {
    let api_key = ApiKey::try_from(header.request_api_key)
        .map_err(|()| ProtoError::UnknownApiKey { api_key: header.request_api_key })?;
    let header_version = api_key.request_header_version(header.request_api_version);
    encode_framed(
        "request",
        |buf| {
            header.encode(buf, header_version)?;
            body.encode(buf, header.request_api_version)
        },
        header
            .compute_size(header_version)
            .and_then(|header_bytes| Ok(header_bytes + body.compute_size(header.request_api_version)?)),
    )
}

/// Encodes a response as a complete frame (length prefix included): a response header of the
/// version `api_key`/`api_version` requires (v0 for every ApiVersions response), then the body.
pub fn encode_response<R: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, ProtoError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api_key.response_header_version(api_version);
    encode_framed(
        "response",
        |buf| {
            header.encode(buf, header_version)?;
            body.encode(buf, api_version)
        },
        header.compute_size(header_version).and_then(|header_bytes| Ok(header_bytes + body.compute_size(api_version)?)),
    )
}

/// Decodes a response payload (frame prefix removed) of `api_key` at `api_version`: the header,
/// then the body, with the length guard. For clients and tests.
pub fn decode_response<R: Decodable>(
    api_key: ApiKey,
    api_version: i16,
    mut payload: Bytes,
) -> Result<(ResponseHeader, R), ProtoError> {
    let header_version = api_key.response_header_version(api_version);
    let header = ResponseHeader::decode(&mut payload, header_version)
        .map_err(|error| ProtoError::malformed("response header", error))?;
    // Responses come from the broker the client chose; only their lengths are guarded.
    let (body, _) = decode_bounded("response body", &payload, usize::MAX, |buf| R::decode(buf, api_version))?;
    Ok((header, body))
}

fn encode_framed<E: std::fmt::Display>(
    what: &'static str,
    write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    payload_bytes: Result<usize, E>,
) -> Result<Bytes, ProtoError> {
    let payload_bytes = payload_bytes.map_err(|error| ProtoError::encode(what, error))?;
    let length =
        i32::try_from(payload_bytes).map_err(|_| ProtoError::encode(what, "payload longer than i32::MAX bytes"))?;
    let mut buf = BytesMut::with_capacity(FRAME_LENGTH_PREFIX_BYTES + payload_bytes);
    buf.put_i32(length);
    write(&mut buf).map_err(|error| ProtoError::encode(what, error))?;
    // The size computation and the encoder come from the same generated code; if they ever
    // disagree the frame would desynchronise the stream, so refuse rather than send it.
    if buf.len() != FRAME_LENGTH_PREFIX_BYTES + payload_bytes {
        return Err(ProtoError::encode(
            what,
            format!("computed {payload_bytes} payload bytes but wrote {}", buf.len() - FRAME_LENGTH_PREFIX_BYTES),
        ));
    }
    Ok(buf.freeze())
}

fn decode_message<M: Decodable, B: ByteBuf>(buf: &mut B, version: i16) -> Result<M, String> {
    M::decode(buf, version).map_err(|error| error.to_string())
}

/// `RequestKind::decode` only accepts `bytes::Bytes`; this does the same dispatch over any
/// [`ByteBuf`] so the guarded buffer can be used.
macro_rules! request_kinds {
    ($($variant:ident => $message:ident,)*) => {
        fn decode_request_kind<B: ByteBuf>(
            api_key: ApiKey,
            buf: &mut B,
            version: i16,
        ) -> Result<RequestKind, String> {
            Ok(match api_key {
                $(ApiKey::$variant => RequestKind::$variant(decode_message::<$message, B>(buf, version)?),)*
            })
        }
    };
}

request_kinds! {
        Produce => ProduceRequest,
        Fetch => FetchRequest,
        ListOffsets => ListOffsetsRequest,
        Metadata => MetadataRequest,
        OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest,
        FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        SyncGroup => SyncGroupRequest,
        DescribeGroups => DescribeGroupsRequest,
        ListGroups => ListGroupsRequest,
        SaslHandshake => SaslHandshakeRequest,
        ApiVersions => ApiVersionsRequest,
        CreateTopics => CreateTopicsRequest,
        DeleteTopics => DeleteTopicsRequest,
        DeleteRecords => DeleteRecordsRequest,
        InitProducerId => InitProducerIdRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AddOffsetsToTxn => AddOffsetsToTxnRequest,
        EndTxn => EndTxnRequest,
        WriteTxnMarkers => WriteTxnMarkersRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest,
        DescribeAcls => DescribeAclsRequest,
        CreateAcls => CreateAclsRequest,
        DeleteAcls => DeleteAclsRequest,
        DescribeConfigs => DescribeConfigsRequest,
        AlterConfigs => AlterConfigsRequest,
        AlterReplicaLogDirs => AlterReplicaLogDirsRequest,
        DescribeLogDirs => DescribeLogDirsRequest,
        SaslAuthenticate => SaslAuthenticateRequest,
        CreatePartitions => CreatePartitionsRequest,
        CreateDelegationToken => CreateDelegationTokenRequest,
        RenewDelegationToken => RenewDelegationTokenRequest,
        ExpireDelegationToken => ExpireDelegationTokenRequest,
        DescribeDelegationToken => DescribeDelegationTokenRequest,
        DeleteGroups => DeleteGroupsRequest,
        ElectLeaders => ElectLeadersRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
        ListPartitionReassignments => ListPartitionReassignmentsRequest,
        OffsetDelete => OffsetDeleteRequest,
        DescribeClientQuotas => DescribeClientQuotasRequest,
        AlterClientQuotas => AlterClientQuotasRequest,
        DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
        AlterUserScramCredentials => AlterUserScramCredentialsRequest,
        Vote => VoteRequest,
        BeginQuorumEpoch => BeginQuorumEpochRequest,
        EndQuorumEpoch => EndQuorumEpochRequest,
        DescribeQuorum => DescribeQuorumRequest,
        AlterPartition => AlterPartitionRequest,
        UpdateFeatures => UpdateFeaturesRequest,
        Envelope => EnvelopeRequest,
        FetchSnapshot => FetchSnapshotRequest,
        DescribeCluster => DescribeClusterRequest,
        DescribeProducers => DescribeProducersRequest,
        BrokerRegistration => BrokerRegistrationRequest,
        BrokerHeartbeat => BrokerHeartbeatRequest,
        UnregisterBroker => UnregisterBrokerRequest,
        DescribeTransactions => DescribeTransactionsRequest,
        ListTransactions => ListTransactionsRequest,
        AllocateProducerIds => AllocateProducerIdsRequest,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
        ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
        ControllerRegistration => ControllerRegistrationRequest,
        GetTelemetrySubscriptions => GetTelemetrySubscriptionsRequest,
        PushTelemetry => PushTelemetryRequest,
        AssignReplicasToDirs => AssignReplicasToDirsRequest,
        ListConfigResources => ListConfigResourcesRequest,
        DescribeTopicPartitions => DescribeTopicPartitionsRequest,
        ShareGroupHeartbeat => ShareGroupHeartbeatRequest,
        ShareGroupDescribe => ShareGroupDescribeRequest,
        ShareFetch => ShareFetchRequest,
        ShareAcknowledge => ShareAcknowledgeRequest,
        AddRaftVoter => AddRaftVoterRequest,
        RemoveRaftVoter => RemoveRaftVoterRequest,
        UpdateRaftVoter => UpdateRaftVoterRequest,
        InitializeShareGroupState => InitializeShareGroupStateRequest,
        ReadShareGroupState => ReadShareGroupStateRequest,
        WriteShareGroupState => WriteShareGroupStateRequest,
        DeleteShareGroupState => DeleteShareGroupStateRequest,
        ReadShareGroupStateSummary => ReadShareGroupStateSummaryRequest,
        DescribeShareGroupOffsets => DescribeShareGroupOffsetsRequest,
        AlterShareGroupOffsets => AlterShareGroupOffsetsRequest,
        DeleteShareGroupOffsets => DeleteShareGroupOffsetsRequest,
}
