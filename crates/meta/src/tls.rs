//! Mutual TLS on the Raft port (`MetaConfig::internal_tls`).
//!
//! When configured, every connection the RPC server accepts performs a TLS handshake that
//! requires a client certificate chaining to the configured CA (bounded by
//! [`INTERNAL_TLS_HANDSHAKE_TIMEOUT_MS`]) before any frame is read, and every connection a
//! node dials ([`crate::network::PeerClient`]: Raft traffic, forwarded proposals, membership
//! changes, joins, heartbeats, quorum queries) presents this node's certificate and checks the
//! peer's against the same CA, with the host part of the dialed address as the server name.
//! Optionally only certificates whose subject is in a list of principals
//! (`User:<RFC 2253 subject>`, as Kafka's default `ssl.principal.mapping.rules` gives them)
//! are accepted, in both directions.
//!
//! The framing code does not see the difference: [`RpcStream`] is plain TCP or TLS.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::ServerName;
use tokio::io::AsyncRead;
use tokio::io::AsyncWrite;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

use crate::error::MetaError;
use crate::limits::INTERNAL_TLS_HANDSHAKE_TIMEOUT_MS;

/// The principal type of a certificate subject (`User:CN=...`), as in Kafka.
pub const PRINCIPAL_USER_PREFIX: &str = "User:";

/// The TLS setup of the Raft port: a server configuration that requires client certificates,
/// a client configuration that presents this node's certificate, and optionally the
/// principals allowed on either end.
#[derive(Debug, Clone)]
pub struct InternalTls {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    allowed_principals: Option<BTreeSet<String>>,
}

impl InternalTls {
    /// From ready-made rustls configurations. `server` should require client certificates
    /// (rustls does not let this be checked); whatever it says, an accepted connection whose
    /// peer presented no verified certificate is closed. Refused unless `client` has a
    /// certificate to present.
    pub fn new(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Result<InternalTls, MetaError> {
        if !client.client_auth_cert_resolver.has_certs() {
            return Err(MetaError::Config("internal TLS: the client configuration presents no certificate".into()));
        }
        Ok(InternalTls { server, client, allowed_principals: None })
    }

    /// Both configurations from one certificate chain (leaf first), its key and the CA
    /// certificates peers must chain to, with rustls' ring provider and safe defaults.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        ca: Vec<CertificateDer<'static>>,
    ) -> Result<InternalTls, MetaError> {
        let error = |e: rustls::Error| MetaError::Config(format!("internal TLS: {e}"));
        // ring, as the broker's listeners: no C toolchain beyond cc at build time.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for certificate in ca {
            roots.add(certificate).map_err(error)?;
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
            .build()
            .map_err(|e| MetaError::Config(format!("internal TLS: {e}")))?;
        let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(error)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(error)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(error)?;
        InternalTls::new(Arc::new(server), Arc::new(client))
    }

    /// Accept only peers whose certificate subject is one of `principals`
    /// (`User:CN=node-1,O=example`), on inbound and outbound connections alike.
    pub fn with_allowed_principals(mut self, principals: impl IntoIterator<Item = String>) -> InternalTls {
        self.allowed_principals = Some(principals.into_iter().collect());
        self
    }

    /// The server configuration (requires client certificates).
    pub fn server_config(&self) -> &Arc<ServerConfig> {
        &self.server
    }

    /// The client configuration (presents this node's certificate).
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.client
    }

    /// The principals allowed, if restricted.
    pub fn allowed_principals(&self) -> Option<&BTreeSet<String>> {
        self.allowed_principals.as_ref()
    }

    /// Checks that the peer presented a (verified) certificate chain, and its subject against
    /// the allowed principals.
    fn check_principal(&self, certificates: Option<&[CertificateDer<'_>]>) -> Result<(), String> {
        if certificates.is_none_or(|chain| chain.is_empty()) {
            return Err("the peer presented no certificate".to_string());
        }
        let Some(allowed) = &self.allowed_principals else { return Ok(()) };
        let principal = certificates
            .and_then(|chain| chain.first())
            .and_then(|leaf| certificate_subject(leaf))
            .map(|subject| format!("{PRINCIPAL_USER_PREFIX}{subject}"))
            .ok_or_else(|| "the peer certificate has no readable subject".to_string())?;
        if allowed.contains(&principal) {
            Ok(())
        } else {
            Err(format!("principal {principal} is not among the allowed internal principals"))
        }
    }
}

/// A connection of the Raft port: plain TCP, or TLS over TCP on either end.
#[derive(Debug)]
pub enum RpcStream {
    /// Plain TCP (no internal TLS configured).
    Plain(TcpStream),
    /// An accepted TLS connection.
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// A dialed TLS connection.
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl From<TcpStream> for RpcStream {
    fn from(stream: TcpStream) -> RpcStream {
        RpcStream::Plain(stream)
    }
}

impl AsyncRead for RpcStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            RpcStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            RpcStream::TlsServer(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
            RpcStream::TlsClient(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for RpcStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            RpcStream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            RpcStream::TlsServer(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
            RpcStream::TlsClient(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            RpcStream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            RpcStream::TlsServer(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
            RpcStream::TlsClient(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            RpcStream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            RpcStream::TlsServer(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
            RpcStream::TlsClient(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The server side of an accepted connection: with `tls`, the handshake (bounded by
/// [`INTERNAL_TLS_HANDSHAKE_TIMEOUT_MS`]) and the principal check; without, the stream as is.
/// The error says why the connection must be closed.
pub(crate) async fn accept(stream: TcpStream, tls: Option<&InternalTls>) -> Result<RpcStream, String> {
    let Some(tls) = tls else { return Ok(RpcStream::Plain(stream)) };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.server));
    let timeout = Duration::from_millis(INTERNAL_TLS_HANDSHAKE_TIMEOUT_MS);
    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(format!("TLS handshake: {error}")),
        Err(_) => return Err(format!("TLS handshake not done within {INTERNAL_TLS_HANDSHAKE_TIMEOUT_MS} ms")),
    };
    tls.check_principal(stream.get_ref().1.peer_certificates())?;
    Ok(RpcStream::TlsServer(Box::new(stream)))
}

/// The client side of a dialed connection to `addr` (`host:port`): with `tls`, the handshake
/// (server name: the host part of `addr`; bounded by [`INTERNAL_TLS_HANDSHAKE_TIMEOUT_MS`])
/// and the principal check; without, the stream as is.
pub(crate) async fn connect(stream: TcpStream, addr: &str, tls: Option<&InternalTls>) -> Result<RpcStream, String> {
    let Some(tls) = tls else { return Ok(RpcStream::Plain(stream)) };
    let name = server_name(addr)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.client));
    let timeout = Duration::from_millis(INTERNAL_TLS_HANDSHAKE_TIMEOUT_MS);
    let stream = match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(format!("TLS handshake: {error}")),
        Err(_) => return Err(format!("TLS handshake not done within {INTERNAL_TLS_HANDSHAKE_TIMEOUT_MS} ms")),
    };
    tls.check_principal(stream.get_ref().1.peer_certificates())?;
    Ok(RpcStream::TlsClient(Box::new(stream)))
}

/// The name a peer's certificate must carry: the host part of `host:port` (brackets of an
/// IPv6 literal removed); an IP address is matched against the certificate's IP SANs.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_string()).map_err(|e| format!("{host:?} is not a valid TLS server name: {e}"))
}

/// A certificate's subject in RFC 2253 form (most specific attribute first, as Java's
/// `X500Principal.getName()` prints it): `CN=alice,OU=eng,O=example`. `None` if the
/// certificate does not parse or its subject is empty. The broker's mTLS principal is
/// `User:` and this.
pub fn certificate_subject(certificate: &[u8]) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let registry = x509_parser::objects::oid_registry();
    let mut parts = Vec::new();
    let rdns: Vec<_> = parsed.subject().iter().collect();
    for rdn in rdns.into_iter().rev() {
        let attributes: Vec<String> = rdn
            .iter()
            .map(|attribute| {
                let oid = attribute.attr_type();
                let name = x509_parser::objects::oid2abbrev(oid, registry)
                    .map(str::to_string)
                    .unwrap_or_else(|_| oid.to_id_string());
                let value = attribute.as_str().map(escape_rfc2253).unwrap_or_else(|_| "#".to_string());
                format!("{name}={value}")
            })
            .collect();
        parts.push(attributes.join("+"));
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == value.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2253_escapes_specials() {
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253("#x "), "\\#x\\ ");
        assert_eq!(escape_rfc2253("plain"), "plain");
    }

    #[test]
    fn server_names_are_the_host_part() {
        assert!(matches!(server_name("127.0.0.1:9093").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name("[::1]:9093").unwrap(), ServerName::IpAddress(_)));
        assert_eq!(server_name("node-b.example:9093").unwrap().to_str(), "node-b.example");
        assert!(server_name("bad host:1").is_err());
    }
}
