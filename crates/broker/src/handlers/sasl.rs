//! SaslHandshake and SaslAuthenticate: moving a connection's [`SaslState`] along, checking
//! tokens against the SCRAM credentials of the metadata view.
//!
//! A failed authentication is answered with SASL_AUTHENTICATION_FAILED after the address's
//! growing delay ([`FailedLogins`]), logged once with the peer address, and the connection is
//! closed after the answer, as Kafka closes it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_meta::security::{ScramCredential, ScramMechanism};
use sluice_proto::kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::kafka_code;
use crate::security::sasl::{FailedLogins, Mechanism, SaslConfig, SaslState};
use crate::security::scram::{self, AuthError, ScramExchange, SASL_TOKEN_BYTES_MAX, SERVER_NONCE_BYTES};
use crate::security::Session;

/// SaslHandshake: choose a mechanism (first authentication, or a KIP-152 re-authentication of
/// an authenticated session).
/// A v0 handshake is refused with UNSUPPORTED_VERSION: raw SASL tokens would follow it.
pub fn handshake(
    config: &SaslConfig,
    session: &mut Session,
    version: i16,
    request: &SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let offered: Vec<StrBytes> = config.mechanisms.iter().map(|m| StrBytes::from_static_str(m.name())).collect();
    let response = |code| SaslHandshakeResponse::default().with_error_code(code).with_mechanisms(offered.clone());
    if version == 0 {
        return response(kafka_code::UNSUPPORTED_VERSION);
    }
    let reauth = match &session.sasl {
        SaslState::AwaitingHandshake => None,
        SaslState::Authenticated { user, .. } => Some(user.clone()),
        _ => return response(kafka_code::ILLEGAL_SASL_STATE),
    };
    let wanted = Mechanism::from_name(request.mechanism.as_str()).filter(|m| config.mechanisms.contains(m));
    let Some(mechanism) = wanted else {
        return response(kafka_code::UNSUPPORTED_SASL_MECHANISM);
    };
    session.sasl = SaslState::AwaitingToken { mechanism, reauth };
    response(kafka_code::NONE)
}

/// What SaslAuthenticate answers, and whether the connection closes after the answer.
#[derive(Debug)]
pub struct Authenticated {
    /// The response.
    pub response: SaslAuthenticateResponse,
    /// Close the connection once the response is written (failed authentication).
    pub close: bool,
}

/// SaslAuthenticate: one token of the exchange the handshake started.
pub async fn authenticate(
    broker: &Broker,
    config: &SaslConfig,
    failed: &FailedLogins,
    session: &mut Session,
    request: SaslAuthenticateRequest,
) -> Authenticated {
    let state = std::mem::replace(&mut session.sasl, SaslState::AwaitingHandshake);
    let token = request.auth_bytes;
    let step = match state {
        SaslState::AwaitingToken { .. } | SaslState::Scram { .. } if token.len() > SASL_TOKEN_BYTES_MAX => {
            Err(AuthError::Malformed { mechanism: "SASL", reason: format!("token over {SASL_TOKEN_BYTES_MAX} bytes") })
        }
        SaslState::AwaitingToken { mechanism: Mechanism::Plain, reauth } => {
            plain(broker, &token).await.map(|user| Step::Done { user, reauth, reply: Bytes::new() })
        }
        SaslState::AwaitingToken { mechanism: Mechanism::Scram(scram), reauth } => {
            scram_first(broker, scram, &token).map(|(exchange, reply)| Step::Continue { exchange, reauth, reply })
        }
        SaslState::Scram { exchange, reauth } => exchange.finish(&token).map(|reply| Step::Done {
            user: exchange.user().to_string(),
            reauth,
            reply: Bytes::from(reply),
        }),
        other => {
            // Off a SASL listener the connection goes on (as Kafka's); on one, out of order
            // means a confused or hostile client.
            let close = !matches!(other, SaslState::NotRequired);
            session.sasl = other;
            let message = "SaslAuthenticate without a SaslHandshake first";
            return Authenticated { response: failure(kafka_code::ILLEGAL_SASL_STATE, message), close };
        }
    };
    match step {
        Ok(Step::Continue { exchange, reauth, reply }) => {
            session.sasl = SaslState::Scram { exchange, reauth };
            Authenticated { response: SaslAuthenticateResponse::default().with_auth_bytes(reply), close: false }
        }
        Ok(Step::Done { user, reauth, reply }) => {
            if let Some(previous) = reauth.filter(|previous| *previous != user) {
                tracing::info!(peer = %session.peer, previous, user, "re-authentication as another user refused");
                let message = "re-authentication may not change the principal";
                return Authenticated {
                    response: failure(kafka_code::SASL_AUTHENTICATION_FAILED, message),
                    close: true,
                };
            }
            let lifetime_ms = config.reauth_ms;
            let expires = (lifetime_ms > 0).then(|| Instant::now() + Duration::from_millis(lifetime_ms));
            tracing::debug!(peer = %session.peer, user, listener = %session.listener.name, "SASL authenticated");
            session.authenticated_as(&user, expires);
            let response = SaslAuthenticateResponse::default()
                .with_auth_bytes(reply)
                .with_session_lifetime_ms(i64::try_from(lifetime_ms).unwrap_or(i64::MAX));
            Authenticated { response, close: false }
        }
        Err(error) => {
            let delay = failed.record(session.peer.ip(), Instant::now());
            tracing::info!(
                peer = %session.peer,
                listener = %session.listener.name,
                %error,
                delay_ms = delay.as_millis() as u64,
                "failed authentication"
            );
            tokio::time::sleep(delay).await;
            let message = match error {
                AuthError::InvalidCredentials { .. } => error.to_string(),
                AuthError::Malformed { .. } => format!("Authentication failed: {error}"),
            };
            Authenticated { response: failure(kafka_code::SASL_AUTHENTICATION_FAILED, &message), close: true }
        }
    }
}

enum Step {
    Continue { exchange: Box<ScramExchange>, reauth: Option<String>, reply: Bytes },
    Done { user: String, reauth: Option<String>, reply: Bytes },
}

fn failure(code: i16, message: &str) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
}

/// The user's credential for `mechanism` in the applied view.
fn credential(broker: &Broker, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
    broker.view().security.scram.get(user).and_then(|mechanisms| mechanisms.get(&mechanism)).cloned()
}

async fn plain(broker: &Broker, token: &[u8]) -> Result<String, AuthError> {
    let (user, password) = scram::parse_plain(token)?;
    let invalid = AuthError::InvalidCredentials { mechanism: "PLAIN" };
    // Either SCRAM credential proves the password; SHA-512 first.
    let found = [ScramMechanism::Sha512, ScramMechanism::Sha256]
        .into_iter()
        .find_map(|mechanism| credential(broker, &user, mechanism).map(|c| (mechanism, c)));
    let Some((mechanism, credential)) = found else {
        return Err(invalid);
    };
    // PBKDF2 with up to 16,384 iterations: off the async runtime.
    let matches = tokio::task::spawn_blocking(move || scram::password_matches(mechanism, &credential, &password)).await;
    match matches {
        Ok(true) => Ok(user),
        _ => Err(invalid),
    }
}

fn scram_first(
    broker: &Broker,
    mechanism: ScramMechanism,
    token: &[u8],
) -> Result<(Box<ScramExchange>, Bytes), AuthError> {
    let first = scram::parse_client_first(mechanism, token)?;
    let credential = credential(broker, &first.user, mechanism)
        .ok_or(AuthError::InvalidCredentials { mechanism: mechanism.sasl_name() })?;
    let nonce: [u8; SERVER_NONCE_BYTES] = rand::random();
    let (exchange, reply) = ScramExchange::start(mechanism, first, credential, &nonce);
    Ok((Box::new(exchange), Bytes::from(reply)))
}
