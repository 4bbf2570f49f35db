//! Request dispatch: from a request payload to what the connection does next.
//!
//! ```text
//! payload ─ read_request_prefix ─┬─ too short / unknown api ─────────────▶ Close
//!                                ├─ ApiVersions, unsupported version ────▶ Respond (v0, UNSUPPORTED_VERSION)
//!                                ├─ other api, unsupported version ──────▶ Close
//!                                └─ decode_request (guarded) ─┬─ error ──▶ Close  (incl. decoded size over its limit)
//!                                                             └─ handler ▶ Respond / NoResponse
//! ```
//!
//! Closing is Kafka's behaviour for a request it cannot parse or does not support (except
//! ApiVersions, which must always be answerable). To add an api: write its handler in
//! [`crate::handlers`], add a match arm in `Dispatcher::handle`, and add its range to
//! [`api_versions::supported_apis`] — the integration test `every_supported_api_answers_at_both_ends_of_its_range`
//! fails if the two disagree.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use sluice_proto::kafka_protocol::messages::{ApiKey, RequestKind};
use sluice_proto::{decode_request_within, encode_response, read_request_prefix, ProtoError, Request, SupportedApis};
use tokio::sync::OwnedSemaphorePermit;

use crate::api_versions;
use crate::broker::Broker;
use crate::handlers;

/// What the connection does after a request.
#[derive(Debug)]
pub enum Outcome {
    /// Write this frame (length prefix included), in request order.
    Respond(Bytes),
    /// Write this frame, then release its share of a broker-wide memory budget (fetch
    /// responses, see `handlers::fetch::FETCH_MEMORY_BYTES_MAX`).
    RespondReserved(Bytes, OwnedSemaphorePermit),
    /// The request expects no response (Produce with acks=0); go on with the next one.
    NoResponse,
    /// Close the connection; the reason is logged.
    Close(String),
}

/// Routes requests to handlers. Holds what handlers share; one per broker.
#[derive(Debug)]
pub struct Dispatcher {
    supported: SupportedApis,
    broker: Arc<Broker>,
}

impl Dispatcher {
    /// A dispatcher answering exactly [`api_versions::supported_apis`] for `broker`.
    pub fn new(broker: Arc<Broker>) -> Self {
        Dispatcher { supported: api_versions::supported_apis(), broker }
    }

    /// The broker's metrics (the server counts connections there).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.broker.metrics
    }

    /// The table ApiVersions answers with.
    pub fn supported(&self) -> &SupportedApis {
        &self.supported
    }

    /// Handles one request payload (frame prefix removed) from the client at `peer`. The body
    /// may decode to at most the bytes `decoded` holds (a reservation from the broker's
    /// decoded-request budget); what the decoded request does not need is released from it.
    pub async fn dispatch(&self, payload: Bytes, peer: SocketAddr, decoded: &mut OwnedSemaphorePermit) -> Outcome {
        let prefix = match read_request_prefix(&payload) {
            Ok(prefix) => prefix,
            Err(error) => return Outcome::Close(error.to_string()),
        };
        let is_api_versions = prefix.api_key == ApiKey::ApiVersions as i16;
        if is_api_versions && !self.supported.is_supported(prefix.api_key, prefix.api_version) {
            let body = api_versions::unsupported_version(&self.supported);
            return respond(
                ApiKey::ApiVersions,
                api_versions::UNSUPPORTED_VERSION_RESPONSE_VERSION,
                prefix.correlation_id,
                &body,
            );
        }
        match decode_request_within(payload, &self.supported, decoded.num_permits()) {
            Ok(request) => {
                let unused = decoded.num_permits().saturating_sub(request.decoded_bytes);
                drop(decoded.split(unused));
                self.handle(request, peer).await
            }
            Err(error @ ProtoError::UnknownApiKey { .. }) | Err(error @ ProtoError::UnsupportedVersion { .. }) => {
                Outcome::Close(format!("{error} (correlation id {})", prefix.correlation_id))
            }
            Err(error) => {
                Outcome::Close(format!("cannot decode api {} v{}: {error}", prefix.api_key, prefix.api_version))
            }
        }
    }

    async fn handle(&self, request: Request, peer: SocketAddr) -> Outcome {
        let started = std::time::Instant::now();
        let api_key = request.api_key;
        let outcome = self.handle_request(request, peer).await;
        self.broker.metrics.request(api_key, started.elapsed());
        outcome
    }

    async fn handle_request(&self, request: Request, peer: SocketAddr) -> Outcome {
        let version = request.api_version();
        let correlation_id = request.correlation_id();
        let api_key = request.api_key;
        let client = handlers::groups::Client {
            client_id: request.header.client_id.as_ref().map_or_else(String::new, |id| id.to_string()),
            client_host: format!("/{}", peer.ip()),
        };
        let broker = &*self.broker;
        let reply = |body: &dyn ErasedEncodable| respond_erased(api_key, version, correlation_id, body);
        match request.body {
            RequestKind::ApiVersions(body) => reply(&api_versions::handle(&self.supported, version, &body)),
            RequestKind::Metadata(body) => reply(&handlers::metadata::handle(broker, version, body).await),
            RequestKind::Produce(body) => match handlers::produce::handle(broker, version, body).await {
                Ok(Some(response)) => reply(&response),
                Ok(None) => Outcome::NoResponse,
                Err(reason) => Outcome::Close(reason),
            },
            RequestKind::Fetch(body) => {
                let (response, reservation) = handlers::fetch::handle(broker, version, body).await;
                match (reply(&response), reservation) {
                    (Outcome::Respond(frame), Some(reservation)) => Outcome::RespondReserved(frame, reservation),
                    (outcome, _) => outcome,
                }
            }
            RequestKind::ListOffsets(body) => reply(&handlers::list_offsets::handle(broker, version, body).await),
            RequestKind::OffsetForLeaderEpoch(body) => reply(&handlers::leader_epoch::handle(broker, body).await),
            RequestKind::InitProducerId(body) => reply(&handlers::producer_id::handle(broker, body).await),
            RequestKind::CreateTopics(body) => reply(&handlers::admin::create_topics(broker, version, body).await),
            RequestKind::DeleteTopics(body) => reply(&handlers::admin::delete_topics(broker, version, body).await),
            RequestKind::CreatePartitions(body) => reply(&handlers::admin::create_partitions(broker, body).await),
            RequestKind::DescribeCluster(body) => reply(&handlers::admin::describe_cluster(broker, &body)),
            RequestKind::ElectLeaders(body) => reply(&handlers::elect::handle(broker, version, body).await),
            RequestKind::DescribeQuorum(body) => reply(&handlers::quorum::describe(broker, version, body).await),
            RequestKind::AddRaftVoter(body) => reply(&handlers::quorum::add_voter(broker, body).await),
            RequestKind::RemoveRaftVoter(body) => reply(&handlers::quorum::remove_voter(broker, body).await),
            RequestKind::DescribeProducers(body) => reply(&handlers::describe_producers::handle(broker, body).await),
            RequestKind::DescribeLogDirs(body) => reply(&handlers::log_dirs::handle(broker, body).await),
            RequestKind::DescribeConfigs(body) => reply(&handlers::configs::describe(broker, version, &body)),
            RequestKind::AlterConfigs(body) => reply(&handlers::configs::alter_configs(broker, body).await),
            RequestKind::IncrementalAlterConfigs(body) => {
                reply(&handlers::configs::incremental_alter_configs(broker, body).await)
            }
            RequestKind::FindCoordinator(body) => {
                reply(&handlers::groups::find_coordinator(broker, version, body).await)
            }
            RequestKind::JoinGroup(body) => reply(&handlers::groups::join_group(broker, version, body, &client).await),
            RequestKind::SyncGroup(body) => reply(&handlers::groups::sync_group(broker, version, body).await),
            RequestKind::Heartbeat(body) => reply(&handlers::groups::heartbeat(broker, body).await),
            RequestKind::LeaveGroup(body) => reply(&handlers::groups::leave_group(broker, version, body).await),
            RequestKind::OffsetCommit(body) => reply(&handlers::offsets::offset_commit(broker, body).await),
            RequestKind::OffsetFetch(body) => reply(&handlers::offsets::offset_fetch(broker, version, body).await),
            RequestKind::OffsetDelete(body) => reply(&handlers::offsets::offset_delete(broker, body).await),
            RequestKind::ListGroups(body) => reply(&handlers::groups::list_groups(broker, body).await),
            RequestKind::DescribeGroups(body) => reply(&handlers::groups::describe_groups(broker, version, body).await),
            RequestKind::DeleteGroups(body) => reply(&handlers::groups::delete_groups(broker, body).await),
            _ => {
                tracing::error!(api = ?api_key, version, "supported api has no handler");
                Outcome::Close(format!("{api_key:?} has no handler"))
            }
        }
    }
}

/// Object-safe encoding, so one closure can answer every response type.
trait ErasedEncodable {
    fn encode_response(&self, api_key: ApiKey, version: i16, correlation_id: i32) -> Result<Bytes, ProtoError>;
}

impl<R: sluice_proto::kafka_protocol::protocol::Encodable> ErasedEncodable for R {
    fn encode_response(&self, api_key: ApiKey, version: i16, correlation_id: i32) -> Result<Bytes, ProtoError> {
        encode_response(api_key, version, correlation_id, self)
    }
}

fn respond_erased(api_key: ApiKey, version: i16, correlation_id: i32, body: &dyn ErasedEncodable) -> Outcome {
    match body.encode_response(api_key, version, correlation_id) {
        Ok(frame) => Outcome::Respond(frame),
        Err(error) => {
            tracing::error!(api = ?api_key, version, %error, "cannot encode response");
            Outcome::Close(format!("cannot encode {api_key:?} v{version} response: {error}"))
        }
    }
}

fn respond<R: sluice_proto::kafka_protocol::protocol::Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Outcome {
    match encode_response(api_key, version, correlation_id, body) {
        Ok(frame) => Outcome::Respond(frame),
        Err(error) => {
            // Our own response does not fit its version: a bug, but one connection's problem.
            tracing::error!(api = ?api_key, version, %error, "cannot encode response");
            Outcome::Close(format!("cannot encode {api_key:?} v{version} response: {error}"))
        }
    }
}
