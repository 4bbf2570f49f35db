//! TLS for the SSL and SASL_SSL listeners: rustls with the ring provider, the certificate
//! chain and key from PEM files, optional client certificates (mTLS) checked against a CA
//! bundle, and a reload without restart when the files change.
//!
//! The files are checked every [`TLS_RELOAD_CHECK_MS`]: when a file's modification time or
//! length changed, the configuration is rebuilt and new connections use it; open connections
//! keep the one they started with. A rebuild that fails (a half-written file, a key that does
//! not match) keeps the previous configuration and logs one warning per change.
//!
//! With client authentication, the principal is the certificate's subject as Kafka's default
//! `ssl.principal.mapping.rules` gives it: `User:` and the RFC 2253 distinguished name
//! (`CN=alice,OU=eng,O=example`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use sluice_meta::InternalTls;

use super::session::Principal;

/// How often the certificate, key and CA files are checked for changes, in milliseconds.
pub const TLS_RELOAD_CHECK_MS: u64 = 5_000;

/// Largest PEM file read (certificate chain, key or CA bundle), in bytes: a CA bundle of a few
/// hundred certificates fits; a wrong path to a huge file is refused before it is read.
pub const TLS_PEM_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// Whether an SSL listener asks for client certificates (Kafka's `ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientAuth {
    /// No client certificate: the principal is `User:ANONYMOUS` (or the SASL user).
    #[default]
    None,
    /// A certificate is asked for; without one the client is `User:ANONYMOUS`.
    Requested,
    /// A certificate signed by the CA bundle is required.
    Required,
}

/// Where the TLS material is and what is asked of clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first (`--ssl-certificate`).
    pub certificate: PathBuf,
    /// PEM private key (`--ssl-key`).
    pub key: PathBuf,
    /// PEM CA bundle client certificates are checked against (`--ssl-ca`); needed when
    /// `client_auth` is not `None`.
    pub ca: Option<PathBuf>,
    /// Client certificates.
    pub client_auth: ClientAuth,
}

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// rustls refused the material (a key that does not match the certificate, an empty CA
    /// bundle).
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let file_error = |reason: String| TlsError::File { path: path.to_path_buf(), reason };
    let length = std::fs::metadata(path).map_err(|e| file_error(e.to_string()))?.len();
    if length > TLS_PEM_FILE_BYTES_MAX {
        return Err(file_error(format!("over {TLS_PEM_FILE_BYTES_MAX} bytes")));
    }
    std::fs::read(path).map_err(|e| file_error(e.to_string()))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path)?;
    let certificates: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::File { path: path.to_path_buf(), reason: e.to_string() })?;
    if certificates.is_empty() {
        return Err(TlsError::File { path: path.to_path_buf(), reason: "no PEM certificate in it".into() });
    }
    Ok(certificates)
}

/// The crypto provider of every TLS configuration here.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // ring, not aws-lc-rs: no C toolchain beyond cc at build time, and a smaller binary. rustls
    // deprecates it only for lacking post-quantum key exchange.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain and private key of `settings`.
fn identity(settings: &TlsSettings) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = certificates(&settings.certificate)?;
    let key_pem = read_pem(&settings.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError::File { path: settings.key.clone(), reason: e.to_string() })?;
    Ok((chain, key))
}

/// The CA bundle of `ca` as a root store.
fn roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(ca)? {
        roots.add(certificate).map_err(|e| TlsError::Config(format!("{}: {e}", ca.display())))?;
    }
    Ok(roots)
}

/// Builds the rustls client configuration a broker dials other brokers with (the inter-broker
/// listener, when it is an SSL one): it presents `settings`' certificate and checks theirs
/// against `settings`' CA bundle. Read from the files at each call, so a rotated certificate
/// is used by the next connection.
pub fn load_client(settings: &TlsSettings) -> Result<Arc<ClientConfig>, TlsError> {
    let ca = settings.ca.as_ref().ok_or_else(|| TlsError::Config("checking other brokers needs --ssl-ca".into()))?;
    let (chain, key) = identity(settings)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Builds the rustls server configuration from the files.
pub fn load(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let (chain, key) = identity(settings)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (settings.client_auth, &settings.ca) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => return Err(TlsError::Config("client authentication needs --ssl-ca".into())),
        (auth, Some(ca)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), Arc::clone(&provider));
            let verifier = if auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError::Config(e.to_string()))?)
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// What identifies a version of the files: modification time and length of each.
type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(settings: &TlsSettings) -> Stamp {
    [Some(&settings.certificate), Some(&settings.key), settings.ca.as_ref()]
        .into_iter()
        .flatten()
        .map(|path| std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
        .collect()
}

/// The current server configuration of one set of TLS files, rebuilt when they change.
#[derive(Debug)]
pub struct TlsSource {
    settings: TlsSettings,
    current: RwLock<(Arc<ServerConfig>, Stamp)>,
}

impl TlsSource {
    /// Loads the files; fails if they do not make a configuration.
    pub fn open(settings: TlsSettings) -> Result<Arc<TlsSource>, TlsError> {
        let stamp = stamp(&settings);
        let config = load(&settings)?;
        Ok(Arc::new(TlsSource { settings, current: RwLock::new((config, stamp)) }))
    }

    /// The configuration new connections use.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).0)
    }

    /// Rebuilds the configuration if the files changed since the last check; returns whether a
    /// new one is in use.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.settings);
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if now == current.1 {
            return false;
        }
        current.1 = now;
        match load(&self.settings) {
            Ok(config) => {
                current.0 = config;
                tracing::info!(certificate = %self.settings.certificate.display(), "TLS certificate reloaded");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "TLS files changed but do not load; keeping the previous certificate");
                false
            }
        }
    }

    /// Checks the files every [`TLS_RELOAD_CHECK_MS`] until the task is dropped.
    pub async fn watch(self: Arc<TlsSource>) {
        let mut ticks = tokio::time::interval(Duration::from_millis(TLS_RELOAD_CHECK_MS));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let source = Arc::clone(&self);
            // Reading files and building keys: off the async runtime.
            let _ = tokio::task::spawn_blocking(move || source.reload_if_changed()).await;
        }
    }
}

/// The principal of a verified client certificate: `User:` and its subject in RFC 2253 form
/// (most specific attribute first, as Java's `X500Principal.getName()` prints it; see
/// [`sluice_meta::tls::certificate_subject`], shared with the Raft port's principal check).
pub fn principal_from_certificate(certificate: &[u8]) -> Option<Principal> {
    sluice_meta::tls::certificate_subject(certificate).map(Principal::user)
}

/// The Raft port's mutual TLS (`--internal-tls`): this node's certificate chain and key, and
/// the CA bundle peers' certificates must chain to, from the same files as the listeners
/// (`--ssl-certificate`, `--ssl-key`, `--ssl-ca`). With `allowed`, only peers whose
/// certificate subject is one of these principals are accepted. Read once at start: unlike the
/// listeners' certificate, it is not reloaded when the files change.
pub fn load_internal(settings: &TlsSettings, allowed: &[Principal]) -> Result<InternalTls, TlsError> {
    let ca = settings.ca.as_ref().ok_or_else(|| TlsError::Config("--internal-tls needs --ssl-ca".into()))?;
    let (chain, key) = identity(settings)?;
    let roots = certificates(ca)?;
    let tls = InternalTls::from_der(chain, key, roots).map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(if allowed.is_empty() { tls } else { tls.with_allowed_principals(allowed.iter().map(Principal::to_string)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a CA and a node certificate signed by it (SANs `localhost`, `127.0.0.1`) as PEM
    /// files; returns the settings naming them.
    fn pem_files(dir: &Path) -> TlsSettings {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "node-1");
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        std::fs::write(dir.join("node.crt"), certificate.pem()).unwrap();
        std::fs::write(dir.join("node.key"), key.serialize_pem()).unwrap();
        TlsSettings {
            certificate: dir.join("node.crt"),
            key: dir.join("node.key"),
            ca: Some(dir.join("ca.crt")),
            client_auth: ClientAuth::None,
        }
    }

    #[test]
    fn internal_tls_loads_from_the_listener_files_and_needs_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        let settings = pem_files(dir.path());
        let tls = load_internal(&settings, &[]).unwrap();
        assert!(tls.allowed_principals().is_none());
        let tls = load_internal(&settings, &[Principal::user("CN=node-2")]).unwrap();
        assert_eq!(tls.allowed_principals().unwrap().iter().collect::<Vec<_>>(), ["User:CN=node-2"]);

        let error = load_internal(&TlsSettings { ca: None, ..settings.clone() }, &[]).unwrap_err();
        assert!(error.to_string().contains("--ssl-ca"), "{error}");
        let wrong_key = TlsSettings { key: settings.certificate.clone(), ..settings };
        assert!(load_internal(&wrong_key, &[]).is_err());
    }
}
