//! Request dispatch: from a request payload to what the connection does next.
//!
//! ```text
//! payload ─ read_request_prefix ─┬─ too short / unknown api ─────────────▶ Close
//!                                ├─ ApiVersions, unsupported version ────▶ Respond (v0, UNSUPPORTED_VERSION)
//!                                ├─ other api, unsupported version ──────▶ Close
//!                                └─ decode_request (guarded) ─┬─ error ──▶ Close
//!                                                             └─ handler ▶ Respond / NoResponse
//! ```
//!
//! Closing is Kafka's behaviour for a request it cannot parse or does not support (except
//! ApiVersions, which must always be answerable). To add an api: write its handler, add a match
//! arm in `Dispatcher::handle`, and add its range to [`api_versions::supported_apis`] — the
//! table test below fails if the two disagree.

use bytes::Bytes;
use sluice_proto::kafka_protocol::messages::{ApiKey, RequestKind};
use sluice_proto::{decode_request, encode_response, read_request_prefix, ProtoError, Request, SupportedApis};

use crate::api_versions;

/// What the connection does after a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Write this frame (length prefix included), in request order.
    Respond(Bytes),
    /// The request expects no response (Produce with acks=0); go on with the next one.
    NoResponse,
    /// Close the connection; the reason is logged.
    Close(String),
}

/// Routes requests to handlers. Holds what handlers share; one per broker.
#[derive(Debug)]
pub struct Dispatcher {
    supported: SupportedApis,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher::new()
    }
}

impl Dispatcher {
    /// A dispatcher answering exactly [`api_versions::supported_apis`].
    pub fn new() -> Self {
        Dispatcher { supported: api_versions::supported_apis() }
    }

    /// The table ApiVersions answers with.
    pub fn supported(&self) -> &SupportedApis {
        &self.supported
    }

    /// Handles one request payload (frame prefix removed).
    pub async fn dispatch(&self, payload: Bytes) -> Outcome {
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
        match decode_request(payload, &self.supported) {
            Ok(request) => self.handle(request).await,
            Err(error @ ProtoError::UnknownApiKey { .. }) | Err(error @ ProtoError::UnsupportedVersion { .. }) => {
                Outcome::Close(format!("{error} (correlation id {})", prefix.correlation_id))
            }
            Err(error) => {
                Outcome::Close(format!("cannot decode api {} v{}: {error}", prefix.api_key, prefix.api_version))
            }
        }
    }

    async fn handle(&self, request: Request) -> Outcome {
        let version = request.api_version();
        let correlation_id = request.correlation_id();
        match &request.body {
            RequestKind::ApiVersions(body) => {
                let response = api_versions::handle(&self.supported, version, body);
                respond(ApiKey::ApiVersions, version, correlation_id, &response)
            }
            _ => {
                tracing::error!(api = ?request.api_key, version, "supported api has no handler");
                Outcome::Close(format!("{:?} has no handler", request.api_key))
            }
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
    use sluice_proto::encode_request;
    use sluice_proto::kafka_protocol::messages::{ApiVersionsRequest, RequestHeader};
    use sluice_proto::kafka_protocol::protocol::StrBytes;

    fn minimal_request(api_key: ApiKey, version: i16) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(1);
        let frame = match api_key {
            ApiKey::ApiVersions => encode_request(
                &header,
                &ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("t"))
                    .with_client_software_version(StrBytes::from_static_str("1")),
            ),
            other => panic!("add a minimal {other:?} request to this test"),
        };
        frame.unwrap().slice(4..)
    }

    /// Every api the table advertises has a handler, at both ends of its range.
    #[tokio::test]
    async fn every_supported_api_has_a_handler() {
        let dispatcher = Dispatcher::new();
        for range in dispatcher.supported().ranges() {
            for version in [range.min_version, range.max_version] {
                let outcome = dispatcher.dispatch(minimal_request(range.api_key, version)).await;
                assert!(matches!(outcome, Outcome::Respond(_)), "{:?} v{version}: {outcome:?}", range.api_key);
            }
        }
    }
}
