//! Listeners, TLS and SASL against a real in-process broker, speaking real bytes: a broker with
//! a PLAINTEXT default listener, a SASL_PLAINTEXT one and an SSL one with client certificates
//! required, certificates made in the test (rcgen). The real-client matrix (kcat, librdkafka,
//! kafka-python) is `tests/security/test_security_matrix.py`; this file covers what needs the
//! bytes under control: out-of-order and bad SASL messages, garbage and stalled TLS
//! handshakes, re-authentication, the failed-login delay.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{TestBroker, IO_TIMEOUT};
use sluice_broker::security::tls::{ClientAuth, TlsSettings};
use sluice_broker::NodeConfig;
use sluice_proto::kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use sluice_proto::kafka_protocol::messages::*;
use sluice_proto::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice_proto::{decode_response, encode_request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A CA, the broker's certificate and a client certificate, as PEM files in `dir`.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
        let pki = Pki { ca, ca_key, dir };
        pki.issue("broker", &["localhost", "127.0.0.1"], "sluice-broker", None);
        pki
    }

    /// Writes `<name>.crt` and `<name>.key`, signed by the CA; returns the PEMs.
    fn issue(&self, name: &str, sans: &[&str], common_name: &str, unit: Option<&str>) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "sluice-test");
        if let Some(unit) = unit {
            params.distinguished_name.push(rcgen::DnType::OrganizationalUnitName, unit);
        }
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        std::fs::write(self.dir.path().join(format!("{name}.crt")), certificate.pem()).unwrap();
        std::fs::write(self.dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        (certificate.pem(), key.serialize_pem())
    }

    fn settings(&self) -> TlsSettings {
        TlsSettings {
            certificate: self.dir.path().join("broker.crt"),
            key: self.dir.path().join("broker.key"),
            ca: Some(self.dir.path().join("ca.crt")),
            client_auth: ClientAuth::Required,
        }
    }

    /// A rustls client trusting the CA, presenting `client` (a name given to [`Pki::issue`]).
    fn connector(&self, client: Option<&str>) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some(name) => {
                use rustls_pki_types::pem::PemObject;
                let chain =
                    rustls_pki_types::CertificateDer::pem_file_iter(self.dir.path().join(format!("{name}.crt")))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                let key = rustls_pki_types::PrivateKeyDer::from_pem_file(self.dir.path().join(format!("{name}.key")))
                    .unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        };
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

async fn start(pki: &Pki, reauth_ms: u64) -> (TestBroker, tempfile::TempDir) {
    let temp = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::ephemeral(1, temp.path());
    config.listeners.listeners = "SASL_PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0".into();
    config.tls = Some(pki.settings());
    config.sasl.reauth_ms = reauth_ms;
    (TestBroker::start_config(config).await, temp)
}

fn listener(broker: &TestBroker, name: &str) -> SocketAddr {
    broker.listeners.iter().find(|(n, _)| n == name).map(|(_, a)| *a).unwrap()
}

/// Sends `body` and decodes the answer, on any stream.
async fn call<S, Req, Resp>(stream: &mut S, api_key: ApiKey, version: i16, body: &Req) -> Resp
where
    S: AsyncRead + AsyncWrite + Unpin,
    Req: Encodable,
    Resp: Decodable,
{
    let frame = encode_request(&common::header(api_key, version, 7), body).unwrap();
    stream.write_all(&frame).await.unwrap();
    let payload = tokio::time::timeout(IO_TIMEOUT, async {
        let length = stream.read_i32().await.expect("length prefix");
        let mut payload = vec![0; usize::try_from(length).unwrap()];
        stream.read_exact(&mut payload).await.expect("payload");
        Bytes::from(payload)
    })
    .await
    .expect("an answer in time");
    decode_response(api_key, version, payload).unwrap().1
}

/// Whether the broker closed `stream` (end of stream or reset) within the timeout.
async fn closed<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut byte = [0u8; 1];
    matches!(tokio::time::timeout(IO_TIMEOUT, stream.read(&mut byte)).await, Ok(Ok(0)) | Ok(Err(_)))
}

async fn create_user(broker: &TestBroker, user: &str, password: &str) {
    let mut stream = broker.connect().await;
    let salt = b"0123456789abcdef0123456789abcdef";
    let salted = sluice_broker::security::scram::salted_password(
        sluice_meta::security::ScramMechanism::Sha512,
        password.as_bytes(),
        salt,
        4096,
    );
    let request =
        AlterUserScramCredentialsRequest::default().with_upsertions(vec![ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(user.into()))
            .with_mechanism(2)
            .with_iterations(4096)
            .with_salt(Bytes::from_static(salt))
            .with_salted_password(salted.into())]);
    let response: AlterUserScramCredentialsResponse =
        call(&mut stream, ApiKey::AlterUserScramCredentials, 0, &request).await;
    assert_eq!(response.results[0].error_code, 0, "{:?}", response.results[0].error_message);
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, mechanism: &'static str) -> i16 {
    let request = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
    let response: SaslHandshakeResponse = call(stream, ApiKey::SaslHandshake, 1, &request).await;
    response.error_code
}

async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, token: &[u8]) -> SaslAuthenticateResponse {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token));
    call(stream, ApiKey::SaslAuthenticate, 2, &request).await
}

async fn metadata<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> MetadataResponse {
    call(stream, ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).await
}

// Goal: on a SASL listener nothing but ApiVersions and the SASL requests is answered before
// authentication (the connection is closed); PLAIN with the right password opens it and
// Metadata then names the brokers by their SASL listener's address; a wrong password gets
// SASL_AUTHENTICATION_FAILED, a closed connection, and a growing delay.
#[tokio::test]
async fn sasl_listener_admits_only_authenticated_clients() {
    let pki = Pki::new();
    let (broker, _temp) = start(&pki, 0).await;
    create_user(&broker, "alice", "alice-secret").await;
    let sasl = listener(&broker, "SASL_PLAINTEXT");

    let mut early = TcpStream::connect(sasl).await.unwrap();
    let versions: ApiVersionsResponse = call(&mut early, ApiKey::ApiVersions, 0, &ApiVersionsRequest::default()).await;
    assert_eq!(versions.error_code, 0, "ApiVersions is always answered");
    let frame = encode_request(&common::header(ApiKey::Metadata, 12, 1), &MetadataRequest::default()).unwrap();
    early.write_all(&frame).await.unwrap();
    assert!(closed(&mut early).await, "Metadata before authentication closes the connection");

    let mut good = TcpStream::connect(sasl).await.unwrap();
    assert_eq!(handshake(&mut good, "GSSAPI").await, 33, "UNSUPPORTED_SASL_MECHANISM");
    assert_eq!(handshake(&mut good, "PLAIN").await, 0);
    let response = authenticate(&mut good, b"\0alice\0alice-secret").await;
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    let answer = metadata(&mut good).await;
    assert_eq!(answer.brokers.len(), 1);
    assert_eq!(answer.brokers[0].port, i32::from(sasl.port()), "the endpoint of the listener the client is on");
    let plain = metadata(&mut broker.connect().await).await;
    assert_eq!(plain.brokers[0].port, i32::from(broker.address.port()), "PLAINTEXT clients get PLAINTEXT");

    let mut delays = Vec::new();
    for _ in 0..2 {
        let mut bad = TcpStream::connect(sasl).await.unwrap();
        assert_eq!(handshake(&mut bad, "PLAIN").await, 0);
        let started = Instant::now();
        let response = authenticate(&mut bad, b"\0alice\0wrong").await;
        delays.push(started.elapsed());
        assert_eq!(response.error_code, 58, "SASL_AUTHENTICATION_FAILED");
        assert!(closed(&mut bad).await, "a failed login closes the connection");
    }
    assert!(delays[0] >= Duration::from_millis(100), "{delays:?}");
    assert!(delays[1] >= Duration::from_millis(200), "the delay grows: {delays:?}");
    broker.stop().await;
}

// Goal: bad SASL input is refused without harm: a token over the limit, a PLAIN message
// without its separators, a SCRAM first message of garbage, SaslAuthenticate before the
// handshake; each gets an error and a closed connection, and the broker keeps serving.
#[tokio::test]
async fn bad_sasl_tokens_are_refused() {
    let pki = Pki::new();
    let (broker, _temp) = start(&pki, 0).await;
    create_user(&broker, "alice", "alice-secret").await;
    let sasl = listener(&broker, "SASL_PLAINTEXT");
    let oversized = vec![b'a'; sluice_broker::security::scram::SASL_TOKEN_BYTES_MAX + 1];
    let cases: [(&str, &[u8], i16); 4] = [
        ("PLAIN", &oversized, 58),
        ("PLAIN", b"alice-secret", 58),
        ("SCRAM-SHA-512", b"\xff\x00garbage", 58),
        ("SCRAM-SHA-512", b"n,,n=alice", 58),
    ];
    for (mechanism, token, code) in cases {
        let mut stream = TcpStream::connect(sasl).await.unwrap();
        assert_eq!(handshake(&mut stream, mechanism).await, 0);
        let response = authenticate(&mut stream, token).await;
        assert_eq!(
            response.error_code,
            code,
            "{mechanism} {:?}",
            String::from_utf8_lossy(&token[..token.len().min(20)])
        );
        assert!(closed(&mut stream).await);
    }
    let mut stream = TcpStream::connect(sasl).await.unwrap();
    let response = authenticate(&mut stream, b"\0alice\0alice-secret").await;
    assert_eq!(response.error_code, 34, "ILLEGAL_SASL_STATE without a handshake");
    assert!(closed(&mut stream).await);
    // A truncated frame: the length says 100 bytes, 10 come, then the client leaves.
    let mut stream = TcpStream::connect(sasl).await.unwrap();
    stream.write_all(&[0, 0, 0, 100, 0, 36, 0, 2, 0, 0, 0, 7, 0, 0]).await.unwrap();
    drop(stream);
    let mut stream = TcpStream::connect(sasl).await.unwrap();
    assert_eq!(handshake(&mut stream, "PLAIN").await, 0);
    assert_eq!(authenticate(&mut stream, b"\0alice\0alice-secret").await.error_code, 0, "still serving");
    broker.stop().await;
}

// Goal: with a session lifetime, the broker says it in SaslAuthenticate (KIP-152); a client
// that re-authenticates on the same connection goes on, one whose session expired is closed at
// its next request, and re-authenticating as another user is refused.
#[tokio::test]
async fn sessions_expire_unless_reauthenticated() {
    let pki = Pki::new();
    let (broker, _temp) = start(&pki, 500).await;
    create_user(&broker, "alice", "alice-secret").await;
    create_user(&broker, "bob", "bob-secret").await;
    let sasl = listener(&broker, "SASL_PLAINTEXT");

    let mut renewing = TcpStream::connect(sasl).await.unwrap();
    assert_eq!(handshake(&mut renewing, "PLAIN").await, 0);
    let response = authenticate(&mut renewing, b"\0alice\0alice-secret").await;
    assert_eq!((response.error_code, response.session_lifetime_ms), (0, 500));
    let mut expiring = TcpStream::connect(sasl).await.unwrap();
    assert_eq!(handshake(&mut expiring, "PLAIN").await, 0);
    assert_eq!(authenticate(&mut expiring, b"\0alice\0alice-secret").await.error_code, 0);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(handshake(&mut renewing, "PLAIN").await, 0, "re-authentication starts");
        assert_eq!(authenticate(&mut renewing, b"\0alice\0alice-secret").await.error_code, 0);
        assert_eq!(metadata(&mut renewing).await.brokers.len(), 1);
    }
    let frame = encode_request(&common::header(ApiKey::Metadata, 12, 1), &MetadataRequest::default()).unwrap();
    expiring.write_all(&frame).await.unwrap();
    assert!(closed(&mut expiring).await, "an expired session is closed at its next request");

    assert_eq!(handshake(&mut renewing, "PLAIN").await, 0);
    assert_eq!(authenticate(&mut renewing, b"\0bob\0bob-secret").await.error_code, 58, "the principal may not change");
    assert!(closed(&mut renewing).await);
    broker.stop().await;
}

// Goal: the SSL listener with client certificates required: a client with a certificate of the
// CA is served (and told the SSL endpoint); one without a certificate, or speaking garbage
// instead of TLS, is refused; 300 clients that connect and stall do not keep a legitimate one
// out, and are closed after the authentication deadline.
#[tokio::test]
async fn tls_listener_requires_certificates_and_survives_stalled_handshakes() {
    let pki = Pki::new();
    pki.issue("alice", &[], "alice", Some("clients"));
    let (broker, _temp) = start(&pki, 0).await;
    let ssl = listener(&broker, "SSL");
    let server_name = rustls_pki_types::ServerName::try_from("localhost").unwrap();

    let tcp = TcpStream::connect(ssl).await.unwrap();
    let mut tls = pki.connector(Some("alice")).connect(server_name.clone(), tcp).await.unwrap();
    let answer = metadata(&mut tls).await;
    assert_eq!(answer.brokers[0].port, i32::from(ssl.port()));

    // TLS 1.3 reports a refused client certificate after the handshake: the first read fails.
    let tcp = TcpStream::connect(ssl).await.unwrap();
    if let Ok(mut anonymous) = pki.connector(None).connect(server_name.clone(), tcp).await {
        let frame = encode_request(&common::header(ApiKey::Metadata, 12, 1), &MetadataRequest::default()).unwrap();
        let _ = anonymous.write_all(&frame).await;
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(IO_TIMEOUT, anonymous.read(&mut byte)).await.unwrap();
        assert!(!matches!(read, Ok(1)), "no answer without a client certificate");
    }

    let mut garbage = TcpStream::connect(ssl).await.unwrap();
    garbage.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3, 4, 5, 6, 7]).await.unwrap();
    garbage.write_all(&[0x42; 4096]).await.unwrap_or(());
    // rustls answers with an alert, then closes.
    let mut sink = Vec::new();
    let drained = tokio::time::timeout(IO_TIMEOUT, garbage.read_to_end(&mut sink)).await;
    assert!(drained.is_ok(), "garbage instead of a TLS handshake is closed");
    assert!(sink.len() < 64, "at most an alert comes back: {} bytes", sink.len());

    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..300 {
        stalled.push(TcpStream::connect(ssl).await.unwrap());
    }
    let tcp = TcpStream::connect(ssl).await.unwrap();
    let mut tls = pki.connector(Some("alice")).connect(server_name, tcp).await.unwrap();
    assert_eq!(metadata(&mut tls).await.brokers.len(), 1, "served beside 300 stalled handshakes");
    let mut first = stalled.swap_remove(0);
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(30), first.read(&mut byte)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "a stalled handshake is closed");
    let waited = started.elapsed();
    let deadline = Duration::from_millis(sluice_broker::security::sasl::AUTHENTICATION_TIMEOUT_MS);
    assert!(waited >= deadline - Duration::from_millis(500), "closed by the deadline, not before: {waited:?}");
    broker.stop().await;
}
