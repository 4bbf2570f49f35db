//! SCRAM (RFC 5802, with SHA-256 and SHA-512 as RFC 7677 and Kafka use them) and PLAIN, the
//! server side: pure message handling, no I/O. The hashing, HMAC and PBKDF2 are RustCrypto's.
//!
//! ```text
//! client-first  n,,n=alice,r=<client nonce>
//! server-first  r=<client nonce><server nonce>,s=<salt b64>,i=<iterations>
//! client-final  c=biws,r=<both nonces>,p=<ClientProof b64>
//! server-final  v=<ServerSignature b64>
//! ```
//!
//! The broker keeps StoredKey = H(ClientKey) and ServerKey only ([`ScramCredential`]): a proof
//! is checked by recovering ClientKey = ClientProof ⊕ HMAC(StoredKey, AuthMessage) and
//! comparing H(ClientKey) with StoredKey in constant time. Channel binding is not offered
//! (`n` or `y` gs2 flags only), and neither is Kafka's delegation-token extension.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use sluice_meta::security::{ScramCredential, ScramMechanism};
use subtle::ConstantTimeEq;

/// Longest SASL token the broker reads, in bytes: a SCRAM or PLAIN message is a user name,
/// nonces and a proof, far below this. A longer one fails authentication before it is parsed.
pub const SASL_TOKEN_BYTES_MAX: usize = 8 * 1024;

/// Bytes of the random part of the server nonce (base64-encoded on the wire).
pub const SERVER_NONCE_BYTES: usize = 24;

/// Bytes of the random salt `sluice user create` gives a new credential.
pub const SALT_BYTES: usize = 32;

/// Why authentication failed. The client is told only that it failed (Kafka's
/// SASL_AUTHENTICATION_FAILED with this text), so a wrong user and a wrong password read alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The message does not follow the mechanism's grammar.
    #[error("malformed {mechanism} message: {reason}")]
    Malformed {
        /// The mechanism.
        mechanism: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Unknown user, or wrong password or proof.
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")]
    InvalidCredentials {
        /// The mechanism.
        mechanism: &'static str,
    },
}

fn malformed(mechanism: &'static str, reason: impl Into<String>) -> AuthError {
    AuthError::Malformed { mechanism, reason: reason.into() }
}

fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        ScramMechanism::Sha512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes keys of any length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(mechanism: ScramMechanism, data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
        ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// `Hi(password, salt, iterations)`: PBKDF2 with the mechanism's HMAC.
pub fn salted_password(mechanism: ScramMechanism, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0; mechanism.hash_bytes()];
    match mechanism {
        ScramMechanism::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
        ScramMechanism::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out),
    }
    out
}

/// The stored credential for a salted password (what AlterUserScramCredentials sends).
pub fn credential_from_salted(
    mechanism: ScramMechanism,
    salted_password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> ScramCredential {
    let client_key = hmac(mechanism, salted_password, b"Client Key");
    ScramCredential {
        salt: salt.to_vec(),
        stored_key: hash(mechanism, &client_key),
        server_key: hmac(mechanism, salted_password, b"Server Key"),
        iterations,
    }
}

/// Whether `password` is the one `credential` was made from (PLAIN over SCRAM credentials).
/// Costs the credential's PBKDF2 iterations: call it off the async runtime.
pub fn password_matches(mechanism: ScramMechanism, credential: &ScramCredential, password: &[u8]) -> bool {
    let salted = salted_password(mechanism, password, &credential.salt, credential.iterations);
    let candidate = credential_from_salted(mechanism, &salted, &credential.salt, credential.iterations);
    bool::from(candidate.stored_key.ct_eq(&credential.stored_key))
}

/// A PLAIN message (RFC 4616): `[authzid] NUL authcid NUL password`; returns the user and
/// password. An authorization id other than the user is refused, as Kafka refuses it.
pub fn parse_plain(token: &[u8]) -> Result<(String, Vec<u8>), AuthError> {
    const PLAIN: &str = "PLAIN";
    let mut parts = token.splitn(3, |b| *b == 0);
    let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed(PLAIN, "expected authzid NUL user NUL password"));
    };
    let user = std::str::from_utf8(user).map_err(|_| malformed(PLAIN, "user is not UTF-8"))?;
    if user.is_empty() || password.is_empty() {
        return Err(malformed(PLAIN, "empty user or password"));
    }
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err(malformed(PLAIN, "authorization id differs from the user"));
    }
    Ok((user.to_string(), password.to_vec()))
}

/// Decodes a SCRAM `saslname` (`=2C` is `,`, `=3D` is `=`).
fn decode_saslname(mechanism: &'static str, name: &str) -> Result<String, AuthError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(malformed(mechanism, "bad escape in user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The attribute `key=` at the start of `part`.
fn attribute<'a>(mechanism: &'static str, part: Option<&'a str>, key: char) -> Result<&'a str, AuthError> {
    part.and_then(|p| p.strip_prefix(key))
        .and_then(|p| p.strip_prefix('='))
        .ok_or_else(|| malformed(mechanism, format!("expected attribute {key}=")))
}

/// A parsed client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The user name.
    pub user: String,
    /// The client's nonce.
    pub nonce: String,
    gs2_header: String,
    bare: String,
}

/// Parses a client-first message.
pub fn parse_client_first(mechanism: ScramMechanism, token: &[u8]) -> Result<ClientFirst, AuthError> {
    let name = mechanism.sasl_name();
    let text = std::str::from_utf8(token).map_err(|_| malformed(name, "not UTF-8"))?;
    let mut fields = text.splitn(3, ',');
    let flag = fields.next().unwrap_or_default();
    if flag.starts_with('p') {
        return Err(malformed(name, "channel binding is not supported"));
    }
    if flag != "n" && flag != "y" {
        return Err(malformed(name, "bad gs2 channel-binding flag"));
    }
    let authzid = fields.next().ok_or_else(|| malformed(name, "missing gs2 header"))?;
    let bare = fields.next().ok_or_else(|| malformed(name, "missing client-first-bare"))?;
    let mut attributes = bare.split(',');
    let user = decode_saslname(name, attribute(name, attributes.next(), 'n')?)?;
    let nonce = attribute(name, attributes.next(), 'r')?;
    if let Some(authzid) = authzid.strip_prefix("a=") {
        if decode_saslname(name, authzid)? != user {
            return Err(malformed(name, "authorization id differs from the user"));
        }
    } else if !authzid.is_empty() {
        return Err(malformed(name, "bad gs2 authorization id"));
    }
    if user.is_empty() || nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') {
        return Err(malformed(name, "empty user or bad nonce"));
    }
    if attributes.any(|extension| extension.starts_with("tokenauth=")) {
        return Err(malformed(name, "delegation tokens are not supported"));
    }
    Ok(ClientFirst { user, nonce: nonce.to_string(), gs2_header: format!("{flag},{authzid},"), bare: bare.to_string() })
}

/// The server's side of one SCRAM exchange after the client-first message.
#[derive(Debug, Clone)]
pub struct ScramExchange {
    mechanism: ScramMechanism,
    user: String,
    credential: ScramCredential,
    client_first: ClientFirst,
    server_first: String,
}

impl ScramExchange {
    /// Starts the exchange for `client_first` against the user's `credential`, with
    /// `server_nonce_bytes` of randomness; returns the exchange and the server-first message.
    pub fn start(
        mechanism: ScramMechanism,
        client_first: ClientFirst,
        credential: ScramCredential,
        server_nonce_bytes: &[u8],
    ) -> (ScramExchange, Vec<u8>) {
        let server_nonce = BASE64.encode(server_nonce_bytes).replace(',', "-");
        let server_first = format!(
            "r={}{},s={},i={}",
            client_first.nonce,
            server_nonce,
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let message = server_first.clone().into_bytes();
        let user = client_first.user.clone();
        (ScramExchange { mechanism, user, credential, client_first, server_first }, message)
    }

    /// The user this exchange authenticates.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Checks the client-final message; on success returns the server-final message.
    pub fn finish(&self, token: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mechanism = self.mechanism;
        let name = mechanism.sasl_name();
        let text = std::str::from_utf8(token).map_err(|_| malformed(name, "not UTF-8"))?;
        let (without_proof, proof) =
            text.rsplit_once(",p=").ok_or_else(|| malformed(name, "client-final has no proof"))?;
        let mut attributes = without_proof.split(',');
        let binding = attribute(name, attributes.next(), 'c')?;
        let nonce = attribute(name, attributes.next(), 'r')?;
        if BASE64.decode(binding).ok().as_deref() != Some(self.client_first.gs2_header.as_bytes()) {
            return Err(malformed(name, "channel binding does not repeat the gs2 header"));
        }
        let expected_nonce = self.server_first[2..].split(',').next().unwrap_or_default();
        // Kafka's own check is "ends with": librdkafka (2.0 at least) sends the client nonce
        // once more in front of the combined one, and the proof covers what it sent.
        if !nonce.ends_with(expected_nonce) {
            return Err(malformed(name, "nonce differs from the server's"));
        }
        let proof = BASE64.decode(proof).map_err(|_| malformed(name, "proof is not base64"))?;
        let auth_message = format!("{},{},{}", self.client_first.bare, self.server_first, without_proof);
        let client_signature = hmac(mechanism, &self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(AuthError::InvalidCredentials { mechanism: name });
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
        if !bool::from(hash(mechanism, &client_key).ct_eq(&self.credential.stored_key)) {
            return Err(AuthError::InvalidCredentials { mechanism: name });
        }
        let server_signature = hmac(mechanism, &self.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the server side reproduces RFC 7677's SCRAM-SHA-256 example byte for byte (user
    // "user", password "pencil", its salt, nonces and 4096 iterations) and accepts its proof.
    #[test]
    fn rfc_7677_example_exchange() {
        let mechanism = ScramMechanism::Sha256;
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(mechanism, b"pencil", &salt, 4096);
        let credential = credential_from_salted(mechanism, &salted, &salt, 4096);
        let first = parse_client_first(mechanism, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.user, "user");
        let mut exchange = ScramExchange::start(mechanism, first, credential, b"unused").0;
        // The RFC's server nonce, instead of a random one.
        exchange.server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".into();
        let server_final = exchange
            .finish(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(server_final, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        let wrong = exchange
            .finish(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap_err();
        assert!(matches!(wrong, AuthError::InvalidCredentials { .. }));
    }

    // Goal: a whole SHA-512 exchange computed the client's way succeeds, and PLAIN checks a
    // password against the same stored credential.
    #[test]
    fn sha512_exchange_and_plain_against_the_stored_credential() {
        let mechanism = ScramMechanism::Sha512;
        let salt = b"0123456789abcdef";
        let salted = salted_password(mechanism, b"s3cret", salt, 4096);
        let credential = credential_from_salted(mechanism, &salted, salt, 4096);
        assert!(password_matches(mechanism, &credential, b"s3cret"));
        assert!(!password_matches(mechanism, &credential, b"s3cret!"));

        let first = parse_client_first(mechanism, b"n,,n=alice,r=abc").unwrap();
        let (exchange, server_first) = ScramExchange::start(mechanism, first, credential, b"nonce-bytes");
        let server_first = String::from_utf8(server_first).unwrap();
        let nonce = server_first.split(',').next().unwrap().strip_prefix("r=").unwrap();
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("n=alice,r=abc,{server_first},{without_proof}");
        let client_key = hmac(mechanism, &salted, b"Client Key");
        let signature = hmac(mechanism, &hash(mechanism, &client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        let final_message = format!("{without_proof},p={}", BASE64.encode(proof));
        let server_final = exchange.finish(final_message.as_bytes()).unwrap();
        let expected = hmac(mechanism, &hmac(mechanism, &salted, b"Server Key"), auth_message.as_bytes());
        assert_eq!(server_final, format!("v={}", BASE64.encode(expected)).into_bytes());
    }

    // Goal: malformed messages are refused with a reason, never a panic.
    #[test]
    fn malformed_messages_are_refused() {
        let mechanism = ScramMechanism::Sha256;
        for token in [
            &b""[..],
            b"n",
            b"p=tls-unique,,n=a,r=b",
            b"x,,n=a,r=b",
            b"n,,r=b",
            b"n,,n=a",
            b"n,,n=a=,r=b",
            b"n,,n=,r=b",
            b"n,a=bob,n=alice,r=b",
            b"n,,n=a,r=b,tokenauth=true",
            b"\xff\xfe",
        ] {
            assert!(parse_client_first(mechanism, token).is_err(), "{:?}", String::from_utf8_lossy(token));
        }
        assert_eq!(parse_client_first(mechanism, b"n,,n=a=2Cb=3Dc,r=x").unwrap().user, "a,b=c");
        assert_eq!(parse_plain(b"\0alice\0pw").unwrap(), ("alice".to_string(), b"pw".to_vec()));
        assert_eq!(parse_plain(b"alice\0alice\0pw").unwrap().0, "alice");
        for token in [&b"alice"[..], b"\0alice", b"bob\0alice\0pw", b"\0\0pw", b"\0alice\0"] {
            assert!(parse_plain(token).is_err(), "{:?}", String::from_utf8_lossy(token));
        }
        let salt = b"salt";
        let credential = credential_from_salted(mechanism, &salted_password(mechanism, b"p", salt, 4096), salt, 4096);
        let first = parse_client_first(mechanism, b"n,,n=a,r=abc").unwrap();
        let (exchange, _) = ScramExchange::start(mechanism, first, credential, b"n");
        for token in [&b""[..], b"c=biws,r=abc", b"c=biws,r=wrong,p=AAAA", b"c=eSws,r=abc,p=AAAA", b"c=biws,r=abc,p=!!"]
        {
            assert!(exchange.finish(token).is_err(), "{:?}", String::from_utf8_lossy(token));
        }
    }
}
