//! Client-side SASL on a new connection: SaslHandshake v1, then SaslAuthenticate with PLAIN
//! (RFC 4616) or SCRAM-SHA-256/512 (RFC 5802; PBKDF2, HMAC and SHA-2 from RustCrypto). Over
//! plain TCP only: this client does not speak TLS, so use it on SASL_PLAINTEXT listeners (or
//! with PLAIN only where the network is trusted).
//!
//! The client does not re-authenticate (KIP-152): a broker with `connections.max.reauth.ms`
//! closes the connection when the session ends and the next request dials a new one.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use sluice_proto::kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use sluice_proto::kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::error::{ClientError, Result};

/// A SASL mechanism this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// PLAIN: the password is sent as it is.
    Plain,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl std::str::FromStr for SaslMechanism {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<SaslMechanism, String> {
        match text.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            _ => Err(format!("unknown SASL mechanism {text:?} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")),
        }
    }
}

/// Who the client authenticates as (`sasl.mechanism`, `sasl.username`, `sasl.password`).
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Iteration counts a broker may ask for: RFC 7677's minimum, and a bound so that a hostile
/// broker cannot make the client spin (Kafka allows up to 16,384).
const SCRAM_ITERATIONS_MIN: u32 = 4_096;
const SCRAM_ITERATIONS_MAX: u32 = 100_000;

const HANDSHAKE_VERSION: i16 = 1;
const AUTHENTICATE_VERSION: i16 = 1;

fn failed(connection: &Connection, reason: impl Into<String>) -> ClientError {
    ClientError::kafka(58, format!("SASL authentication to {}", connection.address()), Some(reason.into()))
}

/// Authenticates `connection` with `credentials`.
pub(crate) async fn authenticate(connection: &Connection, credentials: &SaslCredentials) -> Result<()> {
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(credentials.mechanism.name()));
    let answer: SaslHandshakeResponse =
        connection.call_at(HANDSHAKE_VERSION, &handshake, std::time::Duration::ZERO).await?;
    if answer.error_code != 0 {
        let offered: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
        let reason = format!("{} refused; the broker offers {}", credentials.mechanism.name(), offered.join(", "));
        return Err(ClientError::kafka(
            answer.error_code,
            format!("SASL handshake with {}", connection.address()),
            Some(reason),
        ));
    }
    match credentials.mechanism {
        SaslMechanism::Plain => {
            let token = format!("\0{}\0{}", credentials.username, credentials.password);
            step(connection, token.into_bytes()).await.map(|_| ())
        }
        SaslMechanism::ScramSha256 => scram(connection, credentials, Hash::Sha256).await,
        SaslMechanism::ScramSha512 => scram(connection, credentials, Hash::Sha512).await,
    }
}

async fn step(connection: &Connection, token: Vec<u8>) -> Result<Bytes> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
    let answer: SaslAuthenticateResponse =
        connection.call_at(AUTHENTICATE_VERSION, &request, std::time::Duration::ZERO).await?;
    if answer.error_code != 0 {
        let message = answer.error_message.map(|m| m.to_string());
        return Err(ClientError::kafka(
            answer.error_code,
            format!("SASL authentication to {}", connection.address()),
            message,
        ));
    }
    Ok(answer.auth_bytes)
}

/// The hash of a SCRAM mechanism.
#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes keys of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            Hash::Sha512 => {
                let mut out = vec![0; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

async fn scram(connection: &Connection, credentials: &SaslCredentials, hash: Hash) -> Result<()> {
    let user = credentials.username.replace('=', "=3D").replace(',', "=2C");
    let nonce = BASE64.encode(rand::random::<[u8; 24]>());
    let client_first_bare = format!("n={user},r={nonce}");
    let server_first = step(connection, format!("n,,{client_first_bare}").into_bytes()).await?;
    let server_first =
        String::from_utf8(server_first.to_vec()).map_err(|_| failed(connection, "server-first is not UTF-8"))?;
    let mut combined = None;
    let mut salt = None;
    let mut iterations = None;
    for attribute in server_first.split(',') {
        match attribute.split_once('=') {
            Some(("r", value)) => combined = Some(value.to_string()),
            Some(("s", value)) => salt = BASE64.decode(value).ok(),
            Some(("i", value)) => iterations = value.parse::<u32>().ok(),
            _ => {}
        }
    }
    let (Some(combined), Some(salt), Some(iterations)) = (combined, salt, iterations) else {
        return Err(failed(connection, "malformed server-first message"));
    };
    if !combined.starts_with(&nonce) || !(SCRAM_ITERATIONS_MIN..=SCRAM_ITERATIONS_MAX).contains(&iterations) {
        return Err(failed(connection, "server-first message does not continue this exchange"));
    }
    let salted = hash.salted_password(credentials.password.as_bytes(), &salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.digest(&client_key);
    let without_proof = format!("c=biws,r={combined}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hash.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
    let server_final = step(connection, format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes()).await?;
    let expected = hash.hmac(&hash.hmac(&salted, b"Server Key"), auth_message.as_bytes());
    if server_final.as_ref() != format!("v={}", BASE64.encode(expected)).as_bytes() {
        return Err(failed(connection, "the broker's signature does not match: it does not know the password"));
    }
    Ok(())
}
