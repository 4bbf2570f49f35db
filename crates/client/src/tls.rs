//! TLS to brokers' SSL and SASL_SSL listeners: rustls (ring provider), the broker checked
//! against a CA bundle, optionally this client's certificate for mTLS. librdkafka's
//! `ssl.ca.location`, `ssl.certificate.location` and `ssl.key.location`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::error::{ClientError, Result};

/// Largest PEM file read (CA bundle, certificate chain, key), in bytes.
pub const TLS_PEM_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// Where the TLS material is. Files are read when a connection is opened, so a renewed
/// certificate is used by the next connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM CA bundle the broker's certificate must chain to (`ssl.ca.location`).
    pub ca: PathBuf,
    /// PEM certificate chain presented to brokers that ask for one (mTLS), with `key`.
    pub certificate: Option<PathBuf>,
    /// PEM private key of `certificate`.
    pub key: Option<PathBuf>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    let error = |reason: String| ClientError::Tls { reason: format!("{}: {reason}", path.display()) };
    let length = std::fs::metadata(path).map_err(|e| error(e.to_string()))?.len();
    if length > TLS_PEM_FILE_BYTES_MAX {
        return Err(error(format!("over {TLS_PEM_FILE_BYTES_MAX} bytes")));
    }
    std::fs::read(path).map_err(|e| error(e.to_string()))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(path)?;
    let certificates: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| ClientError::Tls { reason: format!("{}: {e}", path.display()) })?;
    if certificates.is_empty() {
        return Err(ClientError::Tls { reason: format!("{}: no PEM certificate in it", path.display()) });
    }
    Ok(certificates)
}

impl TlsSettings {
    /// The rustls configuration these files make.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>> {
        let config_error = |e: rustls::Error| ClientError::Tls { reason: e.to_string() };
        let mut roots = RootCertStore::empty();
        for certificate in certificates(&self.ca)? {
            roots.add(certificate).map_err(config_error)?;
        }
        // ring, as the broker: no C toolchain beyond cc, a smaller binary.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_root_certificates(roots);
        let config = match (&self.certificate, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(certificate), Some(key)) => {
                let chain = certificates(certificate)?;
                let key = PrivateKeyDer::from_pem_slice(&read(key)?)
                    .map_err(|e| ClientError::Tls { reason: format!("{}: {e}", key.display()) })?;
                builder.with_client_auth_cert(chain, key).map_err(config_error)?
            }
            _ => {
                return Err(ClientError::Tls {
                    reason: "a client certificate needs both the certificate and its key".into(),
                })
            }
        };
        Ok(Arc::new(config))
    }
}

/// The name the broker's certificate must carry for `address` (`host:port`, `[v6]:port`): the
/// host, a DNS name or an IP address.
pub fn server_name(address: &str) -> Result<ServerName<'static>> {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| ClientError::Tls { reason: format!("{host:?} is not a host name: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_the_host_part() {
        assert_eq!(
            server_name("broker1.example.com:9093").unwrap(),
            ServerName::try_from("broker1.example.com").unwrap()
        );
        assert!(matches!(server_name("127.0.0.1:9093").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name("[::1]:9093").unwrap(), ServerName::IpAddress(_)));
        assert!(server_name("bad host:1").is_err());
    }

    #[test]
    fn missing_or_half_given_files_are_named() {
        let missing = TlsSettings { ca: "/nonexistent/ca.crt".into(), certificate: None, key: None };
        assert!(missing.client_config().unwrap_err().to_string().contains("/nonexistent/ca.crt"));
    }
}
