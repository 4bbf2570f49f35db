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
//!
//! Every request's time from decode to response is counted in the metrics; one that passes
//! the slow-request threshold (`--slow-request-ms`, [`crate::config::SLOW_REQUEST_MS_DEFAULT`])
//! is also logged, once, with its API, client id, peer and elapsed time ([`slow_request_limit`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_proto::kafka_protocol::messages::{ApiKey, RequestKind};
use sluice_proto::{decode_request_within, encode_response, read_request_prefix, ProtoError, Request, SupportedApis};
use tokio::sync::OwnedSemaphorePermit;

use crate::api_versions;
use crate::broker::Broker;
use crate::handlers;
use crate::handlers::access::{self, Access, GROUP_AUTHORIZATION_FAILED};
use crate::handlers::produce::Appending;
use crate::handlers::refused;
use crate::kafka_code;
use crate::quota::QuotaKind;
use crate::security::authorizer::AuthorizerConfig;
use crate::security::sasl::{self, FailedLogins, SaslConfig};
use crate::security::Session;
use sluice_meta::security::{AclOperation as Op, ResourceType};
use sluice_proto::kafka_protocol::messages::{
    AddRaftVoterResponse, AlterPartitionReassignmentsResponse, DescribeAclsResponse, DescribeClientQuotasResponse,
    DescribeLogDirsResponse, DescribeQuorumResponse, DescribeUserScramCredentialsResponse, FetchResponse,
    HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, ListPartitionReassignmentsResponse, OffsetCommitResponse,
    OffsetDeleteResponse, RemoveRaftVoterResponse, SyncGroupResponse,
};

/// How long a request of `api` may take before it is logged as slow: `slow_request_ms`, plus a
/// Fetch's own long-poll wait; `None` when it is never logged (threshold 0, JoinGroup and
/// SyncGroup, which wait for the group's other members by design). Pure.
pub fn slow_request_limit(api: ApiKey, fetch_wait_ms: Option<i32>, slow_request_ms: u64) -> Option<Duration> {
    if slow_request_ms == 0 || matches!(api, ApiKey::JoinGroup | ApiKey::SyncGroup) {
        return None;
    }
    let wait_ms = u64::try_from(fetch_wait_ms.unwrap_or(0).max(0)).unwrap_or(0);
    Some(Duration::from_millis(slow_request_ms.saturating_add(wait_ms)))
}

/// The slow-request log line: one `warn` with the API, client id, peer address, elapsed and the
/// limit it passed, in milliseconds.
fn log_slow_request(api: ApiKey, client_id: &str, peer: SocketAddr, elapsed: Duration, limit: Duration) {
    tracing::warn!(
        api = ?api,
        client_id,
        %peer,
        elapsed_ms = elapsed.as_millis() as u64,
        limit_ms = limit.as_millis() as u64,
        "slow request"
    );
}

/// At most one server-side error line per API and error code in this many milliseconds; the
/// next line says how many were left out. A full disk refuses every produce until space
/// returns: one line per request would flood the log with what the first line said.
pub const SERVER_ERROR_LOG_INTERVAL_MS: u64 = 10_000;

/// Which server-side error lines are due ([`SERVER_ERROR_LOG_INTERVAL_MS`]).
#[derive(Debug, Default)]
struct ServerErrorLog {
    /// Per (api key, error code): when the last line was written, and the requests left out since.
    last: std::sync::Mutex<std::collections::HashMap<(i16, i16), (std::time::Instant, u64)>>,
}

impl ServerErrorLog {
    /// `Some(left out since the last line)` if a line is due now for `api` and `code`. Distinct
    /// keys are bounded by the APIs times the server-side codes.
    fn due(&self, api: ApiKey, code: i16, now: std::time::Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let interval = Duration::from_millis(SERVER_ERROR_LOG_INTERVAL_MS);
        match last.get_mut(&(api as i16, code)) {
            Some((at, left_out)) if now.saturating_duration_since(*at) < interval => {
                *left_out += 1;
                None
            }
            Some((at, left_out)) => {
                *at = now;
                Some(std::mem::take(left_out))
            }
            None => {
                last.insert((api as i16, code), (now, 0));
                Some(0)
            }
        }
    }
}

/// The server-side error line: one `warn` for a request that met any (see
/// [`crate::request_scope::server_error`]), with its API, client id, peer, the first error's
/// code and detail, how many it met, and how many such requests were left out before it.
fn log_server_error(
    api: ApiKey,
    client_id: &str,
    peer: SocketAddr,
    error: &crate::request_scope::ServerError,
    errors: u32,
    left_out: u64,
) {
    tracing::warn!(
        api = ?api,
        client_id,
        %peer,
        code = error.code,
        errors,
        detail = %error.detail,
        left_out,
        "request failed on the server side"
    );
}

/// A request handled (or, for a deferred answer, its first part): what its request metrics,
/// slow-request line and server-error line need once its answer is ready.
struct Handled {
    broker: Arc<Broker>,
    server_errors: Arc<ServerErrorLog>,
    api_key: ApiKey,
    client_id: Option<sluice_proto::kafka_protocol::protocol::StrBytes>,
    peer: SocketAddr,
    started: std::time::Instant,
    queue: Duration,
    limit: Option<Duration>,
}

impl Handled {
    fn finish(self, gathered: crate::request_scope::Gathered) {
        let Handled { broker, server_errors, api_key, client_id, peer, started, queue, limit } = self;
        let elapsed = started.elapsed();
        let client_id = client_id.as_deref().unwrap_or("");
        broker
            .metrics
            .request(api_key, crate::metrics::RequestTimes { queue, handled: elapsed, remote: gathered.remote });
        if let Some(limit) = limit.filter(|limit| elapsed > *limit) {
            log_slow_request(api_key, client_id, peer, elapsed, limit);
        }
        if let Some(error) = &gathered.first_error {
            if let Some(left_out) = server_errors.due(api_key, error.code, std::time::Instant::now()) {
                log_server_error(api_key, client_id, peer, error, gathered.errors, left_out);
            }
        }
    }
}

/// The rest of a request's handling, answered later (see [`Outcome::Deferred`]).
pub type DeferredOutcome = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>>;

/// What the connection does after a request.
pub enum Outcome {
    /// Write this frame (length prefix included), in request order.
    Respond(Bytes),
    /// Write this frame, then close the connection (failed authentication); the reason is
    /// logged.
    RespondAndClose(Bytes, String),
    /// Write this frame, then release its share of a broker-wide memory budget (fetch
    /// responses, see `handlers::fetch::FETCH_MEMORY_BYTES_MAX`).
    RespondReserved(Bytes, OwnedSemaphorePermit),
    /// The request expects no response (Produce with acks=0); go on with the next one.
    NoResponse,
    /// Close the connection; the reason is logged.
    Close(String),
    /// A produce request whose batches are appended and whose answer waits for their syncs
    /// and followers: the connection goes on appending its next produce requests meanwhile
    /// (its other requests wait until every answer before them is written), and writes the
    /// answers in request order as this future yields them.
    Deferred(DeferredOutcome),
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Respond(frame) => f.debug_tuple("Respond").field(&frame.len()).finish(),
            Outcome::RespondAndClose(frame, reason) => {
                f.debug_tuple("RespondAndClose").field(&frame.len()).field(reason).finish()
            }
            Outcome::RespondReserved(frame, _) => f.debug_tuple("RespondReserved").field(&frame.len()).finish(),
            Outcome::NoResponse => f.write_str("NoResponse"),
            Outcome::Close(reason) => f.debug_tuple("Close").field(reason).finish(),
            Outcome::Deferred(_) => f.write_str("Deferred"),
        }
    }
}

/// A request's outcome and how long its connection must then wait before the next request
/// (a client over its quota, KIP-219; zero otherwise).
#[derive(Debug)]
pub struct Dispatched {
    /// What the connection does now.
    pub outcome: Outcome,
    /// How long the connection then handles nothing more from this client.
    pub throttle: Duration,
}

impl From<Outcome> for Dispatched {
    fn from(outcome: Outcome) -> Self {
        Dispatched { outcome, throttle: Duration::ZERO }
    }
}

/// Routes requests to handlers. Holds what handlers share; one per broker.
#[derive(Debug)]
pub struct Dispatcher {
    supported: SupportedApis,
    broker: Arc<Broker>,
    /// See [`crate::config::SLOW_REQUEST_MS_DEFAULT`]; 0 = off.
    slow_request_ms: u64,
    server_errors: Arc<ServerErrorLog>,
    /// The SASL mechanisms offered and the session lifetime.
    sasl: SaslConfig,
    /// Failed logins by address, for the growing delay.
    failed_logins: FailedLogins,
    /// Whether and how requests are checked against ACLs.
    authorizer: AuthorizerConfig,
}

impl Dispatcher {
    /// A dispatcher answering exactly [`api_versions::supported_apis`] for `broker`.
    pub fn new(broker: Arc<Broker>) -> Self {
        Dispatcher {
            supported: api_versions::supported_apis(),
            broker,
            slow_request_ms: crate::config::SLOW_REQUEST_MS_DEFAULT,
            server_errors: Arc::default(),
            sasl: SaslConfig::default(),
            failed_logins: FailedLogins::default(),
            authorizer: AuthorizerConfig::default(),
        }
    }

    /// Checks every request against the ACLs as `authorizer` says (off by default).
    pub fn with_authorizer(self, authorizer: AuthorizerConfig) -> Self {
        Dispatcher { authorizer, ..self }
    }

    /// Offers the mechanisms and session lifetime of `sasl` on SASL listeners.
    pub fn with_sasl(self, sasl: SaslConfig) -> Self {
        Dispatcher { sasl, ..self }
    }

    /// Logs requests slower than `slow_request_ms` (0: none).
    pub fn with_slow_request_ms(self, slow_request_ms: u64) -> Self {
        Dispatcher { slow_request_ms, ..self }
    }

    /// The broker's metrics (the server counts connections there).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.broker.metrics
    }

    /// The table ApiVersions answers with.
    pub fn supported(&self) -> &SupportedApis {
        &self.supported
    }

    /// Handles one request payload (frame prefix removed) of the connection whose session is
    /// `session`, read off the socket at `read_at`. The body may decode to at most the bytes `decoded` holds (a
    /// reservation from the broker's decoded-request budget); what the decoded request does
    /// not need is released from it.
    pub async fn dispatch(
        &self,
        payload: Bytes,
        session: &mut Session,
        decoded: &mut OwnedSemaphorePermit,
        read_at: std::time::Instant,
    ) -> Dispatched {
        let prefix = match read_request_prefix(&payload) {
            Ok(prefix) => prefix,
            Err(error) => return Outcome::Close(error.to_string()).into(),
        };
        if let Some(reason) = sasl::gate(&session.sasl, prefix.api_key, std::time::Instant::now()) {
            return Outcome::Close(reason).into();
        }
        let is_api_versions = prefix.api_key == ApiKey::ApiVersions as i16;
        if is_api_versions && !self.supported.is_supported(prefix.api_key, prefix.api_version) {
            let body = api_versions::unsupported_version(&self.supported);
            return respond(
                ApiKey::ApiVersions,
                api_versions::UNSUPPORTED_VERSION_RESPONSE_VERSION,
                prefix.correlation_id,
                &body,
            )
            .into();
        }
        match decode_request_within(payload, &self.supported, decoded.num_permits()) {
            Ok(request) => {
                let unused = decoded.num_permits().saturating_sub(request.decoded_bytes);
                drop(decoded.split(unused));
                self.handle(request, session, read_at).await
            }
            Err(error @ ProtoError::UnknownApiKey { .. }) | Err(error @ ProtoError::UnsupportedVersion { .. }) => {
                Outcome::Close(format!("{error} (correlation id {})", prefix.correlation_id)).into()
            }
            Err(error) => {
                Outcome::Close(format!("cannot decode api {} v{}: {error}", prefix.api_key, prefix.api_version)).into()
            }
        }
    }

    async fn handle(&self, request: Request, session: &mut Session, read_at: std::time::Instant) -> Dispatched {
        let peer = session.peer;
        let started = std::time::Instant::now();
        let queue = started.saturating_duration_since(read_at);
        let api_key = request.api_key;
        let fetch_wait_ms = match &request.body {
            RequestKind::Fetch(body) => Some(body.max_wait_ms),
            _ => None,
        };
        // Replica fetches and the requests every client needs before it can be identified
        // (ApiVersions, SASL) are never counted against a request quota.
        let time_exempt = matches!(api_key, ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
            || matches!(&request.body, RequestKind::Fetch(body) if body.replica_id.0 >= 0);
        let limit = slow_request_limit(api_key, fetch_wait_ms, self.slow_request_ms);
        // For the log lines below: a refcounted clone, no copy.
        let client_id = request.header.client_id.clone();
        let (outcome, gathered) = crate::request_scope::measure(self.handle_request(request, session)).await;
        let request_throttle = if time_exempt {
            Duration::ZERO
        } else {
            // A deferred answer's wait for syncs and followers is remote time: left out.
            self.meter_time(
                session,
                client_id.as_deref().unwrap_or(""),
                started.elapsed().saturating_sub(gathered.remote),
            )
        };
        let throttle = gathered.throttle.max(request_throttle);
        let handled = Handled {
            broker: Arc::clone(&self.broker),
            server_errors: Arc::clone(&self.server_errors),
            api_key,
            client_id,
            peer,
            started,
            queue,
            limit,
        };
        let outcome = match outcome {
            // Measured, logged and counted once the answer is ready, with both parts' figures.
            Outcome::Deferred(rest) => Outcome::Deferred(Box::pin(async move {
                let (outcome, more) = crate::request_scope::measure(rest).await;
                handled.finish(gathered.and(more));
                outcome
            })),
            outcome => {
                handled.finish(gathered);
                outcome
            }
        };
        Dispatched { outcome, throttle }
    }

    /// Counts `local` (the request's handler time, waits for data or replicas left out, as
    /// Kafka counts thread time) against the `request_percentage` quota of the session's user
    /// and `client_id`; returns the throttle earned. A request quota mutes the connection for
    /// the throttle; the response already sent does not carry it in `throttle_time_ms`.
    fn meter_time(&self, session: &Session, client_id: &str, local: Duration) -> Duration {
        let view = self.broker.view();
        if view.security.quotas.is_empty() {
            return Duration::ZERO;
        }
        let quotas = &self.broker.quotas;
        let now_ms = quotas.now_ms();
        // The rate is per second: a second of handler time per second is 100% of one thread.
        let percent_seconds = local.as_secs_f64() * 100.0;
        let user = session.principal.name.as_str();
        let Some(throttle_ms) =
            quotas.record(&view.security, QuotaKind::Request, user, client_id, percent_seconds, now_ms)
        else {
            return Duration::ZERO;
        };
        let throttle = Duration::from_millis(throttle_ms);
        self.broker.metrics.quota_recorded(QuotaKind::Request.label(), 0, throttle);
        throttle
    }

    /// Counts `bytes` of `kind` against the quota of the session's user and `client_id`, and
    /// returns the throttle time earned, in milliseconds (reported to the request scope too).
    fn meter(&self, kind: QuotaKind, session: &Session, client_id: &str, bytes: u64) -> i32 {
        let view = self.broker.view();
        if view.security.quotas.is_empty() {
            return 0;
        }
        let quotas = &self.broker.quotas;
        let now_ms = quotas.now_ms();
        let user = session.principal.name.as_str();
        let Some(throttle_ms) = quotas.record(&view.security, kind, user, client_id, bytes as f64, now_ms) else {
            return 0; // no quota applies to this client
        };
        if throttle_ms > 0 && kind == QuotaKind::Fetch {
            // Kafka answers a throttled fetch without records, so they do not count.
            quotas.unrecord(&view.security, kind, user, client_id, bytes as f64, now_ms);
        }
        let throttle = Duration::from_millis(throttle_ms);
        self.broker.metrics.quota_recorded(kind.label(), bytes, throttle);
        crate::request_scope::throttled(throttle);
        i32::try_from(throttle_ms).unwrap_or(i32::MAX)
    }

    async fn handle_request(&self, request: Request, session: &mut Session) -> Outcome {
        let peer = session.peer;
        let version = request.api_version();
        let correlation_id = request.correlation_id();
        let api_key = request.api_key;
        let client = handlers::groups::Client {
            client_id: request.header.client_id.as_ref().map_or_else(String::new, |id| id.to_string()),
            client_host: format!("/{}", peer.ip()),
        };
        let broker = &*self.broker;
        let reply = |body: &dyn ErasedEncodable| respond_erased(api_key, version, correlation_id, body);
        // What the caller may do, judged by the ACLs of one view (see `handlers::access`).
        let access = Access::new(&self.authorizer, broker.view(), &session.principal, peer.ip());
        match request.body {
            RequestKind::ApiVersions(body) => reply(&api_versions::handle(&self.supported, version, &body)),
            RequestKind::SaslHandshake(body) => reply(&handlers::sasl::handshake(&self.sasl, session, version, &body)),
            RequestKind::SaslAuthenticate(body) => {
                let answer = handlers::sasl::authenticate(broker, &self.sasl, &self.failed_logins, session, body).await;
                match (reply(&answer.response), answer.close) {
                    (Outcome::Respond(frame), true) => {
                        Outcome::RespondAndClose(frame, "SASL authentication failed".to_string())
                    }
                    (outcome, _) => outcome,
                }
            }
            RequestKind::DescribeUserScramCredentials(body) => match access.require_cluster(Op::Describe) {
                Ok(()) => reply(&handlers::users::describe(broker, &body)),
                Err(code) => reply(&DescribeUserScramCredentialsResponse::default().with_error_code(code)),
            },
            RequestKind::AlterUserScramCredentials(body) => match access.require_cluster(Op::Alter) {
                Ok(()) => reply(&handlers::users::alter(broker, body).await),
                Err(code) => reply(&refused::alter_user_scram_credentials(&body, code)),
            },
            RequestKind::CreateAcls(body) => match access.require_cluster(Op::Alter) {
                Ok(()) => reply(&handlers::acls::create(broker, body).await),
                Err(code) => reply(&refused::create_acls(&body, code)),
            },
            RequestKind::DescribeAcls(body) => match access.require_cluster(Op::Describe) {
                Ok(()) => reply(&handlers::acls::describe(broker, &body)),
                Err(code) => reply(&DescribeAclsResponse::default().with_error_code(code)),
            },
            RequestKind::DeleteAcls(body) => match access.require_cluster(Op::Alter) {
                Ok(()) => reply(&handlers::acls::delete(broker, body).await),
                Err(code) => reply(&refused::delete_acls(&body, code)),
            },
            RequestKind::Metadata(mut body) => {
                let listed_all =
                    body.topics.is_none() || (version == 0 && body.topics.as_ref().is_some_and(Vec::is_empty));
                let denied = access::metadata(&access, &mut body);
                // v0 reads an empty list as "every topic": so it is when every named one was refused.
                let none_left = !listed_all && body.topics.as_ref().is_some_and(Vec::is_empty);
                let mut response = handlers::metadata::handle(broker, version, body, &session.listener.name).await;
                if none_left {
                    response.topics.clear();
                }
                access::metadata_answer(&access, &mut response, denied, listed_all);
                reply(&response)
            }
            RequestKind::Produce(mut body) => {
                let denied = access::produce(&access, &mut body);
                // Counted before appending, as Kafka does; the append happens whatever the quota.
                let throttle_ms =
                    self.meter(QuotaKind::Produce, session, &client.client_id, produce_record_bytes(&body));
                match handlers::produce::append(Arc::clone(&self.broker), version, body).await {
                    Appending::Done(Ok(_)) => Outcome::NoResponse,
                    Appending::Done(Err(reason)) => Outcome::Close(reason),
                    Appending::Settling(settling) => Outcome::Deferred(Box::pin(async move {
                        let mut response = settling.settle().await;
                        access::produce_denied(&mut response, denied);
                        respond_erased(api_key, version, correlation_id, &response.with_throttle_time_ms(throttle_ms))
                    })),
                }
            }
            RequestKind::Fetch(mut body) => {
                let consumer = body.replica_id.0 < 0;
                let denied = access::fetch(&access, &mut body);
                let (mut response, mut reservation) = if body.topics.is_empty() && !denied.is_empty() {
                    // Nothing left to read: answer now rather than long-poll on nothing (Kafka's way).
                    (FetchResponse::default(), None)
                } else {
                    handlers::fetch::handle(broker, version, body).await
                };
                access::fetch_denied(&mut response, denied);
                if consumer {
                    let bytes = fetch_record_bytes(&response);
                    response.throttle_time_ms = self.meter(QuotaKind::Fetch, session, &client.client_id, bytes);
                    if response.throttle_time_ms > 0 {
                        without_records(&mut response);
                        reservation = None;
                    }
                }
                match (reply(&response), reservation) {
                    (Outcome::Respond(frame), Some(reservation)) => Outcome::RespondReserved(frame, reservation),
                    (outcome, _) => outcome,
                }
            }
            RequestKind::ListOffsets(mut body) => {
                let denied = access::list_offsets(&access, &mut body);
                let mut response = handlers::list_offsets::handle(broker, version, body).await;
                access::list_offsets_denied(&mut response, denied);
                reply(&response)
            }
            RequestKind::DeleteRecords(mut body) => {
                let denied = access::delete_records(&access, &mut body);
                let mut response = handlers::delete_records::handle(broker, body).await;
                access::delete_records_denied(&mut response, denied);
                reply(&response)
            }
            RequestKind::OffsetForLeaderEpoch(mut body) => {
                let denied = access::leader_epoch(&access, &mut body);
                let mut response = handlers::leader_epoch::handle(broker, body).await;
                access::leader_epoch_denied(&mut response, denied);
                reply(&response)
            }
            RequestKind::InitProducerId(body) => {
                if body.transactional_id.is_none() && !access.idempotent_write() {
                    reply(&refused::init_producer_id(kafka_code::CLUSTER_AUTHORIZATION_FAILED))
                } else {
                    reply(&handlers::producer_id::handle(broker, body).await)
                }
            }
            RequestKind::CreateTopics(mut body) => {
                let denied = access::create_topics(&access, &mut body);
                let mut response = handlers::admin::create_topics(broker, version, body).await;
                access::create_topics_denied(&mut response, denied);
                reply(&response)
            }
            RequestKind::DeleteTopics(mut body) => {
                let denied = access::delete_topics(&access, &mut body);
                let mut response = handlers::admin::delete_topics(broker, version, body).await;
                access::delete_topics_denied(&mut response, denied);
                reply(&response)
            }
            RequestKind::CreatePartitions(mut body) => {
                let denied = access::create_partitions(&access, &mut body);
                let mut response = handlers::admin::create_partitions(broker, body).await;
                access::create_partitions_denied(&mut response, denied);
                reply(&response)
            }
            RequestKind::DescribeCluster(body) => {
                let mut response = handlers::admin::describe_cluster(broker, &body, &session.listener.name);
                if response.cluster_authorized_operations != handlers::authorized_operations::NOT_REQUESTED {
                    response.cluster_authorized_operations = access.cluster_operations();
                }
                reply(&response)
            }
            RequestKind::ElectLeaders(body) => match access.require_cluster(Op::Alter) {
                Ok(()) => reply(&handlers::elect::handle(broker, version, body).await),
                Err(code) => reply(&refused::elect_leaders(version, &body, code)),
            },
            RequestKind::AlterPartitionReassignments(body) => match access.require_cluster(Op::Alter) {
                Ok(()) => reply(&handlers::reassign::alter(broker, version, body).await),
                Err(code) => reply(&AlterPartitionReassignmentsResponse::default().with_error_code(code)),
            },
            RequestKind::ListPartitionReassignments(body) => match access.require_cluster(Op::Describe) {
                Ok(()) => reply(&handlers::reassign::list(broker, &body)),
                Err(code) => reply(&ListPartitionReassignmentsResponse::default().with_error_code(code)),
            },
            RequestKind::DescribeQuorum(body) => match access.require_cluster(Op::Describe) {
                Ok(()) => reply(&handlers::quorum::describe(broker, version, body).await),
                Err(code) => reply(&DescribeQuorumResponse::default().with_error_code(code)),
            },
            RequestKind::AddRaftVoter(body) => match access.require_cluster(Op::Alter) {
                Ok(()) => reply(&handlers::quorum::add_voter(broker, body).await),
                Err(code) => reply(&AddRaftVoterResponse::default().with_error_code(code)),
            },
            RequestKind::RemoveRaftVoter(body) => match access.require_cluster(Op::Alter) {
                Ok(()) => reply(&handlers::quorum::remove_voter(broker, body).await),
                Err(code) => reply(&RemoveRaftVoterResponse::default().with_error_code(code)),
            },
            RequestKind::DescribeProducers(mut body) => {
                let denied = access::describe_producers(&access, &mut body);
                let mut response = handlers::describe_producers::handle(broker, body).await;
                access::describe_producers_denied(&mut response, denied);
                reply(&response)
            }
            RequestKind::DescribeLogDirs(body) => match access.require_cluster(Op::Describe) {
                Ok(()) => reply(&handlers::log_dirs::handle(broker, body).await),
                // v1–2 have no error field: the answer is empty, as Kafka's.
                Err(code) => {
                    reply(&DescribeLogDirsResponse::default().with_error_code(handlers::since(version, 3, code, 0)))
                }
            },
            RequestKind::DescribeClientQuotas(body) => match access.require_cluster(Op::DescribeConfigs) {
                Ok(()) => reply(&handlers::quotas::describe(broker, &body)),
                Err(code) => reply(&DescribeClientQuotasResponse::default().with_error_code(code).with_entries(None)),
            },
            RequestKind::AlterClientQuotas(body) => match access.require_cluster(Op::AlterConfigs) {
                Ok(()) => reply(&handlers::quotas::alter(broker, body).await),
                Err(code) => reply(&refused::alter_client_quotas(&body, code)),
            },
            RequestKind::DescribeConfigs(mut body) => {
                let denied = access::config_resources(&access, Op::DescribeConfigs, &mut body.resources, |r| {
                    (r.resource_type, r.resource_name.clone())
                });
                let mut response = handlers::configs::describe(broker, version, &body);
                refused::describe_configs(&mut response, denied);
                reply(&response)
            }
            RequestKind::AlterConfigs(mut body) => {
                let denied = access::config_resources(&access, Op::AlterConfigs, &mut body.resources, |r| {
                    (r.resource_type, r.resource_name.clone())
                });
                let mut response = handlers::configs::alter_configs(broker, body).await;
                refused::alter_configs(&mut response.responses, denied);
                reply(&response)
            }
            RequestKind::IncrementalAlterConfigs(mut body) => {
                let denied = access::config_resources(&access, Op::AlterConfigs, &mut body.resources, |r| {
                    (r.resource_type, r.resource_name.clone())
                });
                let mut response = handlers::configs::incremental_alter_configs(broker, body).await;
                refused::incremental_alter_configs(&mut response.responses, denied);
                reply(&response)
            }
            RequestKind::FindCoordinator(mut body) => {
                let is_group = body.key_type == 0;
                let may_describe = |key: &str| !is_group || access.group(Op::Describe, key);
                if version < 4 {
                    if may_describe(body.key.as_str()) {
                        reply(&handlers::groups::find_coordinator(broker, version, body, &session.listener.name).await)
                    } else {
                        reply(&refused::find_coordinator(version, GROUP_AUTHORIZATION_FAILED))
                    }
                } else {
                    let denied = access::take_denied(&mut body.coordinator_keys, |key| may_describe(key.as_str()));
                    let mut response =
                        handlers::groups::find_coordinator(broker, version, body, &session.listener.name).await;
                    refused::coordinators(&mut response, denied, GROUP_AUTHORIZATION_FAILED);
                    reply(&response)
                }
            }
            RequestKind::JoinGroup(body) => match access.group(Op::Read, body.group_id.0.as_str()) {
                true => reply(&handlers::groups::join_group(broker, version, body, &client).await),
                false => reply(&JoinGroupResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED)),
            },
            RequestKind::SyncGroup(body) => match access.group(Op::Read, body.group_id.0.as_str()) {
                true => reply(&handlers::groups::sync_group(broker, version, body).await),
                false => reply(&SyncGroupResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED)),
            },
            RequestKind::Heartbeat(body) => match access.group(Op::Read, body.group_id.0.as_str()) {
                true => reply(&handlers::groups::heartbeat(broker, body).await),
                false => reply(&HeartbeatResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED)),
            },
            RequestKind::LeaveGroup(body) => match access.group(Op::Read, body.group_id.0.as_str()) {
                true => reply(&handlers::groups::leave_group(broker, version, body).await),
                false => reply(&LeaveGroupResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED)),
            },
            RequestKind::OffsetCommit(mut body) => {
                let denied = access::offset_commit(&access, &mut body);
                let mut response = if body.topics.is_empty() && !denied.is_empty() {
                    OffsetCommitResponse::default()
                } else {
                    handlers::offsets::offset_commit(broker, body).await
                };
                access::offset_commit_denied(&mut response, denied);
                reply(&response)
            }
            RequestKind::OffsetFetch(mut body) => {
                let denied = access::offset_fetch(&access, &mut body);
                if access::offset_fetch_refused_whole(&denied) {
                    reply(&access::offset_fetch_refused(&access, version, denied))
                } else {
                    let mut response = handlers::offsets::offset_fetch(broker, version, body).await;
                    access::offset_fetch_answer(&access, &mut response, denied);
                    reply(&response)
                }
            }
            RequestKind::OffsetDelete(mut body) => match access::offset_delete(&access, &mut body) {
                Err(code) => reply(&OffsetDeleteResponse::default().with_error_code(code)),
                Ok(denied) => {
                    let mut response = handlers::offsets::offset_delete(broker, body).await;
                    access::offset_delete_denied(&mut response, denied);
                    reply(&response)
                }
            },
            RequestKind::ListGroups(body) => {
                let mut response = handlers::groups::list_groups(broker, body).await;
                if !access.cluster(Op::Describe) {
                    response.groups.retain(|group| access.group(Op::Describe, group.group_id.0.as_str()));
                }
                reply(&response)
            }
            RequestKind::DescribeGroups(mut body) => {
                let asked = body.include_authorized_operations;
                let denied =
                    access::take_denied(&mut body.groups, |group| access.group(Op::Describe, group.0.as_str()));
                let mut response = handlers::groups::describe_groups(broker, version, body).await;
                for group in &mut response.groups {
                    if asked && group.error_code == kafka_code::NONE {
                        group.authorized_operations =
                            access.operations(true, ResourceType::Group, group.group_id.0.as_str());
                    }
                }
                refused::described_groups(&mut response, denied);
                reply(&response)
            }
            RequestKind::DeleteGroups(mut body) => {
                let denied =
                    access::take_denied(&mut body.groups_names, |group| access.group(Op::Delete, group.0.as_str()));
                let mut response = handlers::groups::delete_groups(broker, body).await;
                refused::deleted_groups(&mut response, denied);
                reply(&response)
            }
            _ => {
                tracing::error!(api = ?api_key, version, "supported api has no handler");
                Outcome::Close(format!("{api_key:?} has no handler"))
            }
        }
    }
}

/// Bytes of record data in a produce request (what `producer_byte_rate` counts).
fn produce_record_bytes(request: &sluice_proto::kafka_protocol::messages::ProduceRequest) -> u64 {
    let partitions = request.topic_data.iter().flat_map(|topic| &topic.partition_data);
    partitions.map(|partition| partition.records.as_ref().map_or(0, |records| records.len() as u64)).sum()
}

/// Bytes of record data in a fetch response (what `consumer_byte_rate` counts).
fn fetch_record_bytes(response: &sluice_proto::kafka_protocol::messages::FetchResponse) -> u64 {
    let partitions = response.responses.iter().flat_map(|topic| &topic.partitions);
    partitions.map(|partition| partition.records.as_ref().map_or(0, |records| records.len() as u64)).sum()
}

/// A throttled fetch's answer (Kafka's `getThrottledResponse`): the partitions' positions,
/// no records; the consumer fetches the same offsets again after the throttle.
fn without_records(response: &mut sluice_proto::kafka_protocol::messages::FetchResponse) {
    for partition in response.responses.iter_mut().flat_map(|topic| topic.partitions.iter_mut()) {
        partition.records = Some(Bytes::new());
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

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the threshold applies to every API but the group waits, a Fetch's own long poll is
    // not counted as slowness, and 0 turns the log off.
    #[test]
    fn the_slow_request_limit_leaves_out_waits_by_design() {
        let ms = Duration::from_millis;
        assert_eq!(slow_request_limit(ApiKey::Produce, None, 1_000), Some(ms(1_000)));
        assert_eq!(slow_request_limit(ApiKey::Fetch, Some(500), 1_000), Some(ms(1_500)));
        assert_eq!(slow_request_limit(ApiKey::Fetch, Some(-1), 1_000), Some(ms(1_000)));
        assert_eq!(slow_request_limit(ApiKey::JoinGroup, None, 1_000), None);
        assert_eq!(slow_request_limit(ApiKey::SyncGroup, None, 1_000), None);
        assert_eq!(slow_request_limit(ApiKey::Produce, None, 0), None);
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // Goal: the server-side error line names the API, client id, peer, code, count and detail,
    // on one line.
    #[test]
    fn a_server_side_error_is_one_line_with_api_client_peer_and_code() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let peer: SocketAddr = "10.0.0.7:50123".parse().unwrap();
        let error = crate::request_scope::ServerError { code: 56, detail: "write /data/t-0: No space left".into() };
        tracing::subscriber::with_default(subscriber, || {
            log_server_error(ApiKey::Produce, "billing-app", peer, &error, 3, 17)
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        for part in [
            "WARN",
            "request failed on the server side",
            "api=Produce",
            "client_id=\"billing-app\"",
            "peer=10.0.0.7:50123",
            "code=56",
            "errors=3",
            "left_out=17",
            "No space left",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
    }

    // Goal: one line per API and code per interval, the next one counting what was left out;
    // another API or code has its own interval.
    #[test]
    fn server_error_lines_are_limited_per_api_and_code() {
        let log = ServerErrorLog::default();
        let start = std::time::Instant::now();
        let later = |ms| start + Duration::from_millis(ms);
        assert_eq!(log.due(ApiKey::Produce, 56, start), Some(0));
        assert_eq!(log.due(ApiKey::Produce, 56, later(1)), None);
        assert_eq!(log.due(ApiKey::Produce, 56, later(2)), None);
        assert_eq!(log.due(ApiKey::Fetch, 56, later(3)), Some(0), "another API");
        assert_eq!(log.due(ApiKey::Produce, -1, later(4)), Some(0), "another code");
        assert_eq!(log.due(ApiKey::Produce, 56, later(SERVER_ERROR_LOG_INTERVAL_MS + 1)), Some(2));
        assert_eq!(log.due(ApiKey::Produce, 56, later(SERVER_ERROR_LOG_INTERVAL_MS + 2)), None);
    }

    // Goal: the slow-request line names the API, client id, peer, elapsed and limit.
    #[test]
    fn a_slow_request_is_one_line_with_api_client_peer_and_elapsed() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let peer: SocketAddr = "10.0.0.7:50123".parse().unwrap();
        tracing::subscriber::with_default(subscriber, || {
            log_slow_request(ApiKey::Produce, "billing-app", peer, Duration::from_millis(1_234), Duration::from_secs(1))
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        for part in [
            "WARN",
            "slow request",
            "api=Produce",
            "client_id=\"billing-app\"",
            "peer=10.0.0.7:50123",
            "elapsed_ms=1234",
            "limit_ms=1000",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
    }
}
